"""Reconciling a rollout's hosts: each host's ground truth (its agent's state on disk) against
its records on the ledger, after faults, to show that no report was lost and none recorded
twice.

The comparison (:func:`reconcile`) is pure; :func:`host_truth` reads a host's state directory
(the agent's anti-rollback state, report sequence counter and outbox, and the simulated
agent's finished orders) and :func:`ledger_view` shapes the ledger's Deployment history.

Per host, for one rollout:

- **lost**: the agent finished its run (the order is marked done) and holds no queued report
  for it, yet the ledger's deployment never left SCHEDULED/DISPATCHED: a report the agent
  sent was dropped on its way;
- **duplicated**: the deployment's history records a report sequence twice or reaches one
  status twice (a report applied twice);
- **mismatched**: the host and the ledger disagree about the patch: the agent's state says
  this rollout installed it while the ledger says it failed or was rolled back, or the ledger
  says VERIFIED/APPLIED while the host holds no patch of this rollout; or the ledger accepted
  a report sequence above any the agent ever numbered;
- **unfinished**: the host has not finished its run and nothing is queued (it was never
  released, or it is still at work): not a loss, but a rollout that COMPLETED has none.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchledger.agent.errors import ConfigError
from patchledger.agent.outbox import Outbox
from patchledger.agent.rollback_guard import RollbackGuard
from patchledger.agent.sequence import SequenceFile
from patchledger.app.dispatch.ledger import LedgerPort

__all__ = ["HostTruth", "LedgerDeployment", "Reconciliation", "host_truth", "ledger_view",
           "reconcile", "reconcile_fleet"]

_UNSETTLED = frozenset({"SCHEDULED", "DISPATCHED"})
_HAS_PATCH = frozenset({"APPLIED", "VERIFIED"})
_NO_PATCH = frozenset({"FAILED", "ROLLED_BACK"})


@dataclass(frozen=True)
class HostTruth:
    """What a host's agent knows about one rollout.

    Attributes:
        host_id: the host.
        finished: the agent finished its order of the rollout (it will not run it again).
        installed: the agent's anti-rollback state names this rollout as the one that
            installed the patch now on the host.
        queued: outcomes of the rollout's reports still in the agent's outbox (not yet taken
            by the app).
        last_sequence: the last report sequence number the agent handed out.
    """

    host_id: str
    finished: bool
    installed: bool
    queued: tuple[str, ...] = ()
    last_sequence: int = 0


@dataclass(frozen=True)
class LedgerDeployment:
    """A host's deployment in the rollout as the ledger keeps it.

    Attributes:
        host_id: the host.
        history: ``(status, report_sequence)`` of every version of the record, oldest first
            (the first is its creation, SCHEDULED with sequence 0).
        host_sequence: the highest report sequence the ledger accepted for the host (see
            :func:`ledger_view`).
    """

    host_id: str
    history: tuple[tuple[str, int], ...]
    host_sequence: int = 0

    @property
    def status(self) -> str:
        """The current status."""
        return self.history[-1][0] if self.history else "SCHEDULED"


@dataclass
class Reconciliation:
    """The outcome: hosts by finding, each with a sentence naming what disagrees."""

    hosts: int = 0
    agreed: list[str] = field(default_factory=list)
    lost: dict[str, str] = field(default_factory=dict)
    duplicated: dict[str, str] = field(default_factory=dict)
    mismatched: dict[str, str] = field(default_factory=dict)
    unfinished: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated or mismatched (unfinished hosts are allowed)."""
        return not (self.lost or self.duplicated or self.mismatched)

    def summary(self) -> dict[str, Any]:
        """Counts, and the first few findings of each kind."""
        def first(found: Mapping[str, str]) -> dict[str, str]:
            return dict(sorted(found.items())[:5])
        return {"hosts": self.hosts, "agreed": len(self.agreed), "lost": len(self.lost),
                "duplicated": len(self.duplicated), "mismatched": len(self.mismatched),
                "unfinished": len(self.unfinished),
                "examples": {k: first(v) for k, v in (
                    ("lost", self.lost), ("duplicated", self.duplicated),
                    ("mismatched", self.mismatched), ("unfinished", self.unfinished)) if v}}


def _duplicate(ledger: LedgerDeployment) -> str:
    # a version that changed the report sequence recorded a report; others (a decision that
    # touched the record) keep the sequence and are not reports
    history = ledger.history
    reports = [version for before, version in itertools.pairwise(history)
               if version[1] != before[1]]
    sequences = [seq for _, seq in reports]
    repeated = sorted({s for s in sequences if sequences.count(s) > 1})
    if repeated:
        return f"report sequence(s) {repeated} recorded more than once: {list(reports)}"
    if any(b <= a for a, b in itertools.pairwise(sequences)):
        return f"report sequences do not increase: {list(reports)}"
    statuses = [status for status, _ in reports]
    twice = sorted({s for s in statuses if statuses.count(s) > 1})
    if twice:
        return f"status(es) {twice} reached more than once: {list(reports)}"
    return ""


def _mismatch(truth: HostTruth, ledger: LedgerDeployment) -> str:
    status = ledger.status
    if truth.queued:
        return ""  # the ledger has not seen the queued reports yet
    if truth.installed and status in _NO_PATCH:
        return f"the agent installed the patch in this rollout, the ledger says {status}"
    if not truth.installed and status in _HAS_PATCH:
        return f"the ledger says {status}, the agent's state holds no patch of this rollout"
    if ledger.host_sequence > truth.last_sequence:
        return (f"the ledger accepted report sequence {ledger.host_sequence}, the agent "
                f"numbered only up to {truth.last_sequence}")
    return ""


def reconcile(truths: Iterable[HostTruth], ledger: Mapping[str, LedgerDeployment]
              ) -> Reconciliation:
    """Compare every host's ground truth with its ledger deployment (module docstring).

    A host without a deployment on the ledger is counted as unfinished (it was not part of the
    rollout). Each host lands in exactly one list, the first that applies of duplicated,
    mismatched, lost, unfinished, agreed.
    """
    out = Reconciliation()
    for truth in truths:
        out.hosts += 1
        host = truth.host_id
        deployment = ledger.get(host)
        if deployment is None:
            out.unfinished[host] = "no deployment on the ledger"
            continue
        duplicate = _duplicate(deployment)
        mismatch = _mismatch(truth, deployment)
        if duplicate:
            out.duplicated[host] = duplicate
        elif mismatch:
            out.mismatched[host] = mismatch
        elif truth.finished and not truth.queued and deployment.status in _UNSETTLED:
            out.lost[host] = (f"the agent finished its run, nothing is queued, the ledger "
                              f"still says {deployment.status}")
        elif not truth.finished or truth.queued:
            why = "reports queued: " + ", ".join(truth.queued) if truth.queued else \
                "the agent has not finished its run"
            out.unfinished[host] = f"{why} (ledger: {deployment.status})"
        else:
            out.agreed.append(host)
    return out


def host_truth(host_id: str, state_dir: Path, rollout_id: str) -> HostTruth:
    """A host's ground truth about ``rollout_id`` from its agent's state directory: the
    anti-rollback state (``installed.json``), the report counter, the outbox and the
    simulated agent's finished orders (``orders-done.json``).

    Raises:
        ConfigError: a state file is corrupt (named).
    """
    done_file = state_dir / "orders-done.json"
    finished = False
    if done_file.exists():
        try:
            finished = any(r == rollout_id for _, r in json.loads(done_file.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"finished orders {done_file} are unreadable: {exc}") from exc
    state = RollbackGuard(state_dir / "installed.json").load()
    installed = any(t.get("rollout_id") == rollout_id for t in state.targets.values())
    queued = tuple(str(item["report"].get("outcome"))
                   for item in Outbox(state_dir / "outbox").pending()
                   if isinstance(item.get("report"), dict)
                   and item["report"].get("rollout_id") == rollout_id)
    last = SequenceFile(state_dir / "report-sequence.json").last()
    return HostTruth(host_id, finished, installed, queued, last)


def ledger_view(host_id: str, versions: Sequence[Mapping[str, Any]], host_sequence: int
                ) -> LedgerDeployment:
    """A :class:`LedgerDeployment` from ``GetHistory("Deployment", ...)`` versions (each
    ``{"record": {...}}``, oldest first) and the host record's ``last_report_sequence``.

    The highest sequence the ledger accepted is the larger of the host record's counter (a
    ledger written before reports stopped writing the Host record) and the deployment's own
    ``report_sequence`` (the replay counter since; docs/benchmarks.md)."""
    history = tuple((str(v["record"].get("status", "")),
                     int(v["record"].get("report_sequence", 0))) for v in versions
                    if isinstance(v.get("record"), dict))
    accepted = max([host_sequence, *(sequence for _, sequence in history)])
    return LedgerDeployment(host_id, history, accepted)


def reconcile_fleet(ledger: LedgerPort, fleet_dir: Path, host_ids: Iterable[str],
                    rollout_id: str) -> Reconciliation:
    """Reconcile the simulated hosts ``host_ids`` of ``fleet_dir`` (each with its agent state
    in ``<fleet_dir>/<host>/agent``) with their deployments of ``rollout_id`` on the ledger.

    Raises:
        ConfigError: a host's state file is corrupt.
        GatewayError: the ledger could not be read.
    """
    wanted = list(host_ids)
    hosts = {h["host_id"]: h for h in ledger.records("Host") if h["host_id"] in set(wanted)}
    views = {}
    for host_id in wanted:
        if host_id not in hosts:
            continue
        versions = ledger.evaluate("GetHistory", "Deployment", f"{rollout_id}/{host_id}") or []
        if versions:
            views[host_id] = ledger_view(host_id, versions,
                                         int(hosts[host_id].get("last_report_sequence", 0)))
    truths = [host_truth(h, fleet_dir / h / "agent", rollout_id) for h in wanted]
    return reconcile(truths, views)
