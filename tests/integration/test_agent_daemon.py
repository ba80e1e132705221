"""The agent daemon on the real network: a real .deb patch approved by SecOps and Compliance,
a rollout started by ITOps, the host's identity issued by ITOps' Fabric CA. The local test app
(``tests/unit/agent/app_server.py``, the protocol of docs/agent.md) relays what the org app
will: the channel roots and the deployment attested by the three organizations' peers
(``app.fabric.attest``, Endorse only) and the host's reports to ``ReportDeployments``. The
daemon pins the attested roots with the administrator's fingerprint, polls, downloads, has
the attestation verified, installs the package with dpkg, runs the health check and reports;
the ledger's Deployment is VERIFIED."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from patchledger.agent.backends.dpkg import DpkgBackend
from patchledger.agent.daemon import Agent
from patchledger.agent.enroll import (
    attested_roots,
    fetch_bundle,
    fingerprint,
    load_enrollment,
    store_enrollment,
    verify_roots,
)
from patchledger.agent.settings import DaemonSettings
from patchledger.agent.transport import Transport, client_context
from patchledger.app.fabric import Contract
from patchledger.app.fabric.attest import attest_channel_roots, attest_deployment
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
from tests.support.chaincode_runtime import IssuedCertificate
from tests.support.network import LocalNetwork
from tests.unit.agent.agent_support import sha256
from tests.unit.agent.app_server import make_pki, running
from tests.unit.agent.debs import build_deb, needs_dpkg
from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, ITOPS, ORGS, SECOPS

pytestmark = pytest.mark.integration

IDENTITIES = ("secops-feed", "secops-operator", "itops-operator", "secops-approver",
              "compliance-approver", "host-a1")


@dataclass
class Deployed:
    net: LocalNetwork
    w: World
    app: Contract
    patch_id: str
    rollout_id: str
    host_id: str
    old: bytes
    new: bytes


@pytest.fixture(scope="module")
def deployed(fabric_network: LocalNetwork, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Deployed]:
    needs_dpkg()
    net = fabric_network
    debs = tmp_path_factory.mktemp("debs")
    old, new = build_deb(debs, "1.0"), build_deb(debs, "1.1")
    w = open_world(net, IDENTITIES, prefix="daemon-")
    try:
        vuln = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", vuln)
        patch_id, rollout_id = f"P-daemon-{w.run}", f"R-daemon-{w.run}"
        digest = make_tested_patch(w, patch_id, vuln["vuln_id"], new, title="plhello 1.1")
        approve(w, patch_id, digest, "secops-approver", "compliance-approver")
        op = w["itops-operator"]
        host_id = f"a1-{w.run}"
        op.submit("EnrollHost", {"host_id": host_id,
                                 "cert_pem": w["host-a1"].user.cert_pem.decode(),
                                 "groups": ["daemon"]})
        op.submit("CreateRollout", {"rollout_id": rollout_id, "patch_id": patch_id,
                                    "waves": [{"hosts": [host_id]}]})
        op.submit("AdvanceRollout", rollout_id)
        app = op.gateway.get_network(op.channel).get_contract("patchledger")
        yield Deployed(net, w, app, patch_id, rollout_id, host_id, old, new)
    finally:
        w.close()


def test_the_daemon_applies_an_attested_deb_and_the_ledger_records_verified(
    deployed: Deployed, tmp_path: Path
) -> None:
    d = deployed
    itops_ca = d.net.ca_cert(ITOPS).read_bytes()
    # host certificates come from ITOps' Fabric CA: the test app verifies them against it and
    # serves the channel's roots, as the org app will
    others = {m: d.net.ca_cert(m).read_bytes() for m in (SECOPS, COMPLIANCE)}
    pki = make_pki(others, IssuedCertificate(itops_ca, b""))
    relayed: list[dict[str, Any]] = []

    def relay(batch: list[dict[str, Any]]) -> None:
        answer = d.w["host-a1"].submit("ReportDeployments", batch)
        relayed.append(answer)
        assert answer["refused"] == 0, answer["results"]

    with running(tmp_path, pki) as (srv, ca):
        srv.state.attest_roots = lambda nonce: attest_channel_roots(
            d.app, nonce, endorsing_organizations=ORGS)
        srv.state.attest_deployment = lambda host, rollout, nonce: attest_deployment(
            d.app, host, rollout, nonce, endorsing_organizations=ORGS)
        srv.state.relay_reports = relay
        srv.state.desired = {"assignments": [{
            "rollout_id": d.rollout_id, "patch_id": d.patch_id,
            "artifact": {"sha256": sha256(d.new), "size": len(d.new)}}]}
        srv.state.artifacts[sha256(d.new)] = d.new

        # Enrollment's trust step through the agent's own code: the bundle's roots pinned
        # only as the peers attest them, under the administrator's channel fingerprint. (The
        # CA issuance is the org app's part; the host identity here is the CA-issued one.)
        admin_view = OrgTrust.from_pem({m: d.net.ca_cert(m).read_bytes() for m in ORGS})
        served = fetch_bundle(Transport(srv.url, client_context(ca)), secrets.token_hex(32))
        verifier = attested_roots(fingerprint=roots_fingerprint(admin_view),
                                  channel=d.net.config.topology.channel,
                                  chaincode="patchledger", now=int(time.time()))
        roots = verify_roots(served, {}, verifier)
        assert roots.organizations == tuple(sorted(ORGS))
        state = tmp_path / "state"
        state.mkdir()
        user = d.w["host-a1"].user
        (state / "host.key").write_bytes((user.msp_dir / "keystore" / "priv_sk").read_bytes())
        (state / "host.key").chmod(0o600)
        cert = x509.load_pem_x509_certificate(user.cert_pem)
        store_enrollment(state, cert, roots, ca.read_bytes(), {
            "host_id": d.host_id, "msp_id": ITOPS, "server": srv.url,
            "enrolled_at": int(time.time()), "certificate_fingerprint": fingerprint(cert)})

        root = tmp_path / "root"
        before = DpkgBackend(root, state / "dpkg", scripts="chrootless")
        before.install(d.old, "initial")
        before.commit()
        settings = DaemonSettings(server=srv.url, state_dir=state, backend="dpkg", target=root,
                                  dpkg_scripts="chrootless", inventory_source="dpkg",
                                  inventory_root=root, health_command=("true",),
                                  channel=d.net.config.topology.channel)
        identity = load_enrollment(state)
        context = client_context(identity.tls_ca_file, identity.cert_file, identity.key_file)
        agent = Agent(settings, identity, Transport(srv.url, context, timeout=30))
        assert agent.run(threading.Event(), once=True) == 0, agent.state.last_error

    assert before.installed_version("plhello") == "1.1"
    assert agent.state.settled == {f"{d.rollout_id}/{d.patch_id}": "VERIFIED"}
    assert [a["accepted"] for a in relayed] == [1]
    record = d.w["itops-operator"].evaluate("GetRecord", "Deployment",
                                            f"{d.rollout_id}/{d.host_id}")
    assert record["status"] == "VERIFIED"
    assert record["inventory_sha256"] == agent.inventory_state.last()

