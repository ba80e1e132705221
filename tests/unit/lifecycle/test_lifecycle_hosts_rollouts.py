"""Hosts (enrollment, inventory, decommissioning) and rollout gates."""

from __future__ import annotations

import pytest

from chaincode.lifecycle import (
    AlreadyExistsError,
    AuthorizationError,
    PreconditionError,
    TransitionError,
    ValidationError,
)
from chaincode.lifecycle.ops import deployments, hosts, rollouts
from chaincode.lifecycle.queries import get_record
from tests.unit.lifecycle.lifecycle_support import (
    INVENTORY,
    ITOPS,
    NOW,
    SECOPS,
    approved_store,
    host_identity,
    identity,
    report,
    run,
    who,
)


def test_enrollment_requires_a_host_certificate_for_that_host() -> None:
    store = approved_store()
    admin = who(ITOPS, "admin")
    with pytest.raises(ValidationError, match="host_id=h9"):
        run(store, admin, hosts.enroll_host, "h9", host_identity(ITOPS, "h1").cert_pem.decode())
    with pytest.raises(ValidationError, match="host_id=h9"):
        run(store, admin, hosts.enroll_host, "h9", who(ITOPS, "operator").cert_pem.decode())
    with pytest.raises(AlreadyExistsError):
        run(store, admin, hosts.enroll_host, "h1", host_identity(ITOPS, "h1").cert_pem.decode())
    with pytest.raises(AuthorizationError):
        run(store, who(ITOPS, "feed"), hosts.enroll_host, "h9", "x")


def test_inventory_updates_by_the_host_itself_or_its_organization_only() -> None:
    store = approved_store()
    run(store, host_identity(ITOPS, "h1"), hosts.update_inventory_digest, "h1", "aa" * 32)
    run(store, who(ITOPS, "operator"), hosts.update_inventory_digest, "h2", "bb" * 32)
    assert get_record(store, "Host", "h1").to_dict()["inventory_sha256"] == "aa" * 32
    with pytest.raises(AuthorizationError, match="cannot act for"):
        run(store, host_identity(ITOPS, "h1"), hosts.update_inventory_digest, "h2", INVENTORY)
    with pytest.raises(AuthorizationError, match="belongs to ITOpsMSP"):
        run(store, who(SECOPS, "operator"), hosts.update_inventory_digest, "h2", INVENTORY)
    with pytest.raises(ValidationError, match="inventory_sha256"):
        run(store, who(ITOPS, "operator"), hosts.update_inventory_digest, "h2", "nope")


def test_decommissioned_host_is_final_and_cannot_report() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1", "h2"]}])
    run(store, op, rollouts.advance_rollout, "R-1")
    run(store, op, hosts.decommission_host, "h1")
    with pytest.raises(TransitionError, match="DECOMMISSIONED: cannot move to DECOMMISSIONED"):
        run(store, op, hosts.decommission_host, "h1")
    with pytest.raises(TransitionError, match="DECOMMISSIONED"):
        run(store, op, hosts.update_inventory_digest, "h1", INVENTORY)
    result = run(store, op, deployments.report_deployments, [report(host_identity(ITOPS, "h1"), 1)])
    assert result.results[0].error_type == "PreconditionError"


def test_wave_gates_threshold_soak_and_states() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(
        store,
        op,
        rollouts.create_rollout,
        "R-1",
        "P-1",
        [{"hosts": ["h1", "h2"]}, {"hosts": ["h3"]}],
        failure_threshold_pct=0,
        soak_seconds=600,
    )
    with pytest.raises(TransitionError, match="PLANNED: cannot move to COMPLETED"):
        run(store, op, rollouts.complete_rollout, "R-1")
    run(store, op, rollouts.advance_rollout, "R-1")
    with pytest.raises(PreconditionError, match="2 pending"):
        run(store, op, rollouts.advance_rollout, "R-1")
    with pytest.raises(PreconditionError, match="advance first"):
        run(store, op, rollouts.complete_rollout, "R-1")
    h1, h2 = host_identity(ITOPS, "h1"), host_identity(ITOPS, "h2")
    result = run(
        store,
        op,
        deployments.report_deployments,
        [report(h1, 1), report(h2, 1, "FAILED"), report(h2, 2, "APPLIED")],
    )
    assert [r.error_type for r in result.results] == ["", "", "TransitionError"]
    with pytest.raises(PreconditionError, match="1/2 failed"):
        run(store, op, rollouts.advance_rollout, "R-1")
    run(store, op, deployments.report_deployments, [report(h2, 3, "ROLLED_BACK")])
    run(store, op, rollouts.pause_rollout, "R-1")
    with pytest.raises(TransitionError, match="PAUSED: cannot move to RUNNING"):
        run(store, op, rollouts.advance_rollout, "R-1")
    with pytest.raises(TransitionError, match="PAUSED: cannot move to PAUSED"):
        run(store, op, rollouts.pause_rollout, "R-1")
    run(store, op, rollouts.resume_rollout, "R-1")
    with pytest.raises(TransitionError, match="RUNNING: cannot move to RUNNING"):
        run(store, op, rollouts.resume_rollout, "R-1")
    run(store, op, rollouts.halt_rollout, "R-1")
    run(store, op, rollouts.roll_back_rollout, "R-1")
    assert get_record(store, "Rollout", "R-1").state == "ROLLED_BACK"


def test_soak_time_and_last_wave() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(
        store,
        op,
        rollouts.create_rollout,
        "R-1",
        "P-1",
        [{"hosts": ["h1"]}, {"groups": ["web"]}],
        soak_seconds=600,
    )
    run(store, op, rollouts.advance_rollout, "R-1")
    run(store, op, deployments.report_deployments, [report(host_identity(ITOPS, "h1"), 1)])
    with pytest.raises(PreconditionError, match="soaks until"):
        run(store, op, rollouts.advance_rollout, "R-1")
    run(store, op, rollouts.advance_rollout, "R-1", now=NOW + 600)
    with pytest.raises(PreconditionError, match="last wave"):
        run(store, op, rollouts.advance_rollout, "R-1", now=NOW + 600)


@pytest.mark.parametrize(
    ("waves", "message"),
    [
        ([], "waves"),
        ([{"groups": ["nobody"]}], "selects no enrolled host"),
        (["h1"], "must be an object"),
        ([{"hosts": ["h1"]}, {"hosts": ["h1"]}], "already in a wave"),
    ],
)
def test_bad_waves_are_refused(waves: list[object], message: str) -> None:
    store = approved_store()
    with pytest.raises(ValidationError, match=message):
        run(store, who(ITOPS, "operator"), rollouts.create_rollout, "R-1", "P-1", waves)


def test_rollout_ids_are_unique_and_batches_bounded() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}])
    with pytest.raises(AlreadyExistsError):
        run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}])
    with pytest.raises(ValidationError, match="reports"):
        run(store, op, deployments.report_deployments, [])
    with pytest.raises(ValidationError, match="reports"):
        run(store, op, deployments.report_deployments, "x")
    run(store, op, rollouts.advance_rollout, "R-1")
    wrong_patch = report(host_identity(ITOPS, "h1"), 1, patch_id="P-9")
    result = run(store, op, deployments.report_deployments, [wrong_patch])
    assert result.results[0].error_type == "ValidationError"
    assert result.results[0].to_dict()["accepted"] is False
    host_caller = identity(ITOPS, "host", host_id="h1")
    assert (
        run(
            store,
            host_caller,
            deployments.report_deployments,
            [report(host_identity(ITOPS, "h1"), 1)],
        ).accepted
        == 1
    )
