"""DecideRollout: every rollout move with its reason on the record (the dispatcher's decisions
are attributable and explained); bad actions and reasons refused, changing nothing."""

from __future__ import annotations

import pytest

from patchledger.chaincode.lifecycle import AuthorizationError, TransitionError, ValidationError
from patchledger.chaincode.lifecycle.ledger import MemoryStore
from patchledger.chaincode.lifecycle.ops import rollouts
from patchledger.chaincode.lifecycle.queries import get_record
from patchledger.chaincode.lifecycle.rollout import Rollout
from tests.unit.lifecycle.lifecycle_support import ITOPS, SECOPS, approved_store, run, who


def rollout(store: MemoryStore) -> Rollout:
    record = get_record(store, "Rollout", "R-1")
    assert isinstance(record, Rollout)
    return record


def test_each_decision_records_its_reason_and_a_plain_move_clears_it() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}, {"hosts": ["h2"]}])
    run(store, op, rollouts.decide_rollout, "R-1", "advance", "plan started: canary of 1 host")
    record = rollout(store)
    assert (record.state, record.reason) == ("RUNNING", "plan started: canary of 1 host")
    run(store, op, rollouts.decide_rollout, "R-1", "pause", "wave 0 inconclusive: h1 offline")
    assert rollout(store).reason == "wave 0 inconclusive: h1 offline"
    run(store, op, rollouts.resume_rollout, "R-1")
    assert rollout(store).reason == ""
    run(store, op, rollouts.decide_rollout, "R-1", "halt", "patch P-1 revoked")
    run(store, op, rollouts.decide_rollout, "R-1", "roll_back", "patch P-1 revoked")
    record = rollout(store)
    assert (record.state, record.reason) == ("ROLLED_BACK", "patch P-1 revoked")


@pytest.mark.parametrize(("action", "reason", "error", "message"), [
    ("explode", "why", ValidationError, "action"),
    ("pause", "", ValidationError, "reason"),
    ("pause", "x" * 5000, ValidationError, "reason"),
    ("complete", "too early", TransitionError, "PLANNED: cannot move to COMPLETED"),
])
def test_bad_decisions_are_refused_and_change_nothing(
    action: str, reason: str, error: type[Exception], message: str
) -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}])
    before = get_record(store, "Rollout", "R-1")
    with pytest.raises(error, match=message):
        run(store, op, rollouts.decide_rollout, "R-1", action, reason)
    assert get_record(store, "Rollout", "R-1") == before


def test_only_the_rollouts_organization_decides() -> None:
    store = approved_store()
    run(store, who(ITOPS, "operator"), rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}])
    with pytest.raises(AuthorizationError):
        run(store, who(SECOPS, "operator"), rollouts.decide_rollout, "R-1", "halt", "mine now")
