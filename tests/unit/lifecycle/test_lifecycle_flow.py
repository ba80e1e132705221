"""The whole life of a patch through the core, and the attacks of the issue, each refused."""

from __future__ import annotations

import pytest

from patchledger.chaincode.lifecycle import (
    AuthorizationError,
    DuplicateVoteError,
    MemoryStore,
    PreconditionError,
    SignatureError,
    TransitionError,
    event_payload,
)
from patchledger.chaincode.lifecycle.approval import Approval
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.ledger import TxLedger
from patchledger.chaincode.lifecycle.ops import approvals, deployments, rollouts
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.queries import approval_bundle, get_record
from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.lifecycle.rollout import Rollout
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    DAY,
    ITOPS,
    NOW,
    SECOPS,
    approved_store,
    host_identity,
    identity,
    report,
    run,
    seeded_store,
    statement,
    who,
)


def patch_status(store: MemoryStore, patch_id: str = "P-1") -> str:
    return Patch.from_json(store.data[Key("Patch", (patch_id,))]).status


def rollout(store: MemoryStore, rollout_id: str = "R-1") -> Rollout:
    return Rollout.from_json(store.data[Key("Rollout", (rollout_id,))])


def deployment(store: MemoryStore, host_id: str, rollout_id: str = "R-1") -> Deployment:
    return Deployment.from_json(store.data[Key("Deployment", (rollout_id, host_id))])


def test_two_organizations_approve_then_two_waves_verified() -> None:
    store = approved_store()
    assert patch_status(store) == "APPROVED"
    op = who(ITOPS, "operator")
    run(
        store,
        op,
        rollouts.create_rollout,
        "R-1",
        "P-1",
        [{"groups": ["canary"]}, {"groups": ["web"]}],
    )
    assert rollout(store).waves[1].hosts == ("h2", "h3")
    changes = run(store, op, rollouts.advance_rollout, "R-1")
    assert patch_status(store) == "RELEASED"
    assert {c.record_type for c in changes} == {"Patch", "Deployment", "Rollout"}
    assert b'"Deployment"' in event_payload(changes)
    result = run(store, op, deployments.report_deployments, [report(host_identity(ITOPS, "h1"), 1)])
    assert result.accepted == 1
    run(store, op, rollouts.advance_rollout, "R-1")
    batch = [report(host_identity(ITOPS, h), 1, "APPLIED") for h in ("h2", "h3")]
    batch += [report(host_identity(ITOPS, h), 2) for h in ("h2", "h3")]
    result = run(store, op, deployments.report_deployments, batch)
    assert [r.accepted for r in result.results] == [True] * 4
    run(store, op, rollouts.complete_rollout, "R-1")
    assert rollout(store).status == "COMPLETED"
    assert all(deployment(store, h).status == "VERIFIED" for h in ("h1", "h2", "h3"))
    # Deployments carry no key-level policy (the chaincode's MAJORITY governs them; their
    # statuses carry the host's signature instead); the rollout keeps its owner's.
    assert Key("Deployment", ("R-1", "h2")) not in store.owners
    assert store.owners[Key("Rollout", ("R-1",))] == ITOPS
    bundle = approval_bundle(store, "P-1")
    assert len(bundle["approvals"]) == 2
    assert get_record(store, "Host", "h1").updated_by == ITOPS


def test_approver_cannot_sign_in_another_organizations_name() -> None:
    store = seeded_store()
    itops = who(ITOPS, "approver")
    forged = statement(itops, msp_id=COMPLIANCE)
    with pytest.raises(AuthorizationError, match="ComplianceMSP"):
        run(store, itops, approvals.approve_patch, forged)


def test_statement_of_another_approver_is_refused() -> None:
    store = seeded_store()
    mine = statement(who(SECOPS, "approver"), approver="someone-else")
    with pytest.raises(AuthorizationError, match="someone-else"):
        run(store, who(SECOPS, "approver"), approvals.approve_patch, mine)


def test_statement_signed_by_a_colleague_key_is_refused() -> None:
    store = seeded_store()
    colleague = who(SECOPS, "operator")
    approver = who(SECOPS, "approver")
    signed = statement(colleague, msp_id=SECOPS, approver=approver.caller.name)
    with pytest.raises(SignatureError):
        run(store, approver, approvals.approve_patch, signed)


def test_approval_without_approver_role_is_refused() -> None:
    store = seeded_store()
    operator = who(SECOPS, "operator")
    with pytest.raises(AuthorizationError, match="approve_patch"):
        run(store, operator, approvals.approve_patch, statement(operator))


def test_statement_for_another_artifact_is_refused() -> None:
    store = seeded_store()
    approver = who(SECOPS, "approver")
    with pytest.raises(SignatureError, match="bound to"):
        run(store, approver, approvals.approve_patch, statement(approver, artifact="ab" * 32))


def test_one_organization_cannot_approve_twice() -> None:
    store = seeded_store()
    approver = who(SECOPS, "approver")
    run(store, approver, approvals.approve_patch, statement(approver))
    colleague = identity(SECOPS, "approver", name="bob")
    with pytest.raises(DuplicateVoteError):
        run(store, approver, approvals.approve_patch, statement(approver))
    with pytest.raises(DuplicateVoteError):
        run(store, colleague, approvals.approve_patch, statement(colleague))
    assert patch_status(store) == "TESTED"


def test_expired_decision_may_be_renewed_but_not_counted_twice() -> None:
    store = seeded_store()
    approver = who(SECOPS, "approver")
    run(store, approver, approvals.approve_patch, statement(approver, expires_at=NOW + 100))
    later = NOW + 200
    run(
        store,
        approver,
        approvals.approve_patch,
        statement(approver, expires_at=later + DAY),
        now=later,
    )
    assert patch_status(store) == "TESTED"
    assert len(list(store.scan("Approval", ("P-1",)))) == 1


def test_rejection_rejects_under_any_rule() -> None:
    store = seeded_store()
    approver = who(COMPLIANCE, "approver")
    changes = run(store, approver, approvals.reject_patch, statement(approver, decision="reject"))
    assert patch_status(store) == "REJECTED"
    assert changes[-1].to_state == "REJECTED"
    with pytest.raises(TransitionError, match="REJECTED"):
        run(
            store,
            who(SECOPS, "approver"),
            approvals.approve_patch,
            statement(who(SECOPS, "approver")),
        )


def test_approval_of_untested_patch_is_refused() -> None:
    store = seeded_store(tested=False)
    approver = who(SECOPS, "approver")
    with pytest.raises(TransitionError, match="PROPOSED: cannot move to APPROVED"):
        run(store, approver, approvals.approve_patch, statement(approver))


def test_rollout_of_a_patch_that_is_not_approved_is_refused() -> None:
    store = seeded_store()
    with pytest.raises(PreconditionError, match="TESTED"):
        run(
            store,
            who(ITOPS, "operator"),
            rollouts.create_rollout,
            "R-1",
            "P-1",
            [{"hosts": ["h1"]}],
        )


def test_host_cannot_report_for_another_host() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1", "h2"]}])
    run(store, op, rollouts.advance_rollout, "R-1")
    h1 = host_identity(ITOPS, "h1")
    lie = report(h1, 1, host_id="h2")
    result = run(store, op, deployments.report_deployments, [lie])
    assert result.results[0].error_type == "SignatureError"
    result = run(store, h1, deployments.report_deployments, [report(host_identity(ITOPS, "h2"), 1)])
    assert result.results[0].error_type == "AuthorizationError"
    assert deployment(store, "h2").status == "SCHEDULED"


def test_replayed_report_is_refused_and_others_still_count() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1", "h2"]}])
    run(store, op, rollouts.advance_rollout, "R-1")
    applied = report(host_identity(ITOPS, "h1"), 1, "APPLIED")
    run(store, op, deployments.report_deployments, [applied])
    result = run(
        store,
        op,
        deployments.report_deployments,
        [applied, report(host_identity(ITOPS, "h2"), 1), {"bogus": 1}, "not an object"],
    )
    assert [r.accepted for r in result.results] == [False, True, False, False]
    assert result.results[0].error_type == "ReplayError"
    assert deployment(store, "h2").status == "VERIFIED"


def test_other_organization_cannot_touch_hosts_or_rollouts() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}])
    with pytest.raises(AuthorizationError):
        run(store, who(SECOPS, "operator"), rollouts.advance_rollout, "R-1")
    with pytest.raises(Exception, match="not an enrolled host of SecOpsMSP"):
        run(
            store,
            who(SECOPS, "operator"),
            rollouts.create_rollout,
            "R-2",
            "P-1",
            [{"hosts": ["h1"]}],
        )
    run(store, op, rollouts.advance_rollout, "R-1")
    result = run(
        store,
        who(SECOPS, "operator"),
        deployments.report_deployments,
        [report(host_identity(ITOPS, "h1"), 1)],
    )
    assert result.results[0].error_type == "AuthorizationError"


def test_refused_operation_leaves_store_untouched() -> None:
    store = seeded_store()
    before = dict(store.data)
    tx = TxLedger(store, who(SECOPS, "approver").caller, NOW)
    with pytest.raises(SignatureError):
        approvals.approve_patch(tx, statement(who(SECOPS, "approver"), artifact="cd" * 32))
    assert store.data == before
    assert Approval.RECORD_TYPE not in {k.record_type for k in store.data}
