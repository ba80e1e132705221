"""Several real agent daemons, each in its own network namespace (``ip netns``, a veth pair
onto a bridge), reaching the real ITOps org app over that network path (issue 13).

The app listens on the bridge's address only (HTTPS, mutual TLS through the proxy layer of
tests/support/agentlab.py). Each host runs ``patchledger-agent enroll`` in its namespace with
a one-time token an operator made in the app (the CSR to ITOps' Fabric CA, ``EnrollHost`` by
the app, roots pinned as the peers attest them), then ``patchledger-agent run``: it polls,
receives its assignment from the dispatcher's board, downloads the artifact, has the
attestation endorsed by the three organizations' peers, applies it with the file-tree
backend and reports. The dispatcher's report step puts the reports on the ledger; every
Deployment is VERIFIED on the ledger and in the app's read model, each report recorded once.
Skipped with the reason where namespaces cannot be created (not root, no ``ip``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchledger.app.dispatch.board import Board, Order
from patchledger.app.dispatch.connect import PeerEndpoint, open_ledger
from patchledger.app.dispatch.dispatcher import Dispatcher, DispatchSettings
from patchledger.app.dispatch.ledger import FabricLedger
from patchledger.app.fleet.simulator import artifact_of
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from patchledger.chaincode.lifecycle.trust import OrgTrust
from tests.integration.lifecycle_world import (
    World,
    approve,
    kev_entry,
    make_tested_patch,
    open_world,
    vulnerability_of,
)
from tests.support.agentlab import (
    OrgAppServer,
    ReportPump,
    app_config,
    enroll_agents,
    issued_sequences,
    report_sequences,
    start_agents,
    stop_agents,
    wait_for,
)
from tests.support.netns import netns_unavailable, open_lab
from tests.support.network import TEST_PORT_BASE, LocalNetwork
from tests.unit.agent.agent_support import sha256
from tests.unit.lifecycle.lifecycle_support import ITOPS, ORGS, SECOPS

pytestmark = pytest.mark.integration

IDENTITIES = ("secops-feed", "secops-operator", "itops-operator", "secops-approver",
              "compliance-approver")
AGENTS = 3


def app_port(offset: int) -> int:
    """A port of this module's app: above the test network's (base + 900 + offset)."""
    return int(os.environ.get("PATCHLEDGER_TEST_PORT_BASE", TEST_PORT_BASE)) + 900 + offset


@dataclass
class Ledger:
    w: World
    net: LocalNetwork
    ledger: FabricLedger
    vuln_id: str
    fingerprint: str

    def patch(self, name: str) -> tuple[str, bytes]:
        """A new patch approved by SecOps and Compliance (a file-tree artifact)."""
        patch_id = f"P-{name}-{self.w.run}"
        artifact = artifact_of({"VERSION": f"{patch_id}\n".encode()})
        digest = make_tested_patch(self.w, patch_id, self.vuln_id, artifact, title=name)
        approve(self.w, patch_id, digest, "secops-approver", "compliance-approver")
        return patch_id, artifact


@pytest.fixture(scope="module")
def ledger(fabric_network: LocalNetwork) -> Iterator[Ledger]:
    why = netns_unavailable()
    if why is not None:
        pytest.skip(why)
    net = fabric_network
    w = open_world(net, IDENTITIES, prefix="netns-")
    try:
        vuln = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", vuln)
        op = w["itops-operator"].user
        peers = [PeerEndpoint(m, net.org(m).peer.address, net.ca_cert(m).read_bytes())
                 for m in ORGS]
        fingerprint = roots_fingerprint(OrgTrust.from_pem(
            {m: net.ca_cert(m).read_bytes() for m in ORGS}))
        with open_ledger(op.identity, op.signer, peers,
                         channel=net.config.topology.channel) as fabric:
            yield Ledger(w, net, fabric, vuln["vuln_id"], fingerprint)
    finally:
        w.close()


def dispatcher_of(board_dir: Path, ledger: FabricLedger) -> Dispatcher:
    return Dispatcher(ledger, board_dir, ITOPS, DispatchSettings(
        batch_max_latency=0.5, interval=0.3, report_endorsing=(ITOPS, SECOPS)))


def test_agents_in_their_own_namespaces_enroll_poll_and_report_verified(
    ledger: Ledger, tmp_path: Path
) -> None:
    net, w = ledger.net, ledger.w
    lab = open_lab("plrn")
    server = OrgAppServer(app_config(net, tmp_path / "app", poll_interval=2, projector=True),
                          lab.gateway, app_port(0), tmp_path / "tls", net.ca_cert(ITOPS))
    pump: ReportPump | None = None
    agents = []
    try:
        server.start()
        token = server.api_token(f"op-{w.run}")
        patch_id, artifact = ledger.patch("netns")
        up = server.client_call("POST", "/api/v1/artifacts", token, data=artifact)
        assert up.status_code == 201, up.json
        host_ids = [f"ns{i}-{w.run}" for i in range(AGENTS)]
        agents = enroll_agents(lab, server, token, tmp_path / "hosts", host_ids,
                               server_url=server.url, channel=net.config.topology.channel,
                               roots_fingerprint=ledger.fingerprint)
        for host_id in host_ids:
            assert ledger.ledger.evaluate("GetRecord", "Host", host_id)["status"] == "ENROLLED"

        rollout_id = f"R-netns-{w.run}"
        op = w["itops-operator"]
        op.submit("CreateRollout", {"rollout_id": rollout_id, "patch_id": patch_id,
                                    "waves": [{"hosts": host_ids}]})
        op.submit("AdvanceRollout", rollout_id)
        board_dir = server.config.dispatch_dir
        assert board_dir is not None
        Board(board_dir).publish_orders({h: Order("apply", rollout_id, patch_id,
                                                  sha256(artifact)) for h in host_ids})
        pump = ReportPump(dispatcher_of(board_dir, ledger.ledger))
        pump.start()
        start_agents(lab, agents)

        def statuses() -> dict[str, str]:
            return {h: ledger.ledger.evaluate("GetRecord", "Deployment",
                                              f"{rollout_id}/{h}")["status"] for h in host_ids}

        wait_for("every Deployment VERIFIED on the ledger",
                 lambda: set(statuses().values()) == {"VERIFIED"}, 300,
                 detail=lambda: f"{statuses()}; last agent log: {agents[0].log_text()[-1500:]}")

        def read_model() -> dict[str, str]:
            page = server.client_call("GET", f"/api/v1/deployments?rollout_id={rollout_id}",
                                      token)
            assert page.status_code == 200, page.json
            return {i["record"]["host_id"]: i["state"] for i in page.json["items"]}

        wait_for("the read model to show them VERIFIED",
                 lambda: read_model() == dict.fromkeys(host_ids, "VERIFIED"), 120,
                 detail=lambda: str(read_model()))
        codes = stop_agents(agents)
        assert codes == dict.fromkeys(host_ids, 0), codes
        for agent in agents:
            assert (agent.target / "VERSION").read_text() == f"{patch_id}\n"
            # every report the agent numbered reached the ledger, none twice: the record's
            # versions carry strictly increasing sequence numbers up to the agent's last
            seqs = report_sequences(ledger.ledger, rollout_id, agent.host_id)
            last = issued_sequences(agent)
            assert seqs == sorted(set(seqs)) and seqs[-1] == last, (seqs, last)
            # the replay counter is the deployment's (reports do not write the Host record)
            deployment = ledger.ledger.evaluate("GetRecord", "Deployment",
                                                f"{rollout_id}/{agent.host_id}")
            assert deployment["report_sequence"] == last, deployment
        # the app saw each agent from its own namespace's address, over the veth path
        assert {a.host.address for a in agents} <= server.clients, server.clients
    finally:
        stop_agents(agents)
        if pump is not None:
            pump.stop()
        server.stop()
        lab.close()
