"""One organization cut off from the others mid-rollout and healed (issue 17, "Network
faults"): a network of its own (its own port base) whose ITOps CA, peer and chaincode server
run in a network namespace of their own, on their own address as on a separate machine
(``build_topology(org_hosts=...)``, ``NetworkConfig.launch_prefix``), every other node on the
lab bridge's address. An ITOps rollout is under way (an approved patch, two hosts, its first
wave started) and the ITOps app's read model has projected the chain, when ITOps' veth goes
down:

- SecOps and Compliance go on with what needs only them, as the endorsement policy (a
  majority of the three organizations) and the consortium policy (two approvals, two
  revocation votes) allow: a patch approved, a new patch proposed, a revocation voted;
- ITOps' submissions fail (test evidence, advancing its rollout: its peer cannot be reached,
  nothing of it is committed), and so does an enrolment at its CA.

After the heal: ITOps' peer has the block height of the others, ``GetRecord`` of every
record written meanwhile (and of the rollout, unchanged) is equal on the three peers, ITOps
goes on (its test evidence for the new patch commits on every peer), and the ITOps app's
read model, resumed from its checkpoint, equals the ledger (every record, every version).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from patchledger.app.db import open_engine, sqlite_url, upgrade
from patchledger.app.fabric import CAClient, CAError, GatewayError, connect, create_channel
from patchledger.app.readmodel.projector import catch_up, lag, peer_height
from patchledger.network import health
from patchledger.network.manager import Manager
from patchledger.network.topology import build_topology
from tests.integration.lifecycle_world import (
    Client,
    World,
    approve,
    kev_entry,
    make_tested_patch,
    open_world,
    signed_statement,
    vulnerability_of,
)
from tests.integration.test_readmodel import ledger_history, read_model_history
from tests.support.netns import Host, NetLab, open_lab
from tests.support.network import TEST_PORT_BASE, LocalNetwork, make_network_config
from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, ITOPS, ORGS, SECOPS

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

#: Not the relnet tests' 10.231.0.0/16: both labs can exist at once.
SUBNET = ipaddress.IPv4Network("10.232.0.0/16")
#: This module's network (ports B+1550 to B+1713) is clear of the session network (B+50 to
#: B+213), the demo's (+300), the benches' (+230 ... +1230, +1443 at most) and the app ports.
PORT_OFFSET = 1500
IDENTITIES = ("secops-feed", "secops-operator", "itops-operator", "secops-approver",
              "compliance-approver", "compliance-operator", "host-h1", "host-h2")
MAJORITY = (SECOPS, COMPLIANCE)


def _progress(line: str) -> None:
    print(f"[partition network] {line}", file=sys.stderr, flush=True)


@dataclass
class Partitioned:
    """The lab, ITOps' namespace and the network whose ITOps nodes run in it."""

    lab: NetLab
    itops: Host
    net: LocalNetwork


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Partitioned]:
    lab = open_lab("plpt", SUBNET)
    state = tmp_path_factory.mktemp("partition") / "network"
    manager: Manager | None = None
    try:
        itops = lab.add_host()
        base = int(os.environ.get("PATCHLEDGER_TEST_PORT_BASE", TEST_PORT_BASE)) + PORT_OFFSET
        config = make_network_config(state)
        config = replace(
            config,
            topology=build_topology(host=lab.gateway, port_base=base,
                                    org_hosts={ITOPS: itops.address}),
            launch_prefix={ITOPS: tuple(lab.command(itops, []))},
        )
        manager = Manager(config, _progress)
        manager.up()
        yield Partitioned(lab, itops, LocalNetwork(manager))
    finally:
        if manager is not None:
            manager.down()
        lab.close()
        shutil.rmtree(state, ignore_errors=True)


def heights(net: LocalNetwork) -> dict[str, int]:
    """Each peer's block height on the channel (-1 when its metrics cannot be read)."""
    out = {}
    for org in ORGS:
        peer = net.org(org).peer
        value = health.channel_metric(health.metrics(peer.host, peer.ops_port, timeout=1.0),
                                      "ledger_blockchain_height", net.config.topology.channel)
        out[org] = -1 if value is None else int(value)
    return out


def wait_for(what: str, check: Callable[[], bool], timeout: float,
             detail: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f} s: {detail()}")
        time.sleep(0.3)


def submit_by_majority(net: LocalNetwork, client: Client, function: str, *args: Any) -> None:
    """Submit endorsed by SecOps' and Compliance's peers only; wait until it is committed on
    both (ITOps' peer is cut off: its commit is not waited for)."""
    contract = client.gateway.get_network(client.channel).get_contract("patchledger")
    submitted = contract.submit_async(
        function, [a if isinstance(a, str) else json.dumps(a) for a in args],
        endorsing_organizations=MAJORITY)
    status = submitted.get_status()
    assert status.successful, f"{function} by {client.name}: {status.code_name}"
    wait_for("SecOps' and Compliance's peers at the same height",
             lambda: len({heights(net)[m] for m in MAJORITY}) == 1, 30, lambda: heights(net))


def records(w: World, kind: str, record_id: str) -> dict[str, Any]:
    """``GetRecord`` of one record on each organization's own peer (by MSP id)."""
    readers = {SECOPS: w["secops-operator"], ITOPS: w["itops-operator"],
               COMPLIANCE: w["compliance-operator"]}
    return {msp: c.evaluate("GetRecord", kind, record_id) for msp, c in readers.items()}


def project_itops(net: LocalNetwork, engine: Engine) -> int:
    """The ITOps app's read model brought up to ITOps' peer (a new connection each time, as
    the app's projector resumes from its checkpoint); returns the peer's height."""
    gateway, channel = net.open_gateway(ITOPS)
    try:
        network = gateway.get_network(net.config.topology.channel)
        catch_up(engine, network)
        height = peer_height(network, network.name)
        assert lag(engine, height).behind == 0
        return height
    finally:
        channel.close()


def test_an_organization_cut_off_mid_rollout_catches_up_with_nothing_lost(
    partitioned: Partitioned, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    lab, net = partitioned.lab, partitioned.net
    engine = open_engine(sqlite_url(tmp_path / "itops-readmodel.db"))
    request.addfinalizer(engine.dispose)
    upgrade(engine)
    w = open_world(net, IDENTITIES, prefix="partition-")
    try:
        vuln = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", vuln)
        # A rollout under way: an approved patch, two hosts, its first wave started by ITOps.
        released = f"P-rollout-{w.run}"
        rollout_id = f"R-rollout-{w.run}"
        approve(w, released, make_tested_patch(w, released, vuln["vuln_id"]),
                "secops-approver", "compliance-approver")
        op = w["itops-operator"]
        hosts = [f"{h}-{w.run}" for h in ("h1", "h2")]
        for short, host_id in zip(("h1", "h2"), hosts, strict=True):
            op.submit("EnrollHost", {"host_id": host_id,
                                     "cert_pem": w[f"host-{short}"].user.cert_pem.decode()})
        op.submit("CreateRollout", {"rollout_id": rollout_id, "patch_id": released,
                                    "waves": [{"hosts": [h]} for h in hosts]})
        op.submit("AdvanceRollout", rollout_id)
        rollout_at_cut = op.evaluate("GetRecord", "Rollout", rollout_id)
        before = f"P-before-{w.run}"
        digest = make_tested_patch(w, before, vuln["vuln_id"], title="tested before the cut")
        during = f"P-during-{w.run}"
        project_itops(net, engine)

        lab.partition(partitioned.itops)
        cut_at = time.monotonic()
        # SecOps and Compliance go on: an approval quorum, a new patch, a revocation quorum.
        for name in ("secops-approver", "compliance-approver"):
            submit_by_majority(net, w[name], "Approve", signed_statement(w[name], before, digest))
        submit_by_majority(net, w["secops-operator"], "ProposePatch", {
            "patch_id": during, "title": "proposed during the cut", "vendor": "Debian",
            "artifact_sha256": "ab" * 32, "artifact_size": 10,
            "artifact_uri": "https://artifacts.example/during", "fixes": [vuln["vuln_id"]],
            "targets": ["pkg:deb/debian/xz-utils"]})
        for name in ("secops-approver", "compliance-approver"):
            submit_by_majority(net, w[name], "RevokePatch", before, "superseded during the cut")
        # ITOps cannot: its peer (and its CA) are unreachable.
        itops = w["itops-operator"]
        evidence = {"report_sha256": "cd" * 32, "uri": f"https://ci.example/{during}",
                    "summary": "all suites pass", "passed": True}
        contract = itops.gateway.get_network(itops.channel).get_contract("patchledger")
        with pytest.raises(GatewayError):
            contract.submit("AttachTestEvidence", [during, json.dumps(evidence)],
                            endorse_timeout=5, submit_timeout=5)
        with pytest.raises(GatewayError):  # its rollout stalls
            contract.submit("AdvanceRollout", [rollout_id], endorse_timeout=5, submit_timeout=5)
        with pytest.raises(CAError):
            CAClient(f"https://{net.org(ITOPS).ca.address}",
                     tls_ca_certificate=net.ca_cert(ITOPS).read_bytes(),
                     timeout=3).enroll("nobody", "nothing")
        during_height = heights(net)
        assert during_height[ITOPS] < during_height[SECOPS] == during_height[COMPLIANCE]
        cut_for = time.monotonic() - cut_at

        lab.heal(partitioned.itops)
        healed_at = time.monotonic()
        wait_for("ITOps' peer at the others' block height",
                 lambda: len(set(heights(net).values())) == 1, 120, lambda: heights(net))
        caught_up = time.monotonic() - healed_at
        print(f"cut for {cut_for:.1f} s, ITOps' peer caught up {caught_up:.1f} s after the heal "
              f"(heights {heights(net)})", file=sys.stderr)
        for kind, record_id in (("Patch", before), ("Patch", during), ("Patch", released),
                                ("Rollout", rollout_id)):
            seen = records(w, kind, record_id)
            assert seen[ITOPS] == seen[SECOPS] == seen[COMPLIANCE], (kind, record_id, seen)
        assert records(w, "Patch", before)[ITOPS]["status"] == "REVOKED"
        assert records(w, "Patch", during)[ITOPS]["status"] == "PROPOSED"
        assert records(w, "Rollout", rollout_id)[ITOPS] == rollout_at_cut

        # ITOps goes on (a fresh connection: the old one may still wait out its backoff).
        channel = create_channel(net.org(ITOPS).peer.address,
                                 tls_root_certificates=net.ca_cert(ITOPS).read_bytes())
        try:
            gateway = connect(itops.user.identity, itops.user.signer, channel,
                              endpoint=net.org(ITOPS).peer.address)
            fresh = Client(itops.user, gateway, itops.channel, itops.peers)
            deadline = time.monotonic() + 60
            while True:
                try:
                    fresh.submit("AttachTestEvidence", during, evidence)
                    break
                except GatewayError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
        finally:
            channel.close()
        seen = records(w, "Patch", during)
        assert seen[ITOPS] == seen[SECOPS] == seen[COMPLIANCE]
        assert seen[ITOPS]["status"] == "TESTED"
        # The ITOps app's read model, resumed from its checkpoint at the cut, equals the ledger.
        assert project_itops(net, engine) == max(heights(net).values())
        assert read_model_history(engine) == ledger_history(w)
    finally:
        w.close()
