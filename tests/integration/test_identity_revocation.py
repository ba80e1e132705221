"""Issue 11 on the real network: an approval renewed in place keeps its history, and an
approver whose identity its organization revoked on the ledger stops counting for the
attestation, so the agent refuses the patch.

A patch is approved by SecOps' and Compliance's approvers (the quorum of 2) and released by a
rollout. Compliance's approver renews its approval (``RenewApproval``: a fresh statement, later
expiry): ``GetHistory`` shows both versions. ITOps' admin tries to revoke SecOps' approver and
is refused (another organization's identity). SecOps' admin revokes its approver
(``RevokeIdentity``): the next fresh ``AttestDeployment``, endorsed by the three organizations'
peers, says the quorum is no longer met and names the revocation, and the agent's verification
refuses the patch because the revoked signer's statement no longer counts.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from patchledger.agent.attestation import verify_channel_roots
from patchledger.agent.errors import QuorumNotMetError
from patchledger.app.fabric import EndorseError
from patchledger.app.fabric.attest import attest_channel_roots
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from patchledger.chaincode.lifecycle.trust import OrgTrust
from tests.integration.lifecycle_world import (
    approve,
    kev_entry,
    make_tested_patch,
    open_world,
    signed_statement,
    vulnerability_of,
)
from tests.integration.test_attestation import Rollout
from tests.support.network import LocalNetwork
from tests.unit.agent.agent_support import make_tar
from tests.unit.agent.attestation_support import answer_of
from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, DAY, ORGS, SECOPS

pytestmark = pytest.mark.integration

IDENTITIES = (
    "secops-feed", "secops-operator", "itops-operator", "secops-approver",
    "compliance-approver", "secops-admin", "itops-admin", "host-h1",
)


@dataclass
class Released:
    """The rollout (test_attestation's helper: attest through the ITOps app, verify as the
    agent) and the patch's artifact digest."""

    rollout: Rollout
    digest: str

@pytest.fixture(scope="module")
def released(fabric_network: LocalNetwork) -> Iterator[Released]:
    net = fabric_network
    w = open_world(net, IDENTITIES, prefix="revid-")
    try:
        vuln = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", vuln)
        patch_id, rollout_id = f"P-revid-{w.run}", f"R-revid-{w.run}"
        artifact = make_tar({"VERSION": f"patched {w.run}\n".encode()})
        digest = make_tested_patch(w, patch_id, vuln["vuln_id"], artifact,
                                   title="identity revocation test patch")
        approve(w, patch_id, digest, "secops-approver", "compliance-approver")
        op = w["itops-operator"]
        host_id = f"h1-{w.run}"
        op.submit("EnrollHost", {"host_id": host_id,
                                 "cert_pem": w["host-h1"].user.cert_pem.decode()})
        op.submit("CreateRollout", {"rollout_id": rollout_id, "patch_id": patch_id,
                                    "waves": [{"hosts": [host_id]}]})
        op.submit("AdvanceRollout", rollout_id)
        app = op.gateway.get_network(op.channel).get_contract("patchledger")
        admin_view = OrgTrust.from_pem({m: net.ca_cert(m).read_bytes() for m in ORGS})
        nonce = secrets.token_hex(32)
        roots = verify_channel_roots(
            attest_channel_roots(app, nonce, endorsing_organizations=ORGS),
            channel=net.config.topology.channel, chaincode="patchledger", nonce=nonce,
            fingerprint=roots_fingerprint(admin_view), now=int(time.time()))
        yield Released(Rollout(w, patch_id, rollout_id, artifact, {"h1": host_id}, roots, app),
                       digest)
    finally:
        w.close()


def test_a_renewed_approval_is_a_new_version_in_the_history(released: Released) -> None:
    r = released.rollout
    signer = r.w["compliance-approver"]
    renewal = signed_statement(signer, r.patch_id, released.digest,
                               expires_at=int(time.time()) + 2 * DAY)
    signer.submit("RenewApproval", renewal)
    history = signer.evaluate("GetHistory", "Approval", f"{r.patch_id}/{COMPLIANCE}")
    expiries = [e["record"]["statement"]["statement"]["expires_at"] for e in history]
    assert len(expiries) == 2 and expiries[1] == renewal["statement"]["expires_at"] > expiries[0]


def test_a_revoked_approvers_approval_stops_counting_for_the_attestation(
    released: Released,
) -> None:
    r = released.rollout
    host = r.hosts["h1"]
    nonce = secrets.token_hex(32)
    assert r.verify(r.attest(host, r.rollout_id, nonce), "h1",
                    nonce).verdict.approving == (COMPLIANCE, SECOPS)
    approver = r.w["secops-approver"].name
    identity = {"msp_id": SECOPS, "enrollment_id": approver}
    # another organization's admin cannot silence SecOps' approver
    with pytest.raises(EndorseError) as refused:
        r.w["itops-admin"].submit("RevokeIdentity", identity, "not yours to revoke")
    assert "belongs to SecOpsMSP" in (str(refused.value)
                                      + " ".join(d.message for d in refused.value.details))
    nonce = secrets.token_hex(32)
    assert r.verify(r.attest(host, r.rollout_id, nonce), "h1",
                    nonce).verdict.approving == (COMPLIANCE, SECOPS)
    r.w["secops-admin"].submit("RevokeIdentity", identity, "approver's key leaked")
    nonce = secrets.token_hex(32)
    bundle = r.attest(host, r.rollout_id, nonce)
    answer = answer_of(bundle)
    assert answer["quorum_met"] is False and answer["approving"] == [COMPLIANCE]
    assert [x["value"] for x in answer["revoked_identities"]] == [approver]
    with pytest.raises(QuorumNotMetError, match="signer revoked") as short:
        r.verify(bundle, "h1", nonce)
    assert short.value.approving == (COMPLIANCE,)
