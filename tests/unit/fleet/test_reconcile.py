"""Reconciliation of hosts' ground truth against their ledger deployments (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchledger.agent.errors import ConfigError
from patchledger.app.fleet.reconcile import (
    HostTruth,
    LedgerDeployment,
    host_truth,
    ledger_view,
    reconcile,
    reconcile_fleet,
)


def _ledger(host: str, *versions: tuple[str, int], seq: int | None = None) -> LedgerDeployment:
    history = (("SCHEDULED", 0), *versions)
    return LedgerDeployment(host, history, max((q for _, q in history), default=0)
                            if seq is None else seq)


def test_agreeing_hosts_of_every_outcome() -> None:
    truths = [HostTruth("h1", True, True, last_sequence=1),
              HostTruth("h2", True, False, last_sequence=3),
              HostTruth("h3", False, False)]
    ledger = {"h1": _ledger("h1", ("VERIFIED", 1)),
              "h2": _ledger("h2", ("FAILED", 2), ("ROLLED_BACK", 3)),
              "h3": _ledger("h3")}
    result = reconcile(truths, ledger)
    assert result.ok and result.hosts == 3
    assert result.agreed == ["h1", "h2"]
    assert result.unfinished == {"h3": "the agent has not finished its run (ledger: SCHEDULED)"}


def test_a_finished_run_without_a_recorded_or_queued_report_is_lost() -> None:
    result = reconcile([HostTruth("h1", True, True, last_sequence=1)],
                       {"h1": _ledger("h1")})
    assert not result.ok
    assert result.lost == {"h1": "the agent finished its run, nothing is queued, the ledger "
                                 "still says SCHEDULED"}


def test_a_queued_report_is_pending_not_lost() -> None:
    result = reconcile([HostTruth("h1", True, True, ("VERIFIED",), 1)], {"h1": _ledger("h1")})
    assert result.ok and "reports queued: VERIFIED" in result.unfinished["h1"]


@pytest.mark.parametrize("versions", [
    (("APPLIED", 2), ("VERIFIED", 3), ("ROLLED_BACK", 2)),  # one sequence recorded twice
    (("APPLIED", 1), ("VERIFIED", 3), ("ROLLED_BACK", 2)),  # sequences going back
    (("APPLIED", 1), ("VERIFIED", 2), ("VERIFIED", 3)),     # a status reached twice
])
def test_a_report_recorded_twice_is_duplicated(versions: tuple[tuple[str, int], ...]) -> None:
    result = reconcile([HostTruth("h1", True, False, last_sequence=3)],
                       {"h1": _ledger("h1", *versions)})
    assert list(result.duplicated) == ["h1"] and not result.agreed


def test_a_version_that_keeps_the_sequence_is_no_report() -> None:
    # a decision touching the record (same sequence) is not a second report
    result = reconcile([HostTruth("h1", True, True, last_sequence=1)],
                       {"h1": _ledger("h1", ("VERIFIED", 1), ("VERIFIED", 1))})
    assert result.agreed == ["h1"]


@pytest.mark.parametrize(("truth", "versions", "says"), [
    (HostTruth("h1", True, True, last_sequence=1), (("FAILED", 1),),
     "the agent installed the patch in this rollout, the ledger says FAILED"),
    (HostTruth("h1", True, False, last_sequence=1), (("VERIFIED", 1),),
     "the ledger says VERIFIED, the agent's state holds no patch of this rollout"),
    (HostTruth("h1", True, True, last_sequence=1), (("VERIFIED", 4),),
     "the ledger accepted report sequence 4, the agent numbered only up to 1"),
])
def test_host_and_ledger_disagreeing_is_a_mismatch(
    truth: HostTruth, versions: tuple[tuple[str, int], ...], says: str,
) -> None:
    result = reconcile([truth], {"h1": _ledger("h1", *versions)})
    assert result.mismatched == {"h1": says}
    assert result.summary()["mismatched"] == 1


def test_a_host_without_a_deployment_is_unfinished() -> None:
    result = reconcile([HostTruth("h9", False, False)], {})
    assert result.ok and result.unfinished == {"h9": "no deployment on the ledger"}


def test_host_truth_reads_the_agent_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "agent"
    assert host_truth("h1", state, "R-1") == HostTruth("h1", False, False, (), 0)
    state.mkdir()
    (state / "orders-done.json").write_text(json.dumps([["apply", "R-1"]]))
    (state / "installed.json").write_text(json.dumps({
        "version": 1, "retired": [],
        "targets": {"tree:app": {"patch_id": "P-1", "rollout_id": "R-1", "installed_at": 1}}}))
    (state / "report-sequence.json").write_text('{"last": 2}')
    (state / "outbox").mkdir()
    (state / "outbox" / "000000000002.json").write_text(json.dumps(
        {"report": {"rollout_id": "R-1", "outcome": "VERIFIED", "sequence": 2},
         "signature": "x"}))
    assert host_truth("h1", state, "R-1") == HostTruth("h1", True, True, ("VERIFIED",), 2)
    assert host_truth("h1", state, "R-2") == HostTruth("h1", False, False, (), 2)
    (state / "orders-done.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"orders-done\.json"):
        host_truth("h1", state, "R-1")


def test_ledger_view_takes_the_history_oldest_first() -> None:
    versions: list[dict[str, Any]] = [{"record": {"status": "SCHEDULED", "report_sequence": 0}},
                {"record": {"status": "VERIFIED", "report_sequence": 5}}, {"deleted": True}]
    view = ledger_view("h1", versions, 5)
    assert view.history == (("SCHEDULED", 0), ("VERIFIED", 5)) and view.status == "VERIFIED"


def test_ledger_view_takes_the_accepted_sequence_from_the_deployment_too() -> None:
    # reports write only the Deployment (its report_sequence is the replay counter); the host
    # record's counter stays where an older ledger left it
    versions: list[dict[str, Any]] = [{"record": {"status": "SCHEDULED", "report_sequence": 0}},
                                      {"record": {"status": "VERIFIED", "report_sequence": 7}}]
    assert ledger_view("h1", versions, 0).host_sequence == 7
    assert ledger_view("h1", versions, 9).host_sequence == 9


class _Ledger:
    """The two reads reconcile_fleet makes, from dictionaries."""

    def __init__(self, hosts: list[dict[str, Any]], history: dict[str, list[Any]]) -> None:
        self.hosts, self.history = hosts, history

    def records(self, record_type: str, status: str = "") -> Any:
        assert record_type == "Host"
        return iter(self.hosts)

    def evaluate(self, function: str, *args: Any) -> Any:
        assert (function, args[0]) == ("GetHistory", "Deployment")
        return self.history.get(args[1], [])

    def submit(self, function: str, *args: Any, endorsing: Any = ()) -> Any:
        raise AssertionError("reconciling only reads")


def test_reconcile_fleet_reads_each_hosts_state_and_history(tmp_path: Path) -> None:
    for host in ("h1", "h2"):
        state = tmp_path / host / "agent"
        state.mkdir(parents=True)
        (state / "orders-done.json").write_text(json.dumps([["apply", "R-1"]]))
        (state / "report-sequence.json").write_text('{"last": 1}')
    ledger = _Ledger(
        [{"host_id": "h1", "last_report_sequence": 1}, {"host_id": "h2", "last_report_sequence": 0},
         {"host_id": "other"}],
        {"R-1/h1": [{"record": {"status": "SCHEDULED", "report_sequence": 0}},
                    {"record": {"status": "FAILED", "report_sequence": 1}}],
         "R-1/h2": [{"record": {"status": "SCHEDULED", "report_sequence": 0}}]})
    result = reconcile_fleet(ledger, tmp_path, ["h1", "h2", "h3"], "R-1")
    assert result.agreed == ["h1"]
    assert list(result.lost) == ["h2"]  # finished, nothing queued, the ledger never heard
    assert result.unfinished == {"h3": "no deployment on the ledger"}
