"""Issue 11, two ledger rules, each shown by the attack it closes:

- approvals are renewed in place before they expire (same organization, patch, digest and
  decision, later expiry) instead of re-proposing the patch; every other renewal is refused;
- an organization revokes one of its identities on the ledger, and from then on that identity's
  statements count nowhere: not in the patch's quorum, not in ``AttestDeployment``'s count, not
  for the agent; no other organization can revoke it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from patchledger.agent.errors import QuorumNotMetError
from patchledger.agent.verify import ArtifactFacts, verify_patch
from patchledger.chaincode.lifecycle import (
    AlreadyExistsError,
    AuthorizationError,
    ExpiredError,
    MemoryStore,
    NotFoundError,
    PreconditionError,
    SignatureError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.approval import Approval
from patchledger.chaincode.lifecycle.attestation import attest_deployment
from patchledger.chaincode.lifecycle.identity import load_certificate
from patchledger.chaincode.lifecycle.identity_revocation import RevokedIdentity, normalize_serial
from patchledger.chaincode.lifecycle.ops import approvals, identities
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.policy import Policy
from patchledger.chaincode.lifecycle.queries import approval_bundle, get_record
from patchledger.chaincode.lifecycle.record import Key
from tests.unit.lifecycle.lifecycle_support import (
    ARTIFACT,
    COMPLIANCE,
    DAY,
    ITOPS,
    NOW,
    SECOPS,
    TRUST,
    approved_store,
    identity,
    run,
    seeded_store,
    statement,
    who,
)
from tests.unit.lifecycle.test_attestation import NONCE, running_store

SECOPS_APPROVER = who(SECOPS, "approver")


def revoke(store: MemoryStore, msp: str, identity: dict[str, Any], *, by: str | None = None,
           now: int = NOW) -> None:
    run(store, who(by or msp, "admin"), identities.revoke_identity,
        {"msp_id": msp, **identity}, "key leaked", now=now)


def revoke_secops_approver(store: MemoryStore, now: int = NOW) -> None:
    revoke(store, SECOPS, {"enrollment_id": SECOPS_APPROVER.caller.name}, now=now)


def approval(store: MemoryStore, msp: str) -> Approval:
    return Approval.from_json(store.data[Key("Approval", ("P-1", msp))])


def renew(store: MemoryStore, signed: dict[str, Any], *, now: int = NOW + 100,
          caller: Any = SECOPS_APPROVER) -> None:
    run(store, caller, approvals.renew_approval, signed, now=now)


# ---------------------------------------------------------------------------- renewal


def test_a_live_approval_is_renewed_in_place_and_keeps_the_patch_deployable() -> None:
    store = running_store()  # P-1 RELEASED, approvals of SecOps and Compliance expire NOW + DAY
    for org in (SECOPS, COMPLIANCE):
        renew(store, statement(who(org, "approver"), expires_at=NOW + 10 * DAY),
              caller=who(org, "approver"))
    assert approval(store, SECOPS).signed_statement.statement.expires_at == NOW + 10 * DAY
    later = attest_deployment(store, "h1", "R-1", NONCE, now=NOW + 2 * DAY)
    assert later["quorum_met"] is True and later["approving"] == [COMPLIANCE, SECOPS]


def test_without_renewal_the_attestation_reports_the_quorum_dropped() -> None:
    later = attest_deployment(running_store(), "h1", "R-1", NONCE, now=NOW + 2 * DAY)
    assert later["quorum_met"] is False and later["approving"] == []


def test_another_organization_cannot_renew_my_approval() -> None:
    store = approved_store()
    itops = who(ITOPS, "approver")
    with pytest.raises(AuthorizationError, match="belongs to SecOpsMSP"):
        renew(store, statement(itops, msp_id=SECOPS, expires_at=NOW + 5 * DAY), caller=itops)
    # ITOps in its own name: it never approved, so there is nothing to renew
    with pytest.raises(NotFoundError, match="Approval 'P-1/ITOpsMSP'"):
        renew(store, statement(itops, expires_at=NOW + 5 * DAY), caller=itops)
    assert approval(store, SECOPS).signed_statement.statement.expires_at == NOW + DAY


def test_a_renewal_for_another_artifact_digest_is_refused() -> None:
    store = approved_store()
    other = hashlib.sha256(b"another build").hexdigest()
    with pytest.raises(SignatureError, match="bound to patch 'P-1' artifact"):
        renew(store, statement(SECOPS_APPROVER, artifact=other, expires_at=NOW + 5 * DAY))
    assert approval(store, SECOPS).signed_statement.statement.artifact_sha256 == ARTIFACT


def test_a_renewal_cannot_change_the_decision() -> None:
    store = approved_store()
    with pytest.raises(ValidationError, match=r"statement\.decision.*'approve'"):
        renew(store, statement(SECOPS_APPROVER, decision="reject", expires_at=NOW + 5 * DAY))
    assert approval(store, SECOPS).decision == "approve"


def test_a_renewal_must_expire_later() -> None:
    store = approved_store()
    with pytest.raises(ValidationError, match=r"statement\.expires_at"):
        renew(store, statement(SECOPS_APPROVER, expires_at=NOW + DAY))


def test_an_expired_approval_cannot_be_renewed() -> None:
    store = approved_store()
    late = NOW + DAY + 1
    with pytest.raises(ExpiredError, match="cannot be renewed"):
        renew(store, statement(SECOPS_APPROVER, expires_at=late + 5 * DAY), now=late)


def test_renewal_is_refused_before_the_patch_is_approved() -> None:
    store = seeded_store()
    run(store, SECOPS_APPROVER, approvals.approve_patch, statement(SECOPS_APPROVER))
    with pytest.raises(PreconditionError, match="'P-1' is TESTED: approvals are renewed only"):
        renew(store, statement(SECOPS_APPROVER, expires_at=NOW + 5 * DAY))


def test_a_forged_renewal_is_refused() -> None:
    store = approved_store()
    signed = statement(SECOPS_APPROVER, expires_at=NOW + 5 * DAY)
    signed["statement"]["expires_at"] = NOW + 6 * DAY  # altered after signing
    with pytest.raises(SignatureError):
        renew(store, signed)


# ---------------------------------------------------------------------------- revocation


def test_a_revoked_approvers_statement_no_longer_counts_for_the_quorum() -> None:
    store = seeded_store()  # policy: 2 of 3 for critical
    run(store, SECOPS_APPROVER, approvals.approve_patch, statement(SECOPS_APPROVER))
    revoke_secops_approver(store)
    compliance = who(COMPLIANCE, "approver")
    run(store, compliance, approvals.approve_patch, statement(compliance))
    assert get_record(store, "Patch", "P-1").to_dict()["status"] == "TESTED"
    itops = who(ITOPS, "approver")
    run(store, itops, approvals.approve_patch, statement(itops))
    assert Patch.from_json(store.data[Key("Patch", ("P-1",))]).status == "APPROVED"


def test_a_revoked_identity_can_neither_approve_nor_renew() -> None:
    store = seeded_store()
    revoke_secops_approver(store)
    with pytest.raises(AuthorizationError, match="approve_patch refused: enrollment_id"):
        run(store, SECOPS_APPROVER, approvals.approve_patch, statement(SECOPS_APPROVER))
    store = approved_store()
    revoke_secops_approver(store)
    with pytest.raises(AuthorizationError, match="renew_approval refused"):
        renew(store, statement(SECOPS_APPROVER, expires_at=NOW + 5 * DAY))


def test_a_decision_of_a_revoked_signer_cannot_be_renewed_by_a_colleague() -> None:
    store = approved_store()
    revoke_secops_approver(store)
    colleague = identity(SECOPS, "approver", "bob")
    with pytest.raises(PreconditionError, match="its signer is revoked"):
        renew(store, statement(colleague, expires_at=NOW + 5 * DAY), caller=colleague)
    assert approval(store, SECOPS).approver == SECOPS_APPROVER.caller.name


def test_another_organization_cannot_revoke_my_identities() -> None:
    store = approved_store()
    before = dict(store.data)
    with pytest.raises(AuthorizationError, match="belongs to SecOpsMSP; caller is from ITOpsMSP"):
        revoke(store, SECOPS, {"enrollment_id": SECOPS_APPROVER.caller.name}, by=ITOPS)
    assert store.data == before
    with pytest.raises(AuthorizationError, match="revoke_identity is not allowed for role"):
        run(store, SECOPS_APPROVER, identities.revoke_identity,
            {"msp_id": SECOPS, "enrollment_id": "someone"}, "no")


def test_a_revocation_by_certificate_serial_is_owned_and_final() -> None:
    store = running_store()
    serial = load_certificate(SECOPS_APPROVER.cert_pem).serial_number
    revoke(store, SECOPS, {"serial": format(serial, "X")})  # upper case is normalized
    key = Key("RevokedIdentity", (SECOPS, "serial", normalize_serial(format(serial, "x"))))
    assert store.owners[key] == SECOPS  # key-level endorsement: SecOps' peer AND a majority
    with pytest.raises(AlreadyExistsError):
        revoke(store, SECOPS, {"serial": format(serial, "x")})
    answer = attest_deployment(store, "h1", "R-1", NONCE, now=NOW)
    assert answer["quorum_met"] is False and answer["approving"] == [COMPLIANCE]


@pytest.mark.parametrize(("identity", "field"), [
    ({}, "exactly one of enrollment_id, serial"),
    ({"enrollment_id": "a", "serial": "01"}, "exactly one"),
    ({"serial": "xyz"}, "identity.serial"),
    ({"serial": "f" * 41}, "identity.serial"),
    ({"enrollment_id": "a b"}, "identity.enrollment_id"),
    ({"enrollment_id": "a", "host": "h1"}, "identity.host"),
])
def test_malformed_identities_are_refused_naming_the_field(identity: dict[str, Any],
                                                           field: str) -> None:
    store = seeded_store()
    with pytest.raises(ValidationError, match=field):
        revoke(store, SECOPS, identity)
    assert not list(store.scan("RevokedIdentity", ()))


def test_the_attestation_reports_a_quorum_dropped_by_a_revocation_and_the_agent_refuses() -> None:
    store = running_store()
    revoke_secops_approver(store)
    answer = attest_deployment(store, "h1", "R-1", NONCE, now=NOW)
    assert answer["quorum_met"] is False and answer["approving"] == [COMPLIANCE]
    [revoked] = answer["revoked_identities"]
    assert RevokedIdentity.from_dict(revoked).value == SECOPS_APPROVER.caller.name
    bundle = approval_bundle(store, "P-1")
    policy = Policy.from_dict(answer["policy"])
    with pytest.raises(QuorumNotMetError, match="signer revoked") as refused:
        verify_patch(patch_id="P-1", bundle=bundle, artifact=ArtifactFacts(ARTIFACT, 1234),
                     policy=policy, roots=TRUST, now=NOW)
    assert refused.value.approving == (COMPLIANCE,)


def test_a_revocation_of_another_organizations_namesake_changes_nothing() -> None:
    # ITOps revokes its own identity that happens to share SecOps' approver's enrollment id
    store = running_store()
    revoke(store, ITOPS, {"enrollment_id": SECOPS_APPROVER.caller.name})
    answer = attest_deployment(store, "h1", "R-1", NONCE, now=NOW)
    assert answer["quorum_met"] is True and answer["revoked_identities"] == []
