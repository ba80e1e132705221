"""The Python Fabric client (app.fabric) against the real network (issue 5).

Clients are the organizations' admins (their MSP directories; TLS root = the organization's CA
certificate) and users registered and enrolled through our CA client. Everything talks to the
peers and CAs through app.fabric; the only other wire call is the orderer Broadcast that carries
the channel configuration update publishing a CRL (the client has no channel-admin API).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509

from patchledger.app.fabric import (
    Attribute,
    AttributeRequest,
    CAClient,
    CAError,
    CommitError,
    Contract,
    EcdsaSigner,
    EndorseError,
    FileCheckpointer,
    Gateway,
    GatewayError,
    Identity,
    ParsedBlock,
    RegistrationRequest,
    TrustAnchors,
    verify_chain,
)
from patchledger.app.fabric._protos import common_pb2, configtx_pb2, timestamp_pb2
from patchledger.app.fabric.blockhash import data_hash
from patchledger.app.fabric.ledger import LedgerVerifier
from patchledger.app.fabric.transaction_context import TransactionContext
from patchledger.network.config import REPO_ROOT
from tests.support.network import LocalNetwork

pytestmark = pytest.mark.integration

TESTKIT = "testkit"
ORGS = ("SecOpsMSP", "ITOpsMSP", "ComplianceMSP")
CLI = Path(sys.executable).parent / "patchledger"  # the console script of this environment


def _channel(net: LocalNetwork) -> str:
    return net.config.topology.channel


def _contract(net: LocalNetwork, gateways: dict[str, Gateway], msp_id: str,
              name: str = TESTKIT) -> Contract:
    return gateways[msp_id].get_network(_channel(net)).get_contract(name)


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _ca(net: LocalNetwork, msp_id: str) -> CAClient:
    return CAClient(f"https://{net.org(msp_id).ca.address}",
                    tls_ca_certificate=net.ca_cert(msp_id).read_bytes())


def _admin(net: LocalNetwork, msp_id: str) -> tuple[Identity, EcdsaSigner]:
    msp = net.admin_msp(msp_id)
    return Identity.from_msp_dir(msp, net.org(msp_id).msp_id), EcdsaSigner.from_msp_dir(msp)


def _anchors(net: LocalNetwork) -> TrustAnchors:
    topo = net.config.topology
    dirs = {org.msp_id: net.layout.org_msp(org.name) for org in topo.orgs}
    return TrustAnchors.from_msp_dirs(dirs, [topo.orderer_org.msp_id])


def _read_eventually(contract: Contract, key: str, timeout: float = 15.0) -> object:
    """Read ``key`` until it exists: another organization's peer commits a block a moment
    after the gateway peer that reported the commit."""
    deadline = time.monotonic() + timeout
    while True:
        value = json.loads(contract.evaluate_transaction("Read", key))
        if value != "" or time.monotonic() > deadline:  # testkit's Read gives "" when absent
            return value
        time.sleep(0.1)


# ---------------------------------------------------------------------------- submit / evaluate


@pytest.mark.parametrize("msp_id", ORGS)
def test_submit_and_evaluate_as_each_organization(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway], msp_id: str) -> None:
    net = fabric_network
    contract = _contract(net, gateways, msp_id)
    key, value = _unique(f"client-{msp_id}"), _unique("value")

    submitted = contract.submit_async("Write", [key, value])
    assert json.loads(submitted.result) == {"key": key, "tx_id": submitted.transaction_id}
    status = submitted.get_status()
    assert status.successful and status.code_name == "VALID"
    assert status.transaction_id == submitted.transaction_id and status.block_number > 0

    # the write is visible through every organization's peer
    for reader in ORGS:
        assert _read_eventually(_contract(net, gateways, reader), key) == value

    # the chaincode sees the caller as this organization's admin
    who = json.loads(contract.evaluate_transaction("WhoAmI"))
    assert who["msp_id"] == msp_id
    assert who["attributes"]["hf.Type"] == "admin"

    # and the block records it as the creator, VALID, with the function called
    with gateways[msp_id].get_network(_channel(net)).read_blocks(
            status.block_number, status.block_number) as blocks:
        (block,) = list(blocks)
    (tx,) = [t for t in block.transactions if t.transaction_id == status.transaction_id]
    assert (tx.creator_msp_id, tx.chaincode_name, tx.function, tx.validation_code_name) == \
        (msp_id, TESTKIT, "Write", "VALID")
    assert tx.arguments == (key.encode(), value.encode())


# ---------------------------------------------------------------------------- errors


def test_endorsement_failure_names_the_failing_peer_and_msp(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    net = fabric_network
    contract = _contract(net, gateways, "SecOpsMSP")

    # the chaincode refuses on the gateway's own peer
    with pytest.raises(EndorseError) as refused:
        contract.submit("Refuse", ["change freeze in effect"])
    err = refused.value
    assert err.code == grpc.StatusCode.ABORTED
    assert err.endpoint == net.org("SecOpsMSP").peer.address
    assert len(err.transaction_id) == 64
    assert [(d.address, d.msp_id) for d in err.details] == \
        [(net.org("SecOpsMSP").peer.address, "SecOpsMSP")]
    assert "chaincode response 400, change freeze in effect" in err.details[0].message
    assert "endorse failed (ABORTED)" in str(err) and "MspId: SecOpsMSP" in str(err)

    # a bad argument, endorsed by another organization's peer through this gateway
    with pytest.raises(EndorseError) as bad:
        contract.submit("PutMany", ["k", "not-a-number"], endorsing_organizations=["ITOpsMSP"])
    [(address, msp, message)] = [(d.address, d.msp_id, d.message) for d in bad.value.details]
    assert (address, msp) == (net.org("ITOpsMSP").peer.address, "ITOpsMSP")
    assert "chaincode response 400" in message and "count" in message

    # evaluate failures are reported the same way (phase "evaluate")
    with pytest.raises(GatewayError) as missing:
        _contract(net, gateways, "ComplianceMSP").evaluate("NoSuchFunction")
    assert type(missing.value) is GatewayError
    assert [(d.address, d.msp_id) for d in missing.value.details] == \
        [(net.org("ComplianceMSP").peer.address, "ComplianceMSP")]
    assert "chaincode response 404" in missing.value.details[0].message


def test_mvcc_read_conflict_is_reported_as_such(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    """The testkit has no read-modify-write function, so the reading transaction is a
    submitted ``Read`` (its read set holds the key's version) racing a ``Write`` of the key."""
    net = fabric_network
    secops, itops = _contract(net, gateways, "SecOpsMSP"), _contract(net, gateways, "ITOpsMSP")
    key = _unique("mvcc")
    secops.submit("Write", [key, "v1"])

    # 1. deterministic: both endorsed concurrently against v1; the write commits first
    with ThreadPoolExecutor(2) as pool:
        reading = pool.submit(lambda: secops.new_proposal("Read", [key]).endorse())
        writing = pool.submit(lambda: itops.new_proposal("Write", [key, "v2"]).endorse())
        read_tx, write_tx = reading.result(), writing.result()
    assert json.loads(read_tx.result) == "v1"
    write_status = write_tx.submit().get_status()
    assert write_status.successful
    late = read_tx.submit()
    status = late.get_status()
    assert (status.code, status.code_name) == (11, "MVCC_READ_CONFLICT")
    assert status.block_number > write_status.block_number

    # 2. concurrent submits through Contract.submit: a reader racing writers commits invalid
    conflicts: list[CommitError] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for i in range(12):
                itops.submit("Write", [key, f"w{i}"])
                if conflicts:
                    return
        finally:
            stop.set()

    def reader() -> None:
        while not stop.is_set() and not conflicts:
            try:
                secops.submit("Read", [key])
            except CommitError as exc:
                conflicts.append(exc)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer), *(pool.submit(reader) for _ in range(3))]
        for future in futures:
            future.result()
    assert conflicts, "no reader conflicted with a concurrent writer"
    conflict = conflicts[0]
    assert (conflict.code, conflict.code_name) == (11, "MVCC_READ_CONFLICT")
    assert conflict.block_number > 0 and len(conflict.transaction_id) == 64
    assert "MVCC_READ_CONFLICT" in str(conflict)


# ---------------------------------------------------------------------------- events


def test_chaincode_events_resume_after_restart_exactly_after_the_checkpoint(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway], tmp_path: Path) -> None:
    net = fabric_network
    tag = _unique("evt")
    contract = _contract(net, gateways, "SecOpsMSP")
    first = [contract.submit_async("SetEvent", [tag, f"{tag}:{i}"]) for i in range(3)]
    start = min(s.get_status().block_number for s in first)
    checkpoint_file = tmp_path / "events.json"

    # first run: a fresh client handles two of our events, checkpointing each, then stops
    handled: list[tuple[int, str, bytes]] = []
    gateway, channel = net.open_gateway("ComplianceMSP")
    checkpointer = FileCheckpointer(checkpoint_file)
    with gateway.get_network(_channel(net)).get_chaincode_events(
            TESTKIT, start_block=start, checkpoint=checkpointer) as events:
        for event in events:
            if event.event_name == tag:
                handled.append((event.block_number, event.transaction_id, event.payload))
            checkpointer.checkpoint_chaincode_event(event)
            if len(handled) == 2:
                break
    gateway.close()
    channel.close()
    saved = json.loads(checkpoint_file.read_text())
    assert saved == {"blockNumber": handled[-1][0], "transactionId": handled[-1][1]}

    # while the client is down, more events are committed
    later = [contract.submit_async("SetEvent", [tag, f"{tag}:{i}"]) for i in range(3, 5)]
    for s in later:
        assert s.get_status().successful

    # restart: new gateway, the same checkpoint file; start_block is ignored
    gateway, channel = net.open_gateway("ComplianceMSP")
    restarted = FileCheckpointer(checkpoint_file)
    resumed: list[tuple[int, str, bytes]] = []
    try:
        with gateway.get_network(_channel(net)).get_chaincode_events(
                TESTKIT, start_block=0, checkpoint=restarted) as events:
            for event in events:
                if event.event_name == tag:
                    resumed.append((event.block_number, event.transaction_id, event.payload))
                restarted.checkpoint_chaincode_event(event)
                if len(resumed) == 3:
                    break
    finally:
        channel.close()

    every = [s.transaction_id for s in (*first, *later)]
    order = handled + resumed
    assert sorted(t for _, t, _ in order) == sorted(every)  # nothing lost, nothing repeated
    assert len({t for _, t, _ in order}) == 5
    assert [b for b, _, _ in order] == sorted(b for b, _, _ in order)
    assert {p for _, _, p in order} == {f"{tag}:{i}".encode() for i in range(5)}


def test_block_events_resume_mid_block_after_restart(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway], tmp_path: Path) -> None:
    """Transactions of every block: stop after the first of several transactions of one block,
    restart with the checkpoint, and get exactly the rest, in block order."""
    net = fabric_network
    contract = _contract(net, gateways, "ITOpsMSP")
    network = gateways["ITOpsMSP"].get_network(_channel(net))
    # transactions submitted together usually share a block (250 ms batch timeout); under
    # heavy load they may not, so try a few batches until one block holds several
    for _ in range(5):
        tag = _unique("blk")
        with ThreadPoolExecutor(6) as pool:
            submitted = list(pool.map(
                lambda key: contract.submit_async("Write", [key, "x"]),
                [f"{tag}-{i}" for i in range(6)]))
        statuses = [s.get_status() for s in submitted]
        assert all(s.successful for s in statuses)
        ours = {s.transaction_id for s in statuses}
        first_block = min(s.block_number for s in statuses)
        last_block = max(s.block_number for s in statuses)
        # the truth: every transaction of those blocks, read as a bounded range
        with network.read_blocks(first_block, last_block) as blocks:
            truth = [(t.block_number, t.index, t.transaction_id)
                     for b in blocks for t in b.transactions]
        multi = [b for b in range(first_block, last_block + 1)
                 if sum(1 for n, _, _ in truth if n == b) > 1]
        if multi:
            break
    assert multi, f"expected a block with several transactions, got {truth}"
    stop_after = next(x for x in truth if x[0] == multi[0])  # first tx of a multi-tx block

    checkpoint_file = tmp_path / "blocks.json"
    handled: list[tuple[int, int, str]] = []
    gateway, channel = net.open_gateway("SecOpsMSP")
    checkpointer = FileCheckpointer(checkpoint_file)
    with gateway.get_network(_channel(net)).get_transaction_events(
            start_block=first_block, checkpoint=checkpointer) as txs:
        for tx in txs:
            handled.append((tx.block_number, tx.index, tx.transaction_id))
            checkpointer.checkpoint_parsed_transaction(tx)
            if handled[-1] == stop_after:
                break
    channel.close()
    assert json.loads(checkpoint_file.read_text()) == \
        {"blockNumber": stop_after[0], "transactionId": stop_after[2],
         "transactionIndex": stop_after[1]}

    gateway, channel = net.open_gateway("SecOpsMSP")
    restarted = FileCheckpointer(checkpoint_file)
    resumed: list[tuple[int, int, str]] = []
    try:
        with gateway.get_network(_channel(net)).get_transaction_events(
                start_block=0, checkpoint=restarted) as txs:
            for tx in txs:
                resumed.append((tx.block_number, tx.index, tx.transaction_id))
                restarted.checkpoint_parsed_transaction(tx)
                if resumed[-1] == truth[-1]:
                    break
    finally:
        channel.close()
    assert resumed[0] == truth[truth.index(stop_after) + 1]  # exactly after the checkpoint
    assert handled + resumed == truth
    assert ours <= {t for _, _, t in resumed + handled}
    assert restarted.block_number == last_block + 1 and restarted.transaction_id == ""


# ---------------------------------------------------------------------------- ledger


def _read_chain(gateway: Gateway, channel: str) -> list[ParsedBlock]:
    with gateway.get_network(channel).read_blocks(0) as blocks:
        return list(blocks)


def test_real_chain_verifies_and_an_altered_copy_fails_at_the_altered_block(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    net = fabric_network
    chain = _read_chain(gateways["ComplianceMSP"], _channel(net))
    assert [b.number for b in chain] == list(range(len(chain)))
    anchors = _anchors(net)
    report = verify_chain([b.raw for b in chain], anchors)
    assert report.ok, report.inconsistency
    assert report.blocks_checked == len(chain) and report.last_block_number == chain[-1].number
    assert report.transactions_checked == sum(len(b.transactions) for b in chain)
    types = {t.header_type for b in chain for t in b.transactions}
    assert {"CONFIG", "ENDORSER_TRANSACTION"} <= types

    # choose a block with an endorser transaction in the middle of the chain
    target = next(b.number for b in chain[len(chain) // 2:]
                  if any(t.header_type == "ENDORSER_TRANSACTION" for t in b.transactions))
    copies = [type(b.raw).FromString(b.raw.SerializeToString()) for b in chain]

    # a. one byte of a transaction changed: the data hash no longer matches
    altered = copies[target]
    envelope = bytearray(altered.data.data[0])
    envelope[-1] ^= 0x01
    altered.data.data[0] = bytes(envelope)
    found = verify_chain(copies, anchors).inconsistency
    assert found is not None
    assert (found.block_number, found.check) == (target, "data_hash")

    # b. the forger also fixes the data hash: the orderers' signature over the header breaks
    altered.header.data_hash = data_hash(altered.data.data)
    found = verify_chain(copies, anchors).inconsistency
    assert found is not None
    assert (found.block_number, found.check) == (target, "orderer_signature")

    # c. a block whose link to its predecessor was rewritten is caught at that block
    copies = [type(b.raw).FromString(b.raw.SerializeToString()) for b in chain]
    copies[target].header.previous_hash = bytes(32)
    verifier = LedgerVerifier(anchors)
    assert [verifier.verify_block(b) for b in copies[:target]] == [None] * target
    found = verifier.verify_block(copies[target])
    assert found is not None
    assert (found.block_number, found.check) == (target, "previous_hash")


# ---------------------------------------------------------------------------- Fabric CA


def _register_and_enroll(net: LocalNetwork, msp_id: str, name: str,
                         attributes: list[Attribute]) -> tuple[Identity, EcdsaSigner, str]:
    ca = _ca(net, msp_id)
    registrar, registrar_signer = _admin(net, msp_id)
    secret = ca.register(registrar, registrar_signer,
                         RegistrationRequest(name, type="client", attributes=attributes))
    assert secret
    enrollment = ca.enroll(name, secret,
                           attr_reqs=[AttributeRequest(a.name) for a in attributes])
    return enrollment.identity(net.org(msp_id).msp_id), enrollment.signer, secret


def test_registered_approver_carries_the_attribute_and_the_chaincode_sees_it(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    net = fabric_network
    ca = _ca(net, "SecOpsMSP")
    info = ca.cainfo()
    assert x509.load_pem_x509_certificate(info.ca_chain).subject == \
        x509.load_pem_x509_certificate(net.ca_cert("SecOpsMSP").read_bytes()).subject
    name = _unique("approver")
    identity, signer, _ = _register_and_enroll(
        net, "SecOpsMSP", name, [Attribute("role", "approver", ecert=True)])
    assert identity.enrollment_id == name
    assert identity.attributes["role"] == "approver"
    ou = [a.value for a in identity.certificate.subject.get_attributes_for_oid(
        x509.NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert "client" in ou

    registrar, registrar_signer = _admin(net, "SecOpsMSP")
    listed = {i.enrollment_id: i for i in ca.list_identities(registrar, registrar_signer)}
    assert ("role", "approver") in {(a.name, a.value) for a in listed[name].attributes}

    gateway, channel = net.open_gateway("SecOpsMSP", identity, signer)
    try:
        who = json.loads(gateway.get_network(_channel(net)).get_contract(TESTKIT)
                         .evaluate_transaction("WhoAmI"))
        assert who["msp_id"] == "SecOpsMSP"
        assert who["attributes"]["role"] == "approver"
        # only the requested attribute is in the certificate; the id names the user
        assert set(who["attributes"]) == {"role"}
        assert f"CN={name}," in base64.b64decode(who["id"]).decode()
        # and it may transact
        key = _unique("approved")
        gateway.get_network(_channel(net)).get_contract(TESTKIT).submit("Write", [key, name])
    finally:
        channel.close()
    assert _read_eventually(_contract(net, gateways, "ITOpsMSP"), key) == name


# ---------------------------------------------------------------------------- revocation


def _latest_config(gateway: Gateway, channel: str) -> tuple[Any, int]:
    """The current channel config and the number of the block holding it."""
    config, number = None, -1
    for block in _read_chain(gateway, channel):
        for tx in block.transactions:
            if tx.header_type == "CONFIG":
                envelope = common_pb2.Envelope.FromString(block.raw.data.data[tx.index])
                payload = common_pb2.Payload.FromString(envelope.payload)
                config = configtx_pb2.ConfigEnvelope.FromString(payload.data).config
                number = block.number
    assert config is not None
    return config, number


def _publish_crl(net: LocalNetwork, msp_id: str, crl_pem: bytes) -> int:
    """Add ``crl_pem`` to ``msp_id``'s MSP in the channel configuration, signed by that
    organization's admin (its Admins policy governs the value) and broadcast to an orderer.
    Returns the number of the configuration block that carries it."""
    msp_config_pb2 = importlib.import_module("fabric_protos.msp.msp_config_pb2")
    channel = _channel(net)
    admin, signer = _admin(net, msp_id)
    gateway, grpc_channel = net.open_gateway(msp_id)
    try:
        config, before = _latest_config(gateway, channel)
    finally:
        grpc_channel.close()
    root = config.channel_group
    app = root.groups["Application"]
    org = app.groups[msp_id]
    msp_value = org.values["MSP"]
    msp_config = msp_config_pb2.MSPConfig.FromString(msp_value.value)
    fabric_msp = msp_config_pb2.FabricMSPConfig.FromString(msp_config.config)
    fabric_msp.revocation_list.append(crl_pem)
    msp_config.config = fabric_msp.SerializeToString()

    def group(version: int, **children: Any) -> Any:
        return configtx_pb2.ConfigGroup(version=version, groups=children)

    read_set = group(root.version, Application=group(app.version, **{msp_id: group(org.version)}))
    write_org = group(org.version)
    write_org.values["MSP"].CopyFrom(configtx_pb2.ConfigValue(
        version=msp_value.version + 1, value=msp_config.SerializeToString(),
        mod_policy=msp_value.mod_policy))
    write_set = group(root.version, Application=group(app.version, **{msp_id: write_org}))
    update = configtx_pb2.ConfigUpdate(channel_id=channel, read_set=read_set,
                                       write_set=write_set).SerializeToString()
    sig_header = common_pb2.SignatureHeader(creator=admin.creator,
                                            nonce=os.urandom(24)).SerializeToString()
    update_envelope = configtx_pb2.ConfigUpdateEnvelope(
        config_update=update,
        signatures=[configtx_pb2.ConfigSignature(
            signature_header=sig_header, signature=signer.sign_message(sig_header + update))])
    context = TransactionContext.new(admin.creator)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.CONFIG_UPDATE, channel_id=channel, timestamp=timestamp,
        tx_id=context.transaction_id)
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(
                creator=admin.creator, nonce=context.nonce).SerializeToString()),
        data=update_envelope.SerializeToString()).SerializeToString()
    envelope = common_pb2.Envelope(payload=payload, signature=signer.sign_message(payload))

    ab_pb2_grpc = importlib.import_module("fabric_protos.orderer.ab_pb2_grpc")
    orderer = net.config.topology.orderers[0]
    with grpc.secure_channel(orderer.address, grpc.ssl_channel_credentials(
            net.ca_cert(net.config.topology.orderer_org.msp_id).read_bytes())) as ch:
        (response,) = list(ab_pb2_grpc.AtomicBroadcastStub(ch).Broadcast(
            iter([envelope]), timeout=15))
    assert response.status == common_pb2.SUCCESS, (response.status, response.info)
    return before


def test_revoked_identity_is_refused_by_the_ca_and_by_the_peers(
        fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> None:
    net = fabric_network
    ca = _ca(net, "SecOpsMSP")
    name = _unique("leaver")
    identity, signer, secret = _register_and_enroll(net, "SecOpsMSP", name, [])
    gateway, grpc_channel = net.open_gateway("SecOpsMSP", identity, signer)
    contract = gateway.get_network(_channel(net)).get_contract(TESTKIT)
    try:
        assert json.loads(contract.evaluate_transaction("WhoAmI"))["msp_id"] == "SecOpsMSP"

        registrar, registrar_signer = _admin(net, "SecOpsMSP")
        result = ca.revoke(registrar, registrar_signer, enrollment_id=name,
                           reason="keycompromise", gen_crl=True)
        serial = identity.certificate.serial_number
        assert [int(s, 16) for s, _ in result.revoked] == [serial]
        crl = x509.load_pem_x509_crl(result.crl)
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None

        # the CA refuses the revoked identity: no renewal, no new enrolment
        with pytest.raises(CAError) as reenroll:
            ca.reenroll(identity, signer)
        assert reenroll.value.status == 401
        with pytest.raises(CAError):
            ca.enroll(name, secret)

        # the peers refuse it once the CRL is in the channel's SecOpsMSP definition
        _publish_crl(net, "SecOpsMSP", result.crl)
        deadline = time.monotonic() + 30
        while True:
            try:
                contract.evaluate_transaction("WhoAmI")
            except GatewayError as exc:
                refusal = exc
                break
            assert time.monotonic() < deadline, "the peer still accepts the revoked identity"
            time.sleep(0.5)
        with pytest.raises(EndorseError):
            contract.submit("Write", [_unique("revoked"), "x"])
    finally:
        grpc_channel.close()
    # the gateway peer refuses the proposal: its channel MSP finds the certificate revoked
    assert refusal.code == grpc.StatusCode.FAILED_PRECONDITION, refusal
    [detail] = refusal.details
    assert (detail.address, detail.msp_id) == (net.org("SecOpsMSP").peer.address, "SecOpsMSP")
    assert "access denied" in detail.message
    peer_log = net.layout.log_file(net.org("SecOpsMSP").peer.name).read_text(errors="replace")
    assert "revoked" in peer_log
    # everyone else still transacts
    _contract(net, gateways, "SecOpsMSP").submit("Write", [_unique("after-crl"), "ok"])


# ---------------------------------------------------------------------------- CLI


def _cli(net: LocalNetwork, msp_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    org = net.org(msp_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHLEDGER_")}
    env.update({
        "PATCHLEDGER_PEER": org.peer.address,
        "PATCHLEDGER_PEER_TLS_CA": str(net.ca_cert(msp_id)),
        "PATCHLEDGER_MSP_ID": org.msp_id,
        "PATCHLEDGER_MSP_DIR": str(net.admin_msp(msp_id)),
        "PATCHLEDGER_CHANNEL": _channel(net),
    })
    return subprocess.run([str(CLI), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_invoke_query_and_ledger_verify(fabric_network: LocalNetwork,
                                            gateways: dict[str, Gateway]) -> None:
    net = fabric_network
    key, value = _unique("cli"), _unique("value")
    invoked = _cli(net, "ITOpsMSP", "invoke", "Write", key, value, "--chaincode", TESTKIT,
                   "--json")
    assert invoked.returncode == 0, invoked.stderr
    data = json.loads(invoked.stdout)
    assert json.loads(data["result"]) == {"key": key, "tx_id": data["transaction_id"]}
    assert len(data["transaction_id"]) == 64 and data["block_number"] > 0

    queried = _cli(net, "ComplianceMSP", "query", "Read", key, "--chaincode", TESTKIT)
    assert queried.returncode == 0, queried.stderr
    assert json.loads(queried.stdout) == value

    refused = _cli(net, "SecOpsMSP", "invoke", "Refuse", "not today", "--chaincode", TESTKIT)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "endorse failed (ABORTED)" in refused.stderr
    assert "MspId: SecOpsMSP" in refused.stderr and "not today" in refused.stderr

    topo = net.config.topology
    trust = [f"--trust={o.msp_id}={net.layout.org_msp(o.name)}" for o in topo.orgs]
    verified = _cli(net, "SecOpsMSP", "ledger", "verify", *trust,
                    f"--orderer-msp={topo.orderer_org.msp_id}", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and report["inconsistency"] is None
    assert report["last_block"] >= data["block_number"]
    assert report["blocks_checked"] == report["last_block"] + 1
