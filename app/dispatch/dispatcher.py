"""The dispatcher: one process per organization that drives its rollouts on the ledger and
batches its agents' signed reports into ``ReportDeployments`` transactions.

Each step (every ``interval`` seconds):

1. **Reports**: the inbox (:mod:`app.dispatch.board`) is cut into batches of at most
   ``batch_max_reports`` reports, whole agent runs, in arrival order; a batch is submitted when
   it is full or its oldest report waited ``batch_max_latency`` seconds (since this process
   first saw it). Each submit waits
   until every endorsing organization's peer committed it (:mod:`app.dispatch.ledger`), then
   its inbox files are removed. Reports the ledger refuses as replays were recorded before (a
   resubmission after a crash); other refusals are logged and kept in ``refused.jsonl``.
2. **Rollouts**: for every rollout this dispatcher planned (``plans/<id>.json``), its state is
   read from the ledger (Rollout and Patch records; the Deployment records incrementally,
   below) and:

   - the patch is REVOKED and the rollout not finished: **halt**, then **roll back**
     (a revocation stops dispatching at once);
   - HALTED by anyone else (an operator, the ledger's revocation rule): **roll back**; halted
     by this dispatcher's own failure verdict, rolled back when the plan says so;
   - PLANNED: **advance** (the canary starts);
   - RUNNING: the wave's verdict (:mod:`app.dispatch.gates`): RUNNING releases hosts within
     the disruption budget, the concurrency, their windows and online; SUCCESS **advances** or
     **completes**; FAILURE **halts** (and **rolls back** when the plan says so);
     INCONCLUSIVE **pauses** for a person (who resumes it; the wave's timeout restarts then);
   - PAUSED: nothing is released; released hosts may still report;
   - ROLLED_BACK: hosts that reported the patch applied, and released hosts that had not
     reported when the rollout stopped, are ordered to roll back (each agent rolls back only
     what its own state shows it installed), until none reports APPLIED or VERIFIED any more
     and the wave timeout passed since the roll back.

   Every decision is a ``DecideRollout`` transaction carrying its reason, which the rollout
   record keeps (its history lists every decision with its reason).
3. **Orders**: ``orders.json`` is rewritten from the released hosts and the ledger.

Incremental state: the deployments are read in full (``ListRecords``) only at the first step,
when a rollout's status or current wave changed since the last full read (a wave start
schedules deployments), after a batch result that cannot be placed (a replay), and every
``resync_after`` seconds; between full reads each report the ledger accepted in a batch this
process committed sets its deployment's status. Deployments change only through reports (which
pass through this dispatcher) and wave starts, so the view is the ledger's.

Verified statuses only: deployment records carry no key-level policy, so two colluding
organizations can commit a status of this organization's host that the host never reported
(docs/security.md, "Host reports"). On every full read each reported status is checked with
:func:`~patchledger.chaincode.lifecycle.deployment_proof.check_deployment` against the host's
enrolled certificate (its Host record) and the rollout's waves, once per (rollout, host, report
sequence, status, signature): the result is cached, so a resync verifies only what changed. A
status that does not verify is logged (host, rollout, sequence, reason), counts as no report
(``SCHEDULED``: neither verified nor failed; a released host keeps its order), and the gates
(:mod:`app.dispatch.gates`) make the wave INCONCLUSIVE, so it pauses for a person with the
hosts and reasons in the recorded decision. The outcomes of this process's own committed
batches need no check: they are its agents' signed reports, which the honest endorsers'
chaincode verified; one of them replaces a forged status of its host.

Restart semantics: the state is the ledger plus ``checkpoint.json`` (the released hosts per
rollout, written durably *before* the release is published, and the finished rollouts, whose
released hosts and plan files are no longer read: the memory of a long-running dispatcher does
not grow with the rollouts it drove) and the plan files. Decisions are
derived from the ledger's state each step, so a decision made before a crash is seen, not
repeated; one in flight during the crash either committed (and is seen) or did not (and is
made again): two copies cannot both commit, because each reads the rollout record and the
second fails its MVCC check. Inbox files are removed only after their batch committed, and a
resubmitted report is refused as a replay: nothing is lost or recorded twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchledger.agent.window import Window, parse_window
from patchledger.app.dispatch.board import Board, InboxFile, Order
from patchledger.app.dispatch.gates import (
    HostView,
    VerdictKind,
    WaveRules,
    WaveView,
    classify,
    select_releases,
    wave_verdict,
)
from patchledger.app.dispatch.ledger import LedgerPort, SubmitFailed
from patchledger.app.dispatch.planner import (
    HostInfo,
    PlanError,
    RolloutPlan,
    RolloutRequest,
    plan_rollout,
)
from patchledger.app.errors import UserError
from patchledger.app.fabric import GatewayError
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.deployment_proof import check_deployment
from patchledger.chaincode.lifecycle.errors import LifecycleError
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.rollout import Rollout
from patchledger.common.durable import write_atomic

__all__ = ["Decision", "DispatchSettings", "Dispatcher", "StepReport"]


def _host_of(signed: Mapping[str, Any]) -> str:
    report = signed.get("report")
    return str(report.get("host_id", "")) if isinstance(report, Mapping) else ""

log = logging.getLogger(__name__)

#: Prefix of every reason this dispatcher records.
PREFIX = "dispatcher: "
#: Ledger maximum of reports per ReportDeployments batch.
MAX_BATCH = 500
_ACTIVE = frozenset({"SCHEDULED", "DISPATCHED", "APPLIED"})
_APPLIED = frozenset({"APPLIED", "VERIFIED"})


@dataclass(frozen=True)
class DispatchSettings:
    """How the dispatcher batches and paces (a typed config; the CLI reads the flags).

    Attributes:
        batch_max_reports: reports per ``ReportDeployments`` (1 to 500).
        batch_max_latency: seconds a report may wait for its batch to fill.
        interval: seconds between steps.
        offline_after: a host not seen polling for this long is offline (not released).
        report_endorsing: organizations named to endorse report batches (empty: the
            gateway chooses).
        batches_in_flight: report batches submitted at once (1 to 8); batches in flight
            together never hold reports of the same host, so a host's reports still reach
            the ledger in order and concurrent batches write disjoint keys.
        resync_after: seconds after which the deployments are read again from the ledger
            in full even when nothing this dispatcher knows of changed them (a safety net
            for writes it did not make; see "Incremental state" in the module docstring).
    """

    batch_max_reports: int = 200
    batch_max_latency: float = 1.0
    interval: float = 0.5
    offline_after: float = 60.0
    report_endorsing: tuple[str, ...] = ()
    resync_after: float = 300.0
    batches_in_flight: int = 1

    def __post_init__(self) -> None:
        """Raises:
        UserError: a value out of range, naming it.
        """
        if not 1 <= self.batch_max_reports <= MAX_BATCH:
            raise UserError(f"batch_max_reports must be 1 to {MAX_BATCH}, not "
                            f"{self.batch_max_reports}")
        if not 1 <= self.batches_in_flight <= 8:
            raise UserError(f"batches_in_flight must be 1 to 8, not {self.batches_in_flight}")
        for name in ("batch_max_latency", "interval", "offline_after", "resync_after"):
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be above 0, not {getattr(self, name)}")


@dataclass(frozen=True)
class Decision:
    """A decision the dispatcher recorded on the ledger."""

    rollout_id: str
    action: str
    reason: str


@dataclass
class StepReport:
    """What one step did; ``progress`` counts each driven rollout's deployments by status
    as the step read them from the ledger."""

    decisions: list[Decision] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    batches: int = 0
    accepted: int = 0
    replayed: int = 0
    refused: int = 0
    progress: dict[str, Counter[str]] = field(default_factory=dict)
    forged: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per rollout: the hosts whose recorded status did not verify, and why (not counted)."""


@dataclass
class _Checkpoint:
    released: dict[str, list[str]] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> _Checkpoint:
        if not path.exists():
            return cls()
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls({str(k): [str(h) for h in v] for k, v in doc["released"].items()},
                       [str(r) for r in doc["finished"]])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"dispatcher checkpoint {path} is unreadable: {exc}") from exc

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps({"version": 1, "released": self.released,
                                       "finished": self.finished}, sort_keys=True))


class Dispatcher:
    """One organization's dispatcher over one state directory (module docstring)."""

    def __init__(self, ledger: LedgerPort, state_dir: Path, msp_id: str,
                 settings: DispatchSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """Args:
        ledger: the ledger adapter (as the organization's operator).
        state_dir: the checkpoint, plans, orders and inbox.
        msp_id: the organization (its enrolled hosts are planned).
        settings: batching and pacing.
        clock: seconds since the epoch.

        Raises:
            UserError: the checkpoint is unreadable.
        """
        self.ledger = ledger
        self.state_dir = state_dir
        self.msp_id = msp_id
        self.settings = settings or DispatchSettings()
        self.clock = clock
        self.board = Board(state_dir)
        self.plans_dir = state_dir / "plans"
        self.checkpoint_path = state_dir / "checkpoint.json"
        self.checkpoint = _Checkpoint.load(self.checkpoint_path)
        self._windows: dict[str, Window] = {}
        self._first_seen: dict[str, float] = {}  # inbox file -> when this process saw it
        # Incremental state (module docstring): the deployments per rollout as last read in
        # full, plus the outcomes of every report batch this process committed since; the
        # (status, wave) each rollout had at that read; when it was.
        self._deps: dict[str, dict[str, dict[str, Any]]] = {}
        self._synced_as: dict[str, tuple[str, int]] = {}
        self._synced_at = float("-inf")
        self.full_reads = 0
        # Verified statuses (module docstring): per rollout the hosts whose recorded status
        # does not verify and why; the cached checks by (rollout, host, sequence, status,
        # signature), "" when genuine; how many signature checks this process made.
        self._forged: dict[str, dict[str, str]] = {}
        self._proofs: dict[tuple[str, str, int, str, str], str] = {}
        self.verifications = 0

    # ---------------------------------------------------------------- planning

    def plans(self, skip: Collection[str] = ()) -> dict[str, RolloutPlan]:
        """The stored plans by rollout id, but for the rollouts in ``skip`` (their files are
        not read: a step skips the finished ones, whose number grows with every rollout).

        Raises:
            PlanError: a plan file is malformed (named).
        """
        out = {}
        if self.plans_dir.is_dir():
            for path in sorted(self.plans_dir.glob("*.json")):
                if path.stem in skip:
                    continue
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise PlanError(f"plan {path} is unreadable: {exc}") from exc
                plan = RolloutPlan.from_dict(data)
                out[plan.rollout_id] = plan
        return out

    def enrolled_hosts(self) -> list[HostInfo]:
        """The organization's ENROLLED hosts on the ledger."""
        return [HostInfo(h["host_id"], tuple(h.get("groups", ())),
                         h.get("maintenance_window") or "always")
                for h in self.ledger.records("Host", "ENROLLED")
                if h.get("owner_msp") == self.msp_id]

    def create_rollout(self, request: RolloutRequest) -> RolloutPlan:
        """Plan ``request`` over the organization's enrolled hosts, store the plan and create
        the rollout on the ledger (the dispatcher then runs it). The library function the
        org app's API calls.

        Raises:
            PlanError: the request cannot be planned, or a plan of that id exists.
            SubmitFailed: ``CreateRollout`` was refused (the patch is not APPROVED, ...);
                the plan is removed again.
        """
        path = self.plans_dir / f"{request.rollout_id}.json"
        if path.exists():
            raise PlanError(f"rollout {request.rollout_id!r} is already planned ({path})")
        plan = plan_rollout(request, self.enrolled_hosts())
        write_atomic(path, json.dumps(plan.to_dict(), sort_keys=True))
        try:
            self._ensure_created(plan)
        except (SubmitFailed, PlanError):
            path.unlink(missing_ok=True)
            raise
        log.info("rollout %s planned: %s", plan.rollout_id,
                 ", ".join(f"{w.label} {len(w.hosts)}" for w in plan.waves))
        return plan

    def _ensure_created(self, plan: RolloutPlan) -> None:
        """``CreateRollout`` of ``plan``, idempotent: a running dispatcher that sees the plan
        file before the planner's own ``CreateRollout`` committed creates the rollout too,
        and one of the two is refused (the id is taken); a refusal is therefore checked
        against the ledger, and the rollout found there, if it is this plan's (same owner,
        patch and waves), counts as created.

        Raises:
            SubmitFailed: ``CreateRollout`` was refused and no rollout of this plan exists.
            PlanError: a different rollout of that id exists on the ledger.
        """
        try:
            self.ledger.submit("CreateRollout", plan.create_rollout_argument())
            return
        except SubmitFailed as refusal:
            if not refusal.refused:
                raise
            try:
                existing = self.ledger.evaluate("GetRecord", "Rollout", plan.rollout_id)
            except GatewayError as exc:
                if "does not exist" in str(exc):
                    raise refusal from None
                raise
            mismatch = self._differs(plan, existing)
            if mismatch:
                raise PlanError(f"rollout {plan.rollout_id!r} exists on the ledger and is not "
                                f"this plan's: {mismatch}") from refusal
            log.info("rollout %s was created by another of this organization's clients "
                     "(the same plan): nothing to do", plan.rollout_id)

    def _differs(self, plan: RolloutPlan, rollout: Mapping[str, Any]) -> str:
        """What a ledger rollout record has that ``plan`` does not ("" when it is the plan's)."""
        if rollout.get("owner_msp") != self.msp_id:
            return f"owned by {rollout.get('owner_msp')}"
        if rollout.get("patch_id") != plan.patch_id:
            return f"it deploys {rollout.get('patch_id')}, the plan {plan.patch_id}"
        ledger_waves = [list(w.get("hosts", ())) for w in rollout.get("waves", ())]
        if ledger_waves != [list(w.hosts) for w in plan.waves]:
            return "its waves hold other hosts"
        return ""

    # -------------------------------------------------------------------- loop

    def run(self, stop: threading.Event, on_step: Callable[[StepReport], None] | None = None
            ) -> None:
        """Step until ``stop`` is set; a failed step (a peer that cannot be reached, a
        transaction whose retries ran out, an unreadable plan) is logged and retried with
        back-off, never a crash."""
        delay = self.settings.interval
        while not stop.is_set():
            try:
                report = self.step()
            except (GatewayError, OSError, UserError) as exc:
                # a peer unreachable, retries used up, an unreadable state file: logged and
                # retried with back-off, the process keeps its place (nothing half-done)
                log.warning("dispatcher step failed, retrying in %.1fs: %s", delay, exc)
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = self.settings.interval
            if on_step is not None:
                on_step(report)
            stop.wait(self.settings.interval)
        self.flush_reports(StepReport(), force=True)

    def step(self) -> StepReport:
        """One step (module docstring).

        Raises:
            GatewayError: the peer could not be reached (nothing half-done: retry).
            UserError: a state file is unreadable.
        """
        report = StepReport()
        self.flush_reports(report)
        finished = set(self.checkpoint.finished)
        plans = {k: v for k, v in self.plans(skip=finished).items() if k not in finished}
        orders: dict[str, Order] = {}
        if plans:
            seen = self.board.seen()
            records = {rid: self._records(plan) for rid, plan in plans.items()}
            reads = self.full_reads
            deployments = self._deployments(plans, records)
            if self.full_reads != reads:  # a full read takes a while: decide on fresh records
                records = {rid: self._records(plan) if found is not None else None
                           for (rid, found), plan in zip(records.items(), plans.values(),
                                                         strict=True)}
            report.progress = {rid: Counter(d.get("status", "") for d in deps.values())
                               for rid, deps in deployments.items()}
            report.forged = {rid: dict(found) for rid, found in self._forged.items() if found}
            for rollout_id, plan in plans.items():
                found = records[rollout_id]
                if found is not None:
                    orders.update(self._drive(plan, *found, deployments.get(rollout_id, {}),
                                              seen, report))
        self.board.publish_orders(orders)
        return report

    # ----------------------------------------------------------------- reports

    def flush_reports(self, report: StepReport, *, force: bool = False) -> None:
        """Submit the inbox's due batches (module docstring, step 1).

        Raises:
            GatewayError: the peer could not be reached (the files stay for the next try).
        """
        files = self.board.pending_reports()
        limit = self.settings.batch_max_reports
        due: list[tuple[list[dict[str, Any]], list[InboxFile]]] = []
        hosts_due: set[str] = set()
        while files:
            used: list[InboxFile] = []
            batch: list[dict[str, Any]] = []
            for f in files:
                if used and len(batch) + len(f.reports) > limit:
                    break
                used.append(f)
                batch.extend(f.reports)
            now = self.clock()
            first = self._first_seen.setdefault(used[0].path.name, now)
            waited = now - first
            if not force and len(batch) < limit and waited < self.settings.batch_max_latency:
                break
            hosts = {_host_of(r) for r in batch}
            if hosts & hosts_due or len(due) >= self.settings.batches_in_flight:
                self._submit_all(due, report)  # a host's reports stay in order
                due, hosts_due = [], set()
            due.append((batch[:MAX_BATCH], used))
            hosts_due |= hosts
            files = files[len(used):]
        self._submit_all(due, report)

    def _submit_all(self, due: list[tuple[list[dict[str, Any]], list[InboxFile]]],
                    report: StepReport) -> None:
        """Submit batches of disjoint hosts together (``batches_in_flight``), then record
        their results in order; the first failure is raised after every batch ended (the
        files of a batch that failed stay in the inbox)."""
        if len(due) <= 1:
            for batch, used in due:
                self._submit_batch(batch, used, report)
            return
        with ThreadPoolExecutor(len(due)) as pool:
            outcomes = list(pool.map(lambda job: self._endorse_batch(job[0]), due))
        failure: BaseException | None = None
        for (batch, used), outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failure = failure or outcome
                continue
            self._record_batch(batch, used, outcome, report)
        if failure is not None:
            raise failure

    def _endorse_batch(self, batch: list[dict[str, Any]]
                       ) -> Mapping[str, Any] | BaseException:
        try:
            return self._submitted(batch)
        except (GatewayError, SubmitFailed, OSError) as exc:
            return exc

    def _submitted(self, batch: list[dict[str, Any]]) -> Mapping[str, Any]:
        """``ReportDeployments`` of ``batch``; a batch refused whole is set aside (empty
        results).

        Raises:
            SubmitFailed: not a refusal (retries used up); GatewayError: peer unreachable.
        """
        try:
            result = self.ledger.submit("ReportDeployments", batch,
                                        endorsing=self.settings.report_endorsing)
        except SubmitFailed as exc:
            if not exc.refused:
                raise
            log.warning("a report batch was refused whole, set aside: %s", exc)
            self._set_aside(batch, str(exc))
            return {"results": [], "refused_whole": True}
        return result if isinstance(result, Mapping) else {"results": []}

    def _submit_batch(self, batch: list[dict[str, Any]], used: list[InboxFile],
                      report: StepReport) -> None:
        self._record_batch(batch, used, self._submitted(batch), report)

    def _record_batch(self, batch: list[dict[str, Any]], used: list[InboxFile],
                      result: Mapping[str, Any], report: StepReport) -> None:
        report.batches += 1
        refused = []
        for position, r in enumerate(result.get("results", [])):
            if r.get("accepted"):
                report.accepted += 1
                self._note_outcome(batch, int(r.get("index", position)))
            elif r.get("error_type") == "ReplayError":
                report.replayed += 1
                self._synced_at = float("-inf")  # recorded before: read the ledger again
            else:
                report.refused += 1
                refused.append(r)
        if refused:
            log.warning("%d report(s) refused, e.g. %s", len(refused), refused[0])
            self._set_aside(refused, "refused")
        for f in used:
            f.path.unlink(missing_ok=True)
            self._first_seen.pop(f.path.name, None)

    def _set_aside(self, items: Iterable[Mapping[str, Any]], why: str) -> None:
        path = self.state_dir / "refused.jsonl"
        with path.open("a", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps({"why": why, "at": self.clock(), "item": dict(item)}) + "\n")

    # ---------------------------------------------------------------- rollouts

    def _note_outcome(self, batch: list[dict[str, Any]], index: int) -> None:
        """A report the ledger accepted: its deployment now has the report's outcome."""
        try:
            report = batch[index]["report"]
            deployment = self._deps[report["rollout_id"]][report["host_id"]]
        except (IndexError, KeyError, TypeError):
            self._synced_at = float("-inf")  # not one this process knows: read in full
            return
        deployment["status"] = report["outcome"]
        self._forged.get(report["rollout_id"], {}).pop(report["host_id"], None)

    def _records(self, plan: RolloutPlan) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The plan's Rollout and Patch records; ``None`` when the rollout is not on the
        ledger (it is created then: the plan was stored and the process stopped before
        ``CreateRollout``, or the planner is creating it right now: :meth:`_ensure_created`).

        Raises:
            GatewayError: the peer could not be reached.
        """
        try:
            rollout = self.ledger.evaluate("GetRecord", "Rollout", plan.rollout_id)
        except GatewayError as exc:
            if "does not exist" not in str(exc):
                raise
            log.info("rollout %s is planned but not on the ledger: creating it",
                     plan.rollout_id)
            try:
                self._ensure_created(plan)
            except (SubmitFailed, PlanError) as refused:
                log.warning("rollout %s could not be created (retried next step): %s",
                            plan.rollout_id, refused)
            return None
        return rollout, self.ledger.evaluate("GetRecord", "Patch", plan.patch_id)

    def _deployments(self, plans: Mapping[str, RolloutPlan],
                     records: Mapping[str, tuple[dict[str, Any], dict[str, Any]] | None]
                     ) -> dict[str, dict[str, Any]]:
        """The deployments of the driven rollouts, read in full from the ledger only when
        needed (module docstring, "Incremental state"): at the first step, when a rollout's
        status or wave changed since the last read (a wave start schedules deployments, a
        halt or roll back changes what is ordered), after a replay or an unknown report,
        and every ``resync_after`` seconds; otherwise the last read plus the outcomes of the
        report batches this process committed since.

        Raises:
            GatewayError: a page could not be read.
        """
        now = self.clock()
        marks = {rid: (str(found[0]["status"]), int(found[0]["current_wave"]))
                 for rid, found in records.items() if found is not None}
        stale = now - self._synced_at >= self.settings.resync_after or any(
            self._synced_as.get(rid) != mark for rid, mark in marks.items())
        if stale:
            fresh: dict[str, dict[str, Any]] = {rid: {} for rid in plans}
            forged: dict[str, dict[str, str]] = {rid: {} for rid in plans}
            proofs: dict[tuple[str, str, int, str, str], str] = {}
            edge = _ProofEdge(self.ledger, records)
            for d in self.ledger.records("Deployment"):
                rid = str(d.get("rollout_id", ""))
                if rid in plans:
                    why = self._proof(d, edge, proofs)
                    if why:
                        forged[rid][d["host_id"]] = why
                        d = {**d, "status": "SCHEDULED"}  # counts as no report
                    fresh[rid][d["host_id"]] = d
            self._deps = fresh
            self._forged = forged
            self._proofs = proofs
            self._synced_as = marks
            self._synced_at = now
            self.full_reads += 1
        return {rid: self._deps.get(rid, {}) for rid in plans}

    def _proof(self, data: Mapping[str, Any], edge: _ProofEdge,
               proofs: dict[tuple[str, str, int, str, str], str]) -> str:
        """Why the recorded status ``data`` is not its host's ("" when it verifies or is
        SCHEDULED, i.e. no report); checked once per (rollout, host, sequence, status,
        signature) and kept in ``proofs``; a failure is logged.

        Raises:
            GatewayError: the Host records could not be read.
        """
        status = str(data.get("status", ""))
        if status == "SCHEDULED":
            return ""
        rid, host_id = str(data.get("rollout_id", "")), str(data.get("host_id", ""))
        sequence = data.get("report_sequence")
        key = (rid, host_id, sequence if isinstance(sequence, int) else -1, status,
               str(data.get("report_signature", "")))
        if key in self._proofs:
            proofs[key] = self._proofs[key]
            return proofs[key]
        self.verifications += 1
        why = edge.problems(data)
        proofs[key] = why
        if why:
            log.warning("rollout %s: host %s's recorded status %s (report sequence %s) does "
                        "not verify and is not counted: %s", rid, host_id, status, sequence,
                        why)
        return why

    def _decide(self, rollout_id: str, action: str, reason: str, report: StepReport) -> bool:
        text = (PREFIX + reason)[:1000]
        try:
            self.ledger.submit("DecideRollout", rollout_id, action, text)
        except SubmitFailed as exc:
            if not exc.refused:
                raise
            log.warning("rollout %s: %s refused (retried next step): %s", rollout_id, action,
                        exc)
            return False
        log.info("rollout %s: %s (%s)", rollout_id, action, text)
        report.decisions.append(Decision(rollout_id, action, text))
        with (self.state_dir / "decisions.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"at": self.clock(), "rollout_id": rollout_id,
                                 "action": action, "reason": text}) + "\n")
        return True

    def _finish(self, rollout_id: str) -> None:
        """Drive ``rollout_id`` no more: noted as finished in the checkpoint, and its released
        hosts dropped from it (they matter only while it runs; kept, they would grow this
        process's memory and every checkpoint write by a list of hosts per rollout)."""
        if rollout_id not in self.checkpoint.finished or \
                rollout_id in self.checkpoint.released:
            if rollout_id not in self.checkpoint.finished:
                self.checkpoint.finished.append(rollout_id)
            self.checkpoint.released.pop(rollout_id, None)
            self.checkpoint.save(self.checkpoint_path)

    def _window(self, text: str) -> Window:
        if text not in self._windows:
            self._windows[text] = parse_window(text)
        return self._windows[text]

    def _drive(self, plan: RolloutPlan, rollout: Mapping[str, Any], patch: Mapping[str, Any],
               deps: dict[str, Any], seen: dict[str, float] | None,
               report: StepReport) -> dict[str, Order]:
        rid = plan.rollout_id
        status = rollout["status"]
        digest = str(patch.get("artifact_sha256", ""))
        if status in ("COMPLETED",):
            self._finish(rid)
            return {}
        if patch["status"] == "REVOKED" and status in ("PLANNED", "RUNNING", "PAUSED"):
            why = f"patch {plan.patch_id} was revoked: dispatching stopped, rolling back"
            if self._decide(rid, "halt", why, report):
                self._decide(rid, "roll_back", why, report)
            return {}
        if status == "HALTED":
            reason = str(rollout.get("reason", ""))
            ours = reason.startswith(PREFIX + "FAILURE")
            if ours and not plan.rollback_on_failure:
                self._finish(rid)
                return {}
            by = reason or f"halted by {rollout.get('updated_by', 'an operator')}"
            self._decide(rid, "roll_back", f"rollout halted ({by}); rolling its hosts back",
                         report)
            return {}
        if status == "ROLLED_BACK":
            # Hosts that reported the patch applied, and released hosts whose report the
            # ledger refused once the rollout stopped (they may have applied it): the agent
            # rolls back only what its own state shows it installed in this rollout.
            released_active = [h for h in self.checkpoint.released.get(rid, [])
                               if deps.get(h, {}).get("status") in _ACTIVE]
            applied = [h for h, d in deps.items() if d.get("status") in _APPLIED]
            grace_over = self.clock() >= int(rollout.get("updated_at", 0)) + \
                plan.wave_timeout_seconds
            if not applied and (grace_over or not released_active):
                self._finish(rid)
                return {}
            return {h: Order("roll_back", rid, plan.patch_id, digest)
                    for h in sorted({*applied, *released_active})}
        if status == "PLANNED":
            first = plan.waves[0]
            self._decide(rid, "advance", f"start: {first.label} of {len(first.hosts)} host(s)",
                         report)
            return {}
        released = self.checkpoint.released.setdefault(rid, [])
        orders = {h: Order("apply", rid, plan.patch_id, digest) for h in released
                  if deps.get(h, {}).get("status") in _ACTIVE}
        if status != "RUNNING":
            return orders
        index = int(rollout["current_wave"])
        view = self._wave_view(plan, rollout, index, deps, set(released), seen)
        rules = WaveRules(int(rollout["failure_threshold_pct"]), int(rollout["soak_seconds"]),
                          plan.wave_timeout_seconds, int(rollout["wave_started_at"]),
                          max(int(rollout["wave_started_at"]), int(rollout.get("updated_at", 0))))
        verdict = wave_verdict(view, rules, int(self.clock()))
        if verdict.kind is VerdictKind.RUNNING:
            fresh = select_releases(view)
            if fresh:
                released.extend(fresh)
                self.checkpoint.save(self.checkpoint_path)  # before the orders are published
                report.released.extend(fresh)
                orders.update({h: Order("apply", rid, plan.patch_id, digest) for h in fresh})
            return orders
        if verdict.kind is VerdictKind.SUCCESS:
            last = index == len(rollout["waves"]) - 1
            if last:
                self._decide(rid, "complete", f"SUCCESS: {verdict.reason}", report)
            else:
                nxt = plan.waves[index + 1] if index + 1 < len(plan.waves) else None
                label = f"{nxt.label} of {len(nxt.hosts)} host(s)" if nxt else "next wave"
                self._decide(rid, "advance", f"SUCCESS: {verdict.reason}; starting {label}",
                             report)
            return orders
        if verdict.kind is VerdictKind.FAILURE:
            if self._decide(rid, "halt", f"FAILURE: {verdict.reason}", report) and \
                    plan.rollback_on_failure:
                self._decide(rid, "roll_back", f"FAILURE: {verdict.reason}; the policy rolls "
                             "the rollout's hosts back", report)
            return {}
        self._decide(rid, "pause", f"INCONCLUSIVE: {verdict.reason}; a person must resume or "
                     "halt", report)
        return orders

    def _wave_view(self, plan: RolloutPlan, rollout: Mapping[str, Any], index: int,
                   deps: Mapping[str, Any], released: set[str],
                   seen: dict[str, float] | None) -> WaveView:
        wave_hosts = rollout["waves"][index]["hosts"]
        limits = plan.waves[index] if index < len(plan.waves) else plan.waves[-1]
        now = self.clock()
        views = []
        for h in wave_hosts:
            d = deps.get(h)
            if d is None or d.get("wave") != index:
                continue  # decommissioned before the wave started: no deployment
            online = seen is None or now - seen.get(h, float("-inf")) <= \
                self.settings.offline_after
            views.append(HostView(h, classify(d.get("status"), h in released),
                                  self._window(plan.windows.get(h, "always")).is_open(int(now)),
                                  online, self._forged.get(plan.rollout_id, {}).get(h, "")))
        return WaveView(index, tuple(views), limits.disruption_budget, limits.max_concurrency)


class _ProofEdge:
    """The records one full read checks deployments against: each rollout's record (already
    read this step) and the Host records, read once, only when a status needs a check."""

    def __init__(self, ledger: LedgerPort,
                 records: Mapping[str, tuple[dict[str, Any], dict[str, Any]] | None]) -> None:
        self._ledger = ledger
        self._records = records
        self._hosts: dict[str, Mapping[str, Any]] | None = None
        # parsed once per full read: a rollout record lists every host of its waves, so
        # parsing it again for each of its deployments made a full read quadratic in the
        # rollout's size (about 60 s at 10,000 hosts, bench_rollout)
        self._rollouts: dict[str, Rollout] = {}

    def problems(self, data: Mapping[str, Any]) -> str:
        """The problems of the deployment record ``data`` (``deployment_proof``), joined; ""
        when it is genuine.

        Raises:
            GatewayError: the Host records could not be read.
        """
        found = self._records.get(str(data.get("rollout_id", "")))
        if found is None:
            return "its rollout is not on the ledger"
        if self._hosts is None:
            self._hosts = {str(h.get("host_id")): h for h in self._ledger.records("Host")}
        host_data = self._hosts.get(str(data.get("host_id", "")))
        if host_data is None:
            return "its host has no Host record (no enrolled certificate)"
        try:
            deployment = Deployment.from_dict(data)
            host = Host.from_dict(host_data)
            rollout = self._rollout(str(data.get("rollout_id", "")), found[0])
        except (LifecycleError, TypeError, AttributeError, KeyError) as exc:
            return f"not a valid record: {exc}"
        return "; ".join(check_deployment(deployment, host, rollout))

    def _rollout(self, rollout_id: str, data: Mapping[str, Any]) -> Rollout:
        """The rollout record ``data`` of ``rollout_id``, parsed at its first use.

        Raises:
            LifecycleError, TypeError, AttributeError, KeyError: it is not a valid record.
        """
        rollout = self._rollouts.get(rollout_id)
        if rollout is None:
            rollout = self._rollouts[rollout_id] = Rollout.from_dict(data)
        return rollout
