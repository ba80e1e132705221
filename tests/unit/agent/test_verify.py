"""Verification on the host: a genuine quorum is accepted, and each attack of DESIGN.md
section 5 (promise 1) is refused with an error naming the statement, the organization and what
failed. All keys and certificates are real P-256 ones issued by per-organization test CAs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from patchledger.agent.errors import (
    ArtifactMismatchError,
    BundleError,
    MalformedStatementError,
    PatchNotDeployableError,
    PatchRejectedError,
    QuorumNotMetError,
    SignerCertificateError,
    StatementBindingError,
    StatementSignatureError,
    StatementValidityError,
)
from patchledger.agent.verify import ArtifactFacts, Verdict, verify_patch
from patchledger.chaincode.lifecycle.queries import approval_bundle
from patchledger.chaincode.lifecycle.signatures import P256_ORDER, decode_b64, encode_b64
from patchledger.chaincode.lifecycle.trust import OrgTrust
from tests.unit.agent.agent_support import (
    approver,
    bundle,
    entry,
    make_policy,
    patch_record,
    sha256,
)
from tests.unit.lifecycle.lifecycle_support import (
    ARTIFACT,
    COMPLIANCE,
    DAY,
    ITOPS,
    NOW,
    SECOPS,
    TRUST,
    Identity,
    approved_store,
    identity,
    make_certificate,
    new_ca,
    org_ca,
    who,
)

BYTES = b"the artifact bytes"
PATCH = patch_record(BYTES)
FACTS = ArtifactFacts(sha256(BYTES), len(BYTES))
POLICY = make_policy()


def check(
    b: dict[str, Any],
    *,
    facts: ArtifactFacts = FACTS,
    roots: OrgTrust = TRUST,
    now: int = NOW,
    **kw: Any,
) -> Verdict:
    return verify_patch(
        patch_id=b["patch"]["patch_id"],
        bundle=b,
        artifact=facts,
        policy=kw.pop("policy", POLICY),
        roots=roots,
        now=now,
        **kw,
    )


def genuine(*extra: dict[str, Any]) -> dict[str, Any]:
    return bundle(
        PATCH, entry(approver(SECOPS), PATCH), entry(approver(COMPLIANCE), PATCH), *extra
    )


# ---------------------------------------------------------------------------- accepted


def test_a_genuine_quorum_of_two_organizations_is_accepted() -> None:
    verdict = check(genuine())
    assert verdict.approving == (COMPLIANCE, SECOPS)
    assert verdict.needed == 2
    assert [d.index for d in verdict.decisions] == [0, 1]
    assert verdict.discounted == ()


def test_the_bundle_the_core_builds_from_real_approvals_is_accepted() -> None:
    store = approved_store()
    b = approval_bundle(store, "P-1")
    verdict = check(b, facts=ArtifactFacts(ARTIFACT, 1234))
    assert verdict.approving == (COMPLIANCE, SECOPS)


def test_a_third_approval_is_welcome() -> None:
    assert check(genuine(entry(approver(ITOPS), PATCH))).approving == (COMPLIANCE, ITOPS, SECOPS)


# ---------------------------------------------------------------------------- the artifact


def test_an_artifact_with_another_digest_is_refused() -> None:
    with pytest.raises(ArtifactMismatchError, match="sha256 is") as exc:
        check(genuine(), facts=ArtifactFacts(sha256(b"evil"), len(BYTES)))
    assert exc.value.field == "sha256"
    assert exc.value.expected == PATCH["artifact_sha256"]


def test_an_artifact_with_another_size_is_refused() -> None:
    expected = f"size is 5, the ledger record says {len(BYTES)}"
    with pytest.raises(ArtifactMismatchError, match=expected):
        check(genuine(), facts=ArtifactFacts(FACTS.sha256, 5))


def test_a_bundle_whose_record_names_another_digest_is_refused_by_the_statements() -> None:
    # A compromised app rewrites the patch record to match its own artifact: the statements
    # are bound to the approved digest.
    evil = b"evil artifact"
    forged = {**PATCH, "artifact_sha256": sha256(evil), "artifact_size": len(evil)}
    b = {"patch": forged, "approvals": genuine()["approvals"]}
    with pytest.raises(StatementBindingError, match=r"approval statement 0 of .*\(SecOpsMSP\)"):
        check(b, facts=ArtifactFacts(sha256(evil), len(evil)))


# ---------------------------------------------------------------------------- statements


def test_a_statement_for_another_patch_is_refused() -> None:
    b = genuine()
    b["approvals"][1] = entry(approver(COMPLIANCE), PATCH, patch_id="P-2")
    with pytest.raises(StatementBindingError, match="signed for patch 'P-2'") as exc:
        check(b)
    assert (exc.value.index, exc.value.msp_id) == (1, COMPLIANCE)


def test_a_statement_for_another_artifact_is_refused() -> None:
    b = genuine()
    b["approvals"][0] = entry(approver(SECOPS), PATCH, artifact=sha256(b"other build"))
    with pytest.raises(StatementBindingError, match="approval statement 0") as exc:
        check(b)
    assert exc.value.msp_id == SECOPS


def test_an_altered_statement_is_refused() -> None:
    b = genuine()
    b["approvals"][1]["statement"]["statement"]["comment"] = "altered after signing"
    with pytest.raises(StatementSignatureError, match="does not verify") as exc:
        check(b)
    assert (exc.value.index, exc.value.msp_id) == (1, COMPLIANCE)


def test_a_high_s_signature_is_refused() -> None:
    b = genuine()
    signed = b["approvals"][0]["statement"]
    r, s = decode_dss_signature(decode_b64(signed["signature"], "test"))
    signed["signature"] = encode_b64(encode_dss_signature(r, P256_ORDER - s))
    with pytest.raises(StatementSignatureError, match="high S"):
        check(b)


def test_a_signature_by_another_key_is_refused() -> None:
    b = genuine()
    # Compliance's statement re-signed by a key that is not the certificate's.
    impostor = Identity(ec.generate_private_key(ec.SECP256R1()), approver(COMPLIANCE).cert_pem,
                        approver(COMPLIANCE).caller)
    b["approvals"][1] = entry(impostor, PATCH)
    with pytest.raises(StatementSignatureError, match="does not verify"):
        check(b)


def test_a_malformed_entry_is_refused() -> None:
    b = genuine()
    b["approvals"].append({"statement": {"nope": 1}, "signer_cert_pem": "x"})
    with pytest.raises(MalformedStatementError, match="approval statement 2"):
        check(b)


def test_a_statement_valid_for_longer_than_the_policy_allows_is_refused() -> None:
    b = genuine()
    b["approvals"][0] = entry(approver(SECOPS), PATCH, expires_at=NOW + 31 * DAY)
    with pytest.raises(StatementValidityError, match="longer than the policy's"):
        check(b)


def test_an_expired_statement_does_not_count() -> None:
    b = genuine()
    b["approvals"][1] = entry(approver(COMPLIANCE), PATCH, expires_at=NOW - 1)
    with pytest.raises(QuorumNotMetError, match=r"\(SecOpsMSP\), 2 needed; not counted: "
                       r"statement 1 of .* \(ComplianceMSP\): expired at") as exc:
        check(b)
    assert exc.value.approving == (SECOPS,)


def test_an_expired_statement_beside_a_live_quorum_is_not_needed() -> None:
    verdict = check(genuine(entry(approver(ITOPS), PATCH, expires_at=NOW - 1)))
    assert verdict.approving == (COMPLIANCE, SECOPS)
    assert "expired" in verdict.discounted[0]


# ---------------------------------------------------------------------------- signer certificates


def _approver_cert(msp_name: str, issuer: Any, **validity: Any) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = make_certificate(
        key, msp_name, {"hf.EnrollmentID": msp_name, "role": "approver"}, issuer=issuer, **validity
    )
    return Identity(key, pem, approver(COMPLIANCE).caller)


def test_a_statement_signed_by_a_rogue_ca_for_the_right_org_is_refused() -> None:
    rogue = new_ca(f"ca.{COMPLIANCE}")  # same name as Compliance's CA, another key
    forged = _approver_cert("mallory", rogue)
    b = genuine()
    b["approvals"][1] = entry(forged, PATCH, msp_id=COMPLIANCE, approver="mallory")
    with pytest.raises(SignerCertificateError, match=r"approval statement 1 of 'mallory' "
                       r"\(ComplianceMSP\): the signer certificate was not issued by a pinned root"
                       r" of ComplianceMSP valid now \(its issuer: CN=ca.ComplianceMSP\)"):
        check(b)


def test_a_self_signed_approver_certificate_is_refused() -> None:
    forged = _approver_cert("mallory", None)
    b = genuine()
    b["approvals"][1] = entry(forged, PATCH, msp_id=COMPLIANCE, approver="mallory")
    with pytest.raises(SignerCertificateError, match="not issued by a pinned root"):
        check(b)


def test_an_approver_of_one_org_cannot_sign_in_anothers_name() -> None:
    itops = approver(ITOPS)
    b = genuine()
    b["approvals"][1] = entry(itops, PATCH, msp_id=COMPLIANCE)
    with pytest.raises(SignerCertificateError, match="issued by ITOpsMSP's root, not by "
                       "ComplianceMSP's") as exc:
        check(b)
    assert exc.value.msp_id == COMPLIANCE


def test_an_org_without_a_pinned_root_is_refused() -> None:
    roots = OrgTrust({SECOPS: (org_ca(SECOPS).cert,), ITOPS: (org_ca(ITOPS).cert,)})
    with pytest.raises(SignerCertificateError, match="no root certificate of ComplianceMSP was "
                       "pinned at enrollment"):
        check(genuine(), roots=roots)


def test_a_signer_without_the_approver_role_is_refused() -> None:
    operator = who(COMPLIANCE, "operator")
    b = genuine()
    b["approvals"][1] = entry(operator, PATCH)
    with pytest.raises(SignerCertificateError, match="has role 'operator', not 'approver'"):
        check(b)


def test_a_statement_naming_another_approver_than_the_certificate_is_refused() -> None:
    b = genuine()
    b["approvals"][1] = entry(approver(COMPLIANCE), PATCH, approver="somebody-else")
    with pytest.raises(SignerCertificateError, match="not the approver's 'somebody-else'"):
        check(b)


def test_an_expired_signer_certificate_does_not_count() -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    old = _approver_cert("carol", org_ca(COMPLIANCE), not_before=start,
                         not_after=start + dt.timedelta(days=30))
    b = genuine()
    b["approvals"][1] = entry(old, PATCH, msp_id=COMPLIANCE, approver="carol")
    with pytest.raises(QuorumNotMetError, match="signer certificate is not valid now"):
        check(b)


# ---------------------------------------------------------------------------- quorum


def test_one_approval_is_below_the_quorum() -> None:
    b = bundle(PATCH, entry(approver(SECOPS), PATCH))
    with pytest.raises(QuorumNotMetError, match=r"1 distinct organization\(s\) approved "
                       r"\(SecOpsMSP\), 2 needed"):
        check(b)


def test_two_approvers_of_one_org_count_once() -> None:
    second = identity(SECOPS, "approver", "bob")
    b = bundle(PATCH, entry(approver(SECOPS), PATCH), entry(second, PATCH))
    with pytest.raises(QuorumNotMetError) as exc:
        check(b)
    assert exc.value.approving == (SECOPS,)


def test_a_rejection_refuses_the_patch() -> None:
    b = genuine(entry(approver(ITOPS), PATCH, decision="reject"))
    with pytest.raises(PatchRejectedError, match=r"'any' rule: statement 2 of .* \(ITOpsMSP\)"):
        check(b)


def test_a_rejection_under_the_majority_rule_needs_a_majority() -> None:
    b = genuine(entry(approver(ITOPS), PATCH, decision="reject"))
    assert check(b, policy=make_policy(rejection="majority")).approving == (COMPLIANCE, SECOPS)


def test_an_expired_rejection_does_not_count() -> None:
    b = genuine(entry(approver(ITOPS), PATCH, decision="reject", expires_at=NOW - 1))
    assert check(b).approving == (COMPLIANCE, SECOPS)


def test_the_agents_floor_holds_when_the_record_claims_a_low_quorum() -> None:
    # a served policy written before the ledger's floors (low: 1) still parses
    old = make_policy(quorum={"critical": 2, "high": 2, "medium": 2, "low": 1})
    low = patch_record(BYTES, severity="low")
    b = bundle(low, entry(approver(SECOPS), low))
    with pytest.raises(QuorumNotMetError, match="2 needed"):
        check(b, policy=old)
    assert check(b, policy=old, min_quorum=1).approving == (SECOPS,)


def test_approvals_of_non_voting_organizations_do_not_count() -> None:
    policy = make_policy(organizations=[SECOPS, COMPLIANCE], quorum={
        "critical": 2, "high": 2, "medium": 2, "low": 1}, change_quorum=2,
        revocation_quorum=2, exception_quorum=2)
    b = bundle(PATCH, entry(approver(SECOPS), PATCH), entry(approver(ITOPS), PATCH))
    with pytest.raises(QuorumNotMetError, match=r"\(SecOpsMSP\), 2 needed"):
        check(b, policy=policy)


# ---------------------------------------------------------------------------- the record


def test_a_patch_that_is_not_approved_is_refused() -> None:
    tested = patch_record(BYTES, status="TESTED")
    b = bundle(tested, entry(approver(SECOPS), tested), entry(approver(COMPLIANCE), tested))
    with pytest.raises(PatchNotDeployableError, match="is TESTED on the ledger"):
        check(b)


def test_a_bundle_for_another_patch_is_refused() -> None:
    with pytest.raises(BundleError, match="is for patch 'P-1', not 'P-9'"):
        verify_patch(patch_id="P-9", bundle=genuine(), artifact=FACTS, policy=POLICY,
                     roots=TRUST, now=NOW)


def test_a_malformed_bundle_is_refused() -> None:
    broken: dict[str, Any]
    for broken in ({"patch": 3, "approvals": []}, {"approvals": []}):
        with pytest.raises(BundleError, match="no patch record"):
            verify_patch(patch_id="P-1", bundle=broken, artifact=FACTS, policy=POLICY,
                         roots=TRUST, now=NOW)
    with pytest.raises(BundleError, match="patch record is malformed"):
        check({"patch": {**PATCH, "artifact_size": -1}, "approvals": []})
    with pytest.raises(BundleError, match="'approvals' is not a list"):
        check({"patch": PATCH, "approvals": "all of them"})
