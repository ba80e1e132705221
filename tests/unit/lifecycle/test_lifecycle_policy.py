"""Approval policy evaluation and governance by quorum (policy changes, revocation,
exceptions): an organization never counts twice."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchledger.chaincode.lifecycle import (
    AlreadyExistsError,
    AuthorizationError,
    DuplicateVoteError,
    ExpiredError,
    Key,
    MemoryStore,
    NotFoundError,
    PreconditionError,
    TransitionError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.approval_policy import Decision, evaluate
from patchledger.chaincode.lifecycle.authz import PERMISSIONS
from patchledger.chaincode.lifecycle.ops import approvals, governance, policies, vulnerabilities
from patchledger.chaincode.lifecycle.policy import Policy
from patchledger.chaincode.lifecycle.queries import get_record
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    DAY,
    ITOPS,
    NOW,
    ORGS,
    SECOPS,
    approved_store,
    bootstrap,
    policy_data,
    run,
    seeded_store,
    statement,
    vuln_data,
    who,
)

POLICY = Policy.from_dict({**policy_data(), "policy_id": "default", "version": 1})
MAJORITY = POLICY.evolve(rejection="majority")


def d(decision: str, expires_at: int = NOW + DAY) -> Decision:
    return Decision(decision, expires_at)


@pytest.mark.parametrize(
    ("policy", "severity", "decisions", "expected"),
    [
        (POLICY, "critical", {}, "PENDING"),
        (POLICY, "critical", {SECOPS: d("approve")}, "PENDING"),
        (POLICY, "low", {SECOPS: d("approve")}, "PENDING"),
        (POLICY, "low", {SECOPS: d("approve"), COMPLIANCE: d("approve")}, "APPROVED"),
        (POLICY, "critical", {SECOPS: d("approve"), ITOPS: d("approve")}, "APPROVED"),
        (POLICY, "critical", {SECOPS: d("approve"), ITOPS: d("reject")}, "REJECTED"),
        (POLICY, "critical", {SECOPS: d("approve"), ITOPS: d("approve", NOW)}, "PENDING"),
        (POLICY, "critical", {SECOPS: d("approve"), "EvilMSP": d("approve")}, "PENDING"),
        (MAJORITY, "critical", {SECOPS: d("approve"), ITOPS: d("reject")}, "PENDING"),
        (MAJORITY, "critical", {SECOPS: d("reject"), ITOPS: d("reject")}, "REJECTED"),
        (
            MAJORITY,
            "high",
            {SECOPS: d("approve"), ITOPS: d("reject"), COMPLIANCE: d("approve")},
            "APPROVED",
        ),
        (
            MAJORITY.evolve(quorum={**POLICY.quorum, "critical": 3}),
            "critical",
            {ITOPS: d("reject")},
            "REJECTED",
        ),
    ],
)
def test_evaluate(
    policy: Policy, severity: str, decisions: dict[str, Decision], expected: str
) -> None:
    assert evaluate(policy, severity, decisions, NOW) == expected


orgs = st.sampled_from([*ORGS, "OtherMSP"])
votes = st.lists(st.tuples(orgs, st.sampled_from(["approve", "reject"])), max_size=8)


@settings(max_examples=100, deadline=None)
@given(votes, st.sampled_from(["low", "medium", "high", "critical"]), st.booleans())
def test_approved_needs_quorum_of_distinct_voting_orgs(
    cast: list[tuple[str, str]], severity: str, majority: bool
) -> None:
    policy = MAJORITY if majority else POLICY
    decisions: dict[str, Decision] = {}
    for org, choice in cast:
        decisions.setdefault(org, d(choice))  # a second vote of an org is refused upstream
    outcome = evaluate(policy, severity, decisions, NOW)
    approving = {o for o, x in decisions.items() if x.decision == "approve" and o in ORGS}
    rejecting = {o for o, x in decisions.items() if x.decision == "reject" and o in ORGS}
    if outcome == "APPROVED":
        assert len(approving) >= policy.quorum[severity]
        assert majority or not rejecting
    if not majority and rejecting:
        assert outcome == "REJECTED"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(ORGS), min_size=1, max_size=6))
def test_repeated_approvals_of_one_organization_never_count_twice(sequence: list[str]) -> None:
    store = seeded_store(quorum={"critical": 3, "high": 2, "medium": 2, "low": 2})
    seen: set[str] = set()
    for org in sequence:
        approver = who(org, "approver")
        if org in seen:  # refused: duplicate, or the patch is already decided
            with pytest.raises((DuplicateVoteError, TransitionError)):
                run(store, approver, approvals.approve_patch, statement(approver))
        else:
            run(store, approver, approvals.approve_patch, statement(approver))
            seen.add(org)
        status = get_record(store, "Patch", "P-1").state
        assert status == ("APPROVED" if len(seen) == 3 else "TESTED")


def test_non_voting_organization_cannot_approve() -> None:
    store = seeded_store()
    outsider = who("OtherMSP", "approver")
    with pytest.raises(ValidationError, match="not a voting organization"):
        run(store, outsider, approvals.approve_patch, statement(outsider))


def test_decision_must_match_the_transaction() -> None:
    store = seeded_store()
    approver = who(SECOPS, "approver")
    with pytest.raises(ValidationError, match="decision"):
        run(store, approver, approvals.reject_patch, statement(approver))


def test_policy_change_needs_quorum_and_goes_stale() -> None:
    store = seeded_store()
    new = policy_data(quorum={"critical": 3, "high": 2, "medium": 2, "low": 2})
    run(store, who(SECOPS, "admin"), policies.propose_policy, "C-1", new)
    run(store, who(SECOPS, "admin"), policies.propose_policy, "C-2", policy_data(soak_seconds=5))
    with pytest.raises(DuplicateVoteError):
        run(store, who(SECOPS, "admin"), policies.approve_policy, "C-1")
    assert get_record(store, "Policy", "default").to_dict()["version"] == 1
    run(store, who(ITOPS, "admin"), policies.approve_policy, "C-1")
    policy = get_record(store, "Policy", "default").to_dict()
    assert (policy["version"], policy["quorum"]["critical"]) == (2, 3)
    assert get_record(store, "PolicyChange", "C-1").state == "ADOPTED"
    with pytest.raises(TransitionError, match="ADOPTED"):
        run(store, who(COMPLIANCE, "admin"), policies.approve_policy, "C-1")
    run(store, who(COMPLIANCE, "admin"), policies.approve_policy, "C-2")
    assert get_record(store, "PolicyChange", "C-2").state == "STALE"
    with pytest.raises(AlreadyExistsError):
        run(store, who(SECOPS, "admin"), policies.propose_policy, "C-1", new)
    with pytest.raises(AlreadyExistsError):
        bootstrap(store)
    with pytest.raises(AuthorizationError):
        run(store, who(SECOPS, "approver"), policies.propose_policy, "C-3", new)


@pytest.mark.parametrize("field", ["change_quorum", "revocation_quorum", "exception_quorum"])
def test_no_quorum_of_one_when_two_or_more_organizations_decide(field: str) -> None:
    """One organization's admin cannot bootstrap or propose a policy that lets one
    organization decide alone."""
    with pytest.raises(ValidationError, match=f"'{field}': must be between 2 and 3"):
        seeded_store(**{field: 1})  # type: ignore[arg-type]
    store = seeded_store()
    with pytest.raises(ValidationError, match=f"'{field}': must be between 2 and 3"):
        run(store, who(ITOPS, "admin"), policies.propose_policy, "C-1", policy_data(**{field: 1}))
    with pytest.raises(ValidationError, match=r"'quorum\.low': must be between 2 and 3"):
        run(store, who(ITOPS, "admin"), policies.propose_policy, "C-2",
            policy_data(quorum={"critical": 2, "high": 2, "medium": 2, "low": 1}))


def test_a_policy_naming_an_organization_twice_or_too_few_or_unknown_ones_is_refused() -> None:
    with pytest.raises(ValidationError, match="names SecOpsMSP twice \\(as secopsmsp\\)"):
        seeded_store(organizations=[SECOPS, "secopsmsp", ITOPS])
    with pytest.raises(ValidationError, match=r"'quorum\.critical': must be between 1 and 2"):
        seeded_store(organizations=[SECOPS, ITOPS],
                     quorum={"critical": 3, "high": 2, "medium": 2, "low": 2})
    alone = policy_data(organizations=[SECOPS], change_quorum=1, revocation_quorum=1,
                        exception_quorum=1, quorum=dict.fromkeys(
                            ("critical", "high", "medium", "low"), 1))
    with pytest.raises(ValidationError, match="must name at least 2 of the channel's 3"):
        bootstrap(MemoryStore(), alone)
    evil = policy_data(organizations=[SECOPS, "EvilMSP", ITOPS])
    with pytest.raises(ValidationError, match="EvilMSP is not an organization of the channel"):
        bootstrap(MemoryStore(), evil)
    bootstrap(MemoryStore())


def test_revocation_by_quorum() -> None:
    store = approved_store()
    run(store, who(SECOPS, "approver"), governance.revoke_patch, "P-1", "backdoored build")
    assert get_record(store, "Patch", "P-1").state == "APPROVED"
    with pytest.raises(DuplicateVoteError):
        run(store, who(SECOPS, "approver"), governance.revoke_patch, "P-1", "again")
    changes = run(store, who(ITOPS, "approver"), governance.revoke_patch, "P-1", "agree")
    assert [c.to_state for c in changes] == ["REVOKED", "EFFECTIVE"]
    with pytest.raises(TransitionError, match="REVOKED"):
        run(store, who(COMPLIANCE, "approver"), governance.revoke_patch, "P-1", "late")


def test_a_vote_counts_only_while_its_organization_votes_in_the_policy() -> None:
    """SecOps votes to revoke, then the policy drops SecOps: its vote no longer counts, so
    ITOps' vote alone does not reach the quorum of 2; Compliance's does."""
    store = approved_store()
    run(store, who(SECOPS, "approver"), governance.revoke_patch, "P-1", "bad build")
    without = policy_data(organizations=[ITOPS, COMPLIANCE])
    run(store, who(ITOPS, "admin"), policies.propose_policy, "C-1", without)
    run(store, who(COMPLIANCE, "admin"), policies.approve_policy, "C-1")
    run(store, who(ITOPS, "approver"), governance.revoke_patch, "P-1", "agree")
    revocation = get_record(store, "Revocation", "P-1")
    assert revocation.to_dict()["approvals"] == [ITOPS, SECOPS]
    assert revocation.state == "PROPOSED" and get_record(store, "Patch", "P-1").state == "APPROVED"
    run(store, who(COMPLIANCE, "approver"), governance.revoke_patch, "P-1", "agree")
    assert get_record(store, "Patch", "P-1").state == "REVOKED"


def test_exception_by_quorum_and_expiry() -> None:
    store = seeded_store()
    terms: dict[str, Any] = {"justification": "air-gapped", "expires_at": NOW + DAY}
    vid = "CVE-2024-3094"
    run(store, who(SECOPS, "approver"), governance.grant_exception, "E-1", vid, **terms)
    with pytest.raises(AlreadyExistsError):
        run(
            store,
            who(ITOPS, "approver"),
            governance.grant_exception,
            "E-1",
            vid,
            justification="other",
            expires_at=NOW + DAY,
        )
    with pytest.raises(DuplicateVoteError):
        run(store, who(SECOPS, "approver"), governance.grant_exception, "E-1", vid, **terms)
    run(store, who(ITOPS, "approver"), governance.grant_exception, "E-1", vid, **terms)
    assert get_record(store, "Vulnerability", vid).state == "RISK_ACCEPTED"
    with pytest.raises(TransitionError, match="GRANTED"):
        run(store, who(COMPLIANCE, "approver"), governance.grant_exception, "E-1", vid, **terms)
    with pytest.raises(PreconditionError, match="expires"):
        run(store, who(ITOPS, "operator"), governance.expire_exception, vid, "E-1")
    run(store, who(ITOPS, "operator"), governance.expire_exception, vid, "E-1", now=NOW + DAY)
    assert get_record(store, "Vulnerability", vid).state == "OPEN"
    with pytest.raises(TransitionError):
        run(store, who(ITOPS, "operator"), governance.expire_exception, vid, "E-1", now=NOW + DAY)
    with pytest.raises(ExpiredError):
        run(
            store,
            who(SECOPS, "approver"),
            governance.grant_exception,
            "E-2",
            vid,
            justification="x",
            expires_at=NOW,
        )


def test_overlapping_exceptions_keep_the_risk_accepted() -> None:
    store = approved_store()
    vid = "CVE-2024-3094"
    for eid, until in (("E-1", NOW + DAY), ("E-2", NOW + 3 * DAY)):
        for org in (SECOPS, ITOPS):
            run(
                store,
                who(org, "approver"),
                governance.grant_exception,
                eid,
                vid,
                justification="j",
                expires_at=until,
            )
    run(
        store,
        who(SECOPS, "approver"),
        governance.grant_exception,
        "E-3",
        vid,
        justification="scoped",
        expires_at=NOW + DAY,
        host_ids=["h1"],
    )
    run(store, who(SECOPS, "approver"), governance.expire_exception, vid, "E-1", now=NOW + DAY)
    assert get_record(store, "Vulnerability", vid).state == "RISK_ACCEPTED"
    run(store, who(ITOPS, "operator"), vulnerabilities.assess_vulnerability, vid, "OPEN")
    run(store, who(SECOPS, "approver"), governance.expire_exception, vid, "E-2", now=NOW + 3 * DAY)
    assert get_record(store, "Vulnerability", vid).state == "OPEN"


def test_vulnerability_recording_is_idempotent_and_assessable() -> None:
    store = MemoryStore()
    feed = who(SECOPS, "feed")
    assert len(run(store, feed, vulnerabilities.record_vulnerability, vuln_data())) == 1
    snapshot = dict(store.data)
    assert run(store, feed, vulnerabilities.record_vulnerability, vuln_data(), now=NOW + 9) == []
    assert store.data == snapshot
    more = {**vuln_data(), "sources": [{"name": "nvd", "reference": "x"}], "status": "MITIGATED"}
    changes = run(store, feed, vulnerabilities.record_vulnerability, more)
    assert [(c.from_state, c.to_state) for c in changes] == [("OPEN", "OPEN")]
    vid = "CVE-2024-3094"
    op = who(ITOPS, "operator")
    run(store, op, vulnerabilities.assess_vulnerability, vid, "NOT_AFFECTED")
    with pytest.raises(TransitionError, match="NOT_AFFECTED: cannot move to MITIGATED"):
        run(store, op, vulnerabilities.assess_vulnerability, vid, "MITIGATED")
    with pytest.raises(TransitionError):
        run(store, op, vulnerabilities.assess_vulnerability, vid, "NOT_AFFECTED")
    with pytest.raises(ValidationError, match="status"):
        run(store, op, vulnerabilities.assess_vulnerability, vid, "RISK_ACCEPTED")
    with pytest.raises(NotFoundError, match="CVE-0"):
        run(store, op, vulnerabilities.assess_vulnerability, "CVE-0", "OPEN")


def test_auditors_can_do_nothing() -> None:
    assert all("auditor" not in roles for roles in PERMISSIONS.values())
    store = seeded_store()
    with pytest.raises(AuthorizationError, match="auditor"):
        run(store, who(COMPLIANCE, "auditor"), vulnerabilities.record_vulnerability, vuln_data())


@pytest.mark.parametrize("host_ids", ["h1", "h1,h2", {"h1": 1}, None])
def test_exception_host_ids_must_be_a_list_not_a_string_split_into_characters(
    host_ids: Any,
) -> None:
    store = seeded_store()
    with pytest.raises(ValidationError) as excinfo:
        run(
            store,
            who(SECOPS, "approver"),
            governance.grant_exception,
            "E-1",
            "CVE-2024-3094",
            justification="air-gapped",
            expires_at=NOW + DAY,
            host_ids=host_ids,
        )
    assert str(excinfo.value) == "invalid field 'host_ids': must be a list of identifiers"
    assert store.get(Key("RiskAcceptance", ("CVE-2024-3094", "E-1"))) is None
