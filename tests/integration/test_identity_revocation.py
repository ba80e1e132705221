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

import pytest

from patchledger.agent.errors import QuorumNotMetError
from patchledger.app.fabric import EndorseError
from tests.integration.lifecycle_world import (
    Rollout,
    running_rollout,
    signed_statement,
)
from tests.support.network import LocalNetwork
from tests.unit.agent.attestation_support import answer_of
from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, DAY, SECOPS

pytestmark = pytest.mark.integration

IDENTITIES = (
    "secops-feed", "secops-operator", "itops-operator", "secops-approver",
    "compliance-approver", "secops-admin", "itops-admin", "host-h1",
)


@pytest.fixture(scope="module")
def rollout(fabric_network: LocalNetwork) -> Iterator[Rollout]:
    with running_rollout(fabric_network, IDENTITIES, name="revid", waves=[["h1"]]) as r:
        yield r


def test_a_renewed_approval_is_a_new_version_in_the_history(rollout: Rollout) -> None:
    r = rollout
    signer = r.w["compliance-approver"]
    renewal = signed_statement(signer, r.patch_id, r.digest,
                               expires_at=int(time.time()) + 2 * DAY)
    signer.submit("RenewApproval", renewal)
    history = signer.evaluate("GetHistory", "Approval", f"{r.patch_id}/{COMPLIANCE}")
    expiries = [e["record"]["statement"]["statement"]["expires_at"] for e in history]
    assert len(expiries) == 2 and expiries[1] == renewal["statement"]["expires_at"] > expiries[0]


def test_a_revoked_approvers_approval_stops_counting_for_the_attestation(
    rollout: Rollout,
) -> None:
    r = rollout
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
