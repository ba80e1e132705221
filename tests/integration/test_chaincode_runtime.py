"""The Python chaincode runtime against the real network (issue 4).

The testkit contract (chaincode/testkit.py) is deployed once per session as an additional
chaincode, ``testkit`` on server slot 1, served by ``python -m patchledger.chaincode`` for every
organization. Clients are the organizations' admins through our Gateway client (app.fabric);
the TLS checks dial the chaincode servers directly with grpc.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import json
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from patchledger.app.fabric import (
    Attribute,
    CAClient,
    CommitError,
    EcdsaSigner,
    EndorseError,
    EventStream,
    Gateway,
    GatewayError,
    Identity,
    RegistrationRequest,
)
from patchledger.chaincode.runtime._protos import Msg
from patchledger.network import chaincode as cc
from patchledger.network import process
from patchledger.network.config import ChaincodeSettings
from patchledger.network.nodes import chaincode_command
from tests.support.network import LocalNetwork

pytestmark = pytest.mark.integration

TESTKIT = "testkit"
ORGS = ("SecOpsMSP", "ITOpsMSP", "ComplianceMSP")


def _contract(net: LocalNetwork, gateways: dict[str, Gateway], msp_id: str = "SecOpsMSP",
              name: str = TESTKIT) -> Any:
    return gateways[msp_id].get_network(net.config.topology.channel).get_contract(name)


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class _Listener:
    """Reads an event stream on a thread from the start, so nothing is missed."""

    def __init__(self, stream: EventStream[Any]) -> None:
        self._stream = stream
        self._items: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in self._stream:
                self._items.put(item)
        except Exception as exc:  # handed to wait_for
            self._items.put(exc)

    def wait_for(self, want: Callable[[Any], bool], timeout: float) -> Any:
        """The first item for which ``want`` holds; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._items.get(timeout=left)
            except queue.Empty:
                break
            if isinstance(item, Exception):
                raise item
            if want(item):
                return item
        pytest.fail(f"nothing matching arrived within {timeout:.0f} s")

    def close(self) -> None:
        self._stream.close()
        self._thread.join(5)


# ---------------------------------------------------------------------------- events


def test_event_reaches_a_chaincode_event_listener_and_the_block(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    contract = _contract(fabric_network, gateways)
    network = gateways["SecOpsMSP"].get_network(fabric_network.config.topology.channel)
    # Listen from the block after a fresh commit, so the event's block is surely included.
    start = contract.submit_async("Write", [_unique("ev-start"), "x"]).get_status().block_number
    name, payload = _unique("PatchApproved"), json.dumps({"patch": _unique("P")})
    listener = _Listener(network.get_chaincode_events(TESTKIT, start_block=start + 1))
    try:
        submitted = contract.submit_async("SetEvent", [name, payload])
        status = submitted.get_status()
        assert status.successful, status.code_name
        event = listener.wait_for(lambda e: e.event_name == name, 30)
    finally:
        listener.close()
    assert (event.transaction_id, event.chaincode_name) == (submitted.transaction_id, TESTKIT)
    assert event.payload == payload.encode()
    assert event.block_number == status.block_number

    with network.read_blocks(status.block_number, status.block_number) as blocks:
        block = next(iter(blocks))
    tx = next(t for t in block.transactions if t.transaction_id == submitted.transaction_id)
    assert tx.valid and tx.event is not None
    assert (tx.event.event_name, tx.event.payload) == (name, payload.encode())


# ---------------------------------------------------------------------------- key-level policy


def test_key_endorsement_policy_requires_the_named_organization(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    contract = _contract(fabric_network, gateways)
    key = _unique("sbe")
    contract.submit("SetKeyPolicy", [key, json.dumps(["ITOpsMSP"]), "v0"])
    assert json.loads(contract.evaluate("GetKeyPolicy", [key])) == ["ITOpsMSP"]

    # SecOps + Compliance satisfy the chaincode's MAJORITY policy but not the key's.
    with pytest.raises(CommitError) as refused:
        contract.submit("Write", [key, "v1"],
                        endorsing_organizations=["SecOpsMSP", "ComplianceMSP"])
    assert refused.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert contract.evaluate("Read", [key]) == b'"v0"'

    contract.submit("Write", [key, "v2"], endorsing_organizations=["SecOpsMSP", "ITOpsMSP"])
    assert contract.evaluate("Read", [key]) == b'"v2"'


# ---------------------------------------------------------------------------- TLS


def test_peer_holding_the_wrong_root_cannot_connect_to_the_chaincode(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    """SecOps's peer is given ITOps's CA as the root for its chaincode server (whose
    certificate SecOps's CA issued): it cannot connect; ITOps's peer, with the right root, can.
    """
    net = fabric_network
    config, layout = net.config, net.layout
    settings = ChaincodeSettings(_unique("tlsprobe"), "1.0",
                                 "patchledger.chaincode.testkit:contract", slot=2)
    cc.write_connection_files(config, settings)
    secops = net.org("secops")
    conn_file = layout.node_dir(secops.peer.name) / "ccaas" / f"{settings.label}.json"
    conn = json.loads(conn_file.read_text())
    conn["root_cert"] = net.ca_cert("itops").read_text()
    conn["dial_timeout"] = "2s"
    conn_file.write_text(json.dumps(conn))
    cc.install(config, cc.write_package(config, settings))
    pkg_id = cc.package_id(settings)
    servers = [cc.server_node(o, settings) for o in config.topology.peer_orgs]
    try:
        for node in servers:
            argv, env = chaincode_command(config, node, settings, pkg_id, dict(os.environ))
            pid = process.start(layout, node.name, argv, env)
            process.wait_for_port(node.host, node.port, 30, pid, node.name)
        cc.approve_and_commit(config, settings, pkg_id, 1)

        good = _contract(net, gateways, "ITOpsMSP", settings.name)
        assert json.loads(good.evaluate("WhoAmI", endorsing_organizations=["ITOpsMSP"],
                                        timeout=30))["msp_id"] == "ITOpsMSP"
        bad = _contract(net, gateways, "SecOpsMSP", settings.name)
        server = cc.server_node(secops, settings)
        peer_log = layout.log_file(secops.peer.name)
        seen = peer_log.stat().st_size
        with pytest.raises(GatewayError) as failed:
            bad.evaluate("WhoAmI", endorsing_organizations=["SecOpsMSP"], timeout=30)
        text = str(failed.value)
        assert f"could not launch chaincode {pkg_id}" in text, text
        assert f"error creating grpc connection to {server.address}" in text, text
        with peer_log.open("rb") as log:
            log.seek(seen)
            handshakes = [ln for ln in log.read().decode(errors="replace").splitlines()
                          if "TLS handshake failed" in ln and server.address in ln]
        assert handshakes, f"no TLS handshake failure in {peer_log}"
        assert all("x509: certificate signed by unknown authority" in ln for ln in handshakes)
    finally:
        for node in servers:
            process.stop(layout, node.name)


def _first_message(channel: grpc.Channel) -> Any:
    """Open the shim's Connect stream as a peer would and return the chaincode's first message
    (REGISTER)."""
    connect_call = channel.stream_stream("/protos.Chaincode/Connect",
                                         request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=Msg.FromString)
    hold = threading.Event()

    def requests() -> Iterator[Any]:
        hold.wait(10)  # send nothing; keep the request side open until we have an answer
        yield from ()

    call = connect_call(requests(), timeout=10)
    try:
        return next(iter(call))
    finally:
        hold.set()
        call.cancel()


def test_chaincode_server_requires_tls_and_a_client_certificate(
        fabric_network: LocalNetwork, testkit: str) -> None:
    net = fabric_network
    secops = net.org("secops")
    server = cc.server_node(secops, net.manager.deployed[testkit].settings)
    root = net.ca_cert("secops").read_bytes()
    peer_tls = net.layout.node_tls(secops.peer.name)

    # With the peer's client certificate: the chaincode answers with REGISTER.
    creds = grpc.ssl_channel_credentials(root, (peer_tls / "server.key").read_bytes(),
                                         (peer_tls / "server.crt").read_bytes())
    with grpc.secure_channel(server.address, creds) as channel:
        first = _first_message(channel)
    assert first.type == Msg.REGISTER

    # TLS with the right root but no client certificate: refused.
    with grpc.secure_channel(server.address, grpc.ssl_channel_credentials(root)) as channel, \
            pytest.raises(grpc.RpcError) as no_cert:
        _first_message(channel)
    assert no_cert.value.code() == grpc.StatusCode.UNAVAILABLE, no_cert.value

    # Plain text: refused.
    with grpc.insecure_channel(server.address) as channel, \
            pytest.raises(grpc.RpcError) as plain:
        _first_message(channel)
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE, plain.value


# ---------------------------------------------------------------------------- errors


def test_a_raising_transaction_returns_its_message_within_a_second(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    contract = _contract(fabric_network, gateways)
    contract.evaluate("Read", ["warm-up"])
    message = _unique("patch refused")

    t0 = time.monotonic()
    with pytest.raises(EndorseError) as refused:
        contract.submit("Refuse", [message])
    assert time.monotonic() - t0 < 1.0
    assert refused.value.details
    assert all(f"chaincode response 400, {message}" in d.message for d in refused.value.details)

    t0 = time.monotonic()
    with pytest.raises(EndorseError) as crashed:
        contract.submit("Crash")
    assert time.monotonic() - t0 < 1.0
    tx8 = crashed.value.transaction_id[:8]
    assert all(f"chaincode response 500, internal error (tx {tx8})" in d.message
               for d in crashed.value.details), crashed.value


# ---------------------------------------------------------------------------- queries


def test_three_writes_give_a_history_of_three_entries(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    contract = _contract(fabric_network, gateways)
    key = _unique("hist")
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    tx_ids = []
    for value in ("one", "two", "three"):
        submitted = contract.submit_async("Write", [key, value])
        assert submitted.get_status().successful
        assert json.loads(submitted.result)["tx_id"] == submitted.transaction_id
        tx_ids.append(submitted.transaction_id)
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)

    history = json.loads(contract.evaluate("History", [key]))
    assert [h["tx_id"] for h in history] == tx_ids[::-1]
    assert [h["value"] for h in history] == ["three", "two", "one"]
    assert not any(h["is_delete"] for h in history)
    stamps = [dt.datetime.fromisoformat(h["timestamp"]) for h in history]
    assert all(before <= s <= after for s in stamps), stamps
    assert stamps == sorted(stamps, reverse=True)


def test_range_query_returns_every_key_across_pages(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    contract = _contract(fabric_network, gateways)
    prefix, count, page_size = _unique("range") + ":", 23, 5
    assert json.loads(contract.submit("PutMany", [prefix, str(count)])) == count
    expected = [f"{prefix}{i:05d}" for i in range(count)]
    start, end = prefix, prefix + "~"

    keys: list[str] = []
    pages, bookmark = 0, ""
    while True:
        page = json.loads(contract.evaluate("RangePage",
                                            [start, end, str(page_size), bookmark]))
        pages += 1
        assert page["count"] == len(page["keys"]) <= page_size
        keys += page["keys"]
        bookmark = page["bookmark"]
        if len(page["keys"]) < page_size or not bookmark:
            break
        assert pages < 10, "pagination does not end"
    assert keys == expected
    assert pages == 5
    assert json.loads(contract.evaluate("RangeAll", [start, end])) == expected


# ---------------------------------------------------------------------------- load, size


def test_fifty_concurrent_transactions_all_succeed(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    contracts = [_contract(fabric_network, gateways, m) for m in ORGS]
    prefix = _unique("conc")

    def write(i: int) -> str:
        return str(contracts[i % 3].submit("Write", [f"{prefix}-{i:02d}", str(i)]))

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(write, range(50)))
    elapsed = time.monotonic() - t0
    assert len(results) == 50
    assert elapsed < 20, f"50 concurrent transactions took {elapsed:.1f} s"
    for i in range(50):  # read on the peer whose gateway saw the commit
        assert contracts[i % 3].evaluate("Read", [f"{prefix}-{i:02d}"]) == f'"{i}"'.encode()


def test_a_ten_megabyte_value_round_trips(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    contract = _contract(fabric_network, gateways)
    key = _unique("large")
    value = secrets.token_hex(5 * 1024 * 1024)  # 10 MiB of text
    assert len(value) == 10 * 1024 * 1024
    stored = contract.submit("PutLarge", [key, value], endorse_timeout=60,
                             submit_timeout=60, commit_status_timeout=60)
    assert json.loads(stored) == len(value)
    read = json.loads(contract.evaluate("GetLarge", [key], timeout=60))
    assert hashlib.sha256(read.encode()).digest() == hashlib.sha256(value.encode()).digest()


# ---------------------------------------------------------------------------- identity


def test_the_chaincode_sees_the_role_attribute_issued_by_the_ca(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    net = fabric_network
    admin = json.loads(_contract(net, gateways, "ITOpsMSP").evaluate("WhoAmI"))
    assert (admin["msp_id"], admin["attributes"]["role"]) == ("ITOpsMSP", "admin")

    # A user the CA registers with role=approver (in its enrolment certificate).
    itops = net.org("itops")
    msp = net.admin_msp("itops")
    ca = CAClient(f"https://{itops.ca.address}",
                  tls_ca_certificate=net.ca_cert("itops").read_bytes())
    user = _unique("approver")
    secret = ca.register(Identity.from_msp_dir(msp, itops.msp_id), EcdsaSigner.from_msp_dir(msp),
                         RegistrationRequest(user, attributes=[Attribute("role", "approver",
                                                                         ecert=True)]))
    enrollment = ca.enroll(user, secret)
    gateway, channel = net.open_gateway("ITOpsMSP", enrollment.identity(itops.msp_id),
                                enrollment.signer)
    try:
        contract = gateway.get_network(net.config.topology.channel).get_contract(TESTKIT)
        seen = json.loads(contract.evaluate("WhoAmI"))
    finally:
        channel.close()
    assert seen["msp_id"] == "ITOpsMSP"
    assert seen["attributes"]["role"] == "approver"
    assert seen["attributes"]["hf.EnrollmentID"] == user
