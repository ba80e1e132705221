"""The agent daemon: one poll cycle (:meth:`Agent.cycle`) and the loop around it
(:meth:`Agent.run`). The protocol is in docs/agent.md; the schedule's rules in
:mod:`agent.schedule`.

One cycle, under the agent's lock (``<state>/agent.lock``: one run at a time)::

    GET  /api/v1/agent/poll               cheap: {etag, poll_interval, inventory_wanted}
    PUT  /api/v1/agent/inventory          on the first cycle, when it changed, or when asked
    GET  /api/v1/agent/desired-state      only when the poll's ETag differs from ours
                                          (If-None-Match: ours; 304 keeps what we have)
    for each assignment not yet settled:  download (resumable), run_assignment (verify,
                                          window, apply, health, rollback), queue the
                                          signed reports on disk
    POST /api/v1/agent/reports            every queued report until acknowledged

State on disk (``<state>/daemon.json``, written durably): the ETag and desired state last
received, the server's interval, the settled assignments and the last cycle's outcome. A
crash at any point leaves the previous state; the runner's recovery puts back an interrupted
change, and an assignment is settled only after its reports are queued.

Signals: SIGTERM/SIGINT set the stop flag (the loop ends after the current step, the wait is
cut short); during a change the runner's ErrorHandler turns the signal into ``Interrupted``
after reverting the change, and the daemon stops with the state saved (exit 143).

Dry run: verify and plan each assignment, log the plan; only reads are sent (GETs and the
read-only attestation request), no inventory and no reports.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchledger.agent.backends.base import InstallerBackend
from patchledger.agent.backends.dpkg import DpkgBackend
from patchledger.agent.backends.filetree import FileTreeBackend
from patchledger.agent.download import Downloader, DownloadError
from patchledger.agent.durable import write_json_durably
from patchledger.agent.enroll import Enrolled
from patchledger.agent.errors import AgentError, ConfigError, VerificationError
from patchledger.agent.guard import Interrupted
from patchledger.agent.inventory import InventoryError, InventoryState, Snapshot, collect
from patchledger.agent.lock import LockFile
from patchledger.agent.outbox import Outbox
from patchledger.agent.runner import Assignment, Outcome, RunResult, run_assignment
from patchledger.agent.schedule import ScheduleState, after_failure, after_success
from patchledger.agent.settings import DaemonSettings
from patchledger.agent.transport import ProtocolError, Transport, TransportError

__all__ = ["EXIT_INTERRUPTED", "Agent", "CycleReport", "DaemonState"]

log = logging.getLogger("patchledger.agent")

API = "/api/v1/agent"
EXIT_INTERRUPTED = 143
_SETTLED = {Outcome.VERIFIED, Outcome.APPLIED, Outcome.ROLLED_BACK, Outcome.FAILED,
            Outcome.REFUSED}


@dataclass
class DaemonState:
    """What the daemon keeps between cycles and restarts (``<state>/daemon.json``)."""

    etag: str = ""
    desired: dict[str, Any] = field(default_factory=dict)
    interval: float = 0.0
    settled: dict[str, str] = field(default_factory=dict)
    last_cycle_at: float = 0.0
    last_error: str = ""
    failures: int = 0

    @classmethod
    def load(cls, path: Path) -> DaemonState:
        """The saved state (a fresh one when the file is missing or unreadable: the next
        cycle fetches everything again, which is safe)."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                etag=str(doc.get("etag", "")), desired=dict(doc.get("desired") or {}),
                interval=float(doc.get("interval", 0.0)),
                settled={str(k): str(v) for k, v in (doc.get("settled") or {}).items()},
                last_cycle_at=float(doc.get("last_cycle_at", 0.0)),
                last_error=str(doc.get("last_error", "")), failures=int(doc.get("failures", 0)),
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()

    def save(self, path: Path) -> None:
        """Write durably."""
        write_json_durably(path, {
            "etag": self.etag, "desired": self.desired, "interval": self.interval,
            "settled": self.settled, "last_cycle_at": self.last_cycle_at,
            "last_error": self.last_error, "failures": self.failures,
        })


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did."""

    poll_interval: float | None
    desired_changed: bool
    inventory_sent: bool
    results: tuple[tuple[str, RunResult], ...]
    reports_sent: int


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(where, f"assignment field {key!r} must be a non-empty string")
    return value


class Agent:
    """The daemon of one enrolled host (module docstring)."""

    def __init__(
        self,
        settings: DaemonSettings,
        identity: Enrolled,
        transport: Transport,
        *,
        random_unit: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.transport = transport
        self.config = settings.agent_config(identity.host_id)
        self.state_path = settings.state_dir / "daemon.json"
        self.lock_path = settings.state_dir / "agent.lock"
        self.outbox = Outbox(settings.state_dir / "outbox")
        self.inventory_state = InventoryState(settings.state_dir / "inventory.json")
        self.downloader = Downloader(transport, settings.state_dir / "downloads",
                                     max_bytes=settings.max_artifact_bytes)
        self.state = DaemonState.load(self.state_path)
        self._random = random_unit
        self._clock = clock
        self.backend: InstallerBackend = self._backend()

    def _backend(self) -> InstallerBackend:
        if self.settings.backend == "dpkg":
            return DpkgBackend(self.settings.target, self.settings.state_dir / "dpkg",
                               scripts="chrootless" if self.settings.dpkg_scripts == "chrootless"
                               else "chroot")
        return FileTreeBackend(self.settings.target)

    def _snapshot(self) -> Snapshot:
        return collect(self.settings.inventory_source, root=self.settings.inventory_root,
                       sbom=self.settings.inventory_sbom)

    def _where(self, deployment: str = "") -> str:
        return f"host {self.identity.host_id}" + (f" deployment {deployment}" if deployment
                                                  else "")

    # ------------------------------------------------------------------ the protocol

    def poll(self) -> dict[str, Any]:
        """``GET /poll``.

        Raises:
            TransportError: unreachable or refused; ProtocolError: a malformed answer.
        """
        path = f"{API}/poll"
        doc = self.transport.request("GET", path).json(self.transport.endpoint("GET", path))
        if not isinstance(doc, dict) or not isinstance(doc.get("etag"), str):
            raise ProtocolError(self.transport.endpoint("GET", path),
                                "poll answer must be an object with a string 'etag'")
        return doc

    def refresh_desired(self) -> bool:
        """``GET /desired-state`` with ``If-None-Match``; returns whether it changed.

        Raises:
            TransportError, ProtocolError.
        """
        path = f"{API}/desired-state"
        where = self.transport.endpoint("GET", path)
        headers = {"If-None-Match": self.state.etag} if self.state.etag else {}
        answer = self.transport.request("GET", path, headers=headers, ok=(200, 304))
        if answer.status == 304:
            return False
        doc = answer.json(where)
        if not isinstance(doc, dict) or not isinstance(doc.get("assignments"), list):
            raise ProtocolError(where, "desired state must be an object with 'assignments'")
        etag = answer.headers.get("etag", "")
        if not etag:
            raise ProtocolError(where, "desired state came without an ETag")
        self.state.etag, self.state.desired = etag, doc
        return True

    def send_inventory(self, *, force: bool) -> bool:
        """``PUT /inventory`` when the inventory changed since the last acknowledged one (or
        ``force``); returns whether it was sent.

        Raises:
            TransportError, ProtocolError; InventoryError: it cannot be collected.
        """
        snapshot = self._snapshot()
        if not force and not self.inventory_state.changed(snapshot):
            return False
        if self.settings.dry_run:
            log.info("%s: dry run: inventory %s not sent", self._where(), snapshot.sha256)
            return False
        path = f"{API}/inventory"
        where = self.transport.endpoint("PUT", path)
        doc = self.transport.request("PUT", path, document=snapshot.to_payload()).json(where)
        if not isinstance(doc, dict) or doc.get("sha256") != snapshot.sha256:
            raise ProtocolError(where, "the inventory acknowledgement names another digest")
        self.inventory_state.mark_reported(snapshot, at=int(self._clock()))
        log.info("%s: inventory %s reported", self._where(), snapshot.sha256)
        return True

    def flush_reports(self) -> int:
        """``POST /reports`` with every queued report; drops the acknowledged ones.

        Raises:
            TransportError, ProtocolError.
        """
        pending = self.outbox.pending()
        if not pending or self.settings.dry_run:
            return 0
        path = f"{API}/reports"
        where = self.transport.endpoint("POST", path)
        doc = self.transport.request("POST", path, document={"reports": pending}).json(where)
        acked = doc.get("acknowledged") if isinstance(doc, dict) else None
        if not isinstance(acked, list):
            raise ProtocolError(where, "the reports answer must list 'acknowledged' sequences")
        dropped = self.outbox.acknowledge(acked)
        log.info("%s: %d report(s) acknowledged, %d queued", self._where(), dropped,
                 len(pending) - dropped)
        return dropped

    # ------------------------------------------------------------------ assignments

    def _job(self, entry: Any) -> tuple[str, Assignment]:
        where = self.transport.endpoint("GET", f"{API}/desired-state")
        if not isinstance(entry, dict):
            raise ProtocolError(where, "an assignment must be an object")
        rollout_id, patch_id = _text(entry, "rollout_id", where), _text(entry, "patch_id", where)
        artifact = entry.get("artifact")
        if not isinstance(artifact, dict) or not isinstance(artifact.get("sha256"), str) or \
                not isinstance(artifact.get("size"), int) or isinstance(artifact["size"], bool):
            raise ProtocolError(where, f"assignment {rollout_id}/{patch_id}: 'artifact' must be"
                                " {sha256, size}")
        fetched = self.downloader.fetch(artifact["sha256"], artifact["size"], label=patch_id)
        return f"{rollout_id}/{patch_id}", Assignment(rollout_id, patch_id,
                                                      fetched.path.read_bytes())

    def attest(self, host_id: str, rollout_id: str, nonce: str) -> Mapping[str, Any]:
        """The runner's attestor: ``POST /attestations/deployment`` relays
        ``AttestDeployment(host_id, rollout_id, nonce)`` to the peers; the endorsed bundle is
        verified by the runner, not here.

        Raises:
            TransportError, ProtocolError: no JSON object from the app; it propagates out of
                the runner before any change, and the cycle backs off.
        """
        if host_id != self.identity.host_id:
            raise ProtocolError(self._where(), f"attestation asked for host {host_id!r}")
        path = f"{API}/attestations/deployment"
        where = self.transport.endpoint("POST", path)
        doc = self.transport.request("POST", path, document={
            "rollout_id": rollout_id, "nonce": nonce}).json(where)
        if not isinstance(doc, dict):
            raise ProtocolError(where, "the attestation must be a JSON object")
        return doc

    def _run_one(self, job: Assignment) -> RunResult:
        """The seam to the runner."""
        return run_assignment(self.config, job, roots=self.identity.roots,
                              host_key=self.identity.key, attestor=self.attest,
                              backend=self.backend, clock=lambda: int(self._clock()))

    def process(self, entry: Any,
                stop: threading.Event | None = None) -> tuple[str, RunResult] | None:
        """Download and run one assignment unless it is settled; queue its reports. When
        ``stop`` is set by the time the download is done, nothing is applied.

        A wrong artifact (digest or size) or one the store will not serve (over the cap, 404)
        is logged and skipped for this cycle; nothing is applied.

        Raises:
            TransportError, ProtocolError: a retryable download failure or a malformed entry
                (the cycle backs off and retries).
            Interrupted: a signal during the change (it was reverted first).
        """
        key_hint = f"{entry.get('rollout_id')}/{entry.get('patch_id')}" if isinstance(
            entry, dict) else "?"
        if key_hint in self.state.settled:
            return None
        queued = self.outbox.deployments()
        if key_hint in queued:  # queued, then a crash before the state was saved
            self.state.settled[key_hint] = queued[key_hint]
            return None
        try:
            key, job = self._job(entry)
        except VerificationError as exc:  # the store served other bytes than the ledger's
            self._skip(key_hint, "artifact refused", exc)
            return None
        except DownloadError as exc:
            if exc.retryable:
                raise
            self._skip(key_hint, "artifact not downloaded", exc)
            return None
        if stop is not None and stop.is_set():
            log.info("%s: stopping before the change (the download is kept)", self._where(key))
            return None
        result = self._run_one(job)
        level = logging.INFO if result.outcome in (Outcome.VERIFIED, Outcome.APPLIED,
                                                   Outcome.PLANNED, Outcome.DEFERRED) \
            else logging.ERROR
        log.log(level, "%s: %s: %s", self._where(key), result.outcome, result.detail)
        if result.reports:
            self.outbox.add(result.reports)  # queued before the assignment counts as settled
        if result.outcome in _SETTLED:
            self.state.settled[key] = str(result.outcome)
        return key, result

    def _skip(self, deployment: str, what: str, exc: Exception) -> None:
        log.error("%s: %s, nothing applied: %s", self._where(deployment), what, exc)

    # ------------------------------------------------------------------ cycle and loop

    def cycle(self, stop: threading.Event | None = None) -> CycleReport:
        """One poll cycle (module docstring); the caller holds the lock.

        Raises:
            TransportError, ProtocolError: the cycle failed (back off and retry).
            InventoryError: the inventory cannot be collected.
            Interrupted: a signal during a change.
        """
        stop = stop or threading.Event()
        poll = self.poll()
        requested = poll.get("poll_interval")
        first = not self.inventory_state.last()
        sent = self.send_inventory(force=first or bool(poll.get("inventory_wanted")))
        changed = poll["etag"] != self.state.etag and self.refresh_desired()
        self.state.save(self.state_path)
        results = []
        for entry in self.state.desired.get("assignments", []):
            if stop.is_set():
                break
            done = self.process(entry, stop)
            self.state.save(self.state_path)
            if done:
                results.append(done)
        if results and not stop.is_set():
            self.send_inventory(force=False)
        reports = self.flush_reports()
        interval = requested if isinstance(requested, (int, float)) else None
        return CycleReport(interval, changed, sent, tuple(results), reports)

    def run(self, stop: threading.Event, *, once: bool = False,
            wait: Callable[[float], bool] | None = None) -> int:
        """Cycle until ``stop`` is set (or once); returns the exit status.

        Args:
            stop: set by the signal handler (or a test) to end the loop.
            once: one cycle, then return (0 when it succeeded, 1 when it failed).
            wait: sleeps up to the given seconds, returns True when woken by ``stop``
                (default: ``stop.wait``).

        A cycle that cannot write a state file (a full disk, a read-only directory) is a
        failed cycle: logged naming the file, retried with back-off; the state on disk is the
        previous one (every write is atomic), so the retry resumes from it.

        Raises:
            LockError: another run holds the agent's lock.
            ConfigError: the lock cannot even be taken: the state directory is read-only or
                full (naming it); nothing was done.
        """
        wait = wait or stop.wait
        schedule = self.settings.schedule
        sched = ScheduleState(self.state.interval or schedule.interval, self.state.failures)
        with self._locked():
            log.info("%s: agent running against %s (backend %s%s)", self._where(),
                     self.transport.base_url, self.settings.backend,
                     ", dry run" if self.settings.dry_run else "")
            while True:
                try:
                    report = self.cycle(stop)
                except Interrupted as exc:
                    self._finish_cycle(f"interrupted: {exc}; the change in progress was"
                                       " reverted", sched)
                    log.warning("%s: %s", self._where(), exc)
                    return EXIT_INTERRUPTED
                except (TransportError, InventoryError, OSError) as exc:
                    # OSError: a state file cannot be written (a full disk, a read-only
                    # state directory); every state file is written atomically, so the
                    # previous state stands and the next cycle resumes from it
                    retry_after = exc.retry_after if isinstance(exc, TransportError) else None
                    sched, delay = after_failure(schedule, sched, self._random(), retry_after)
                    problem = f"the agent's state cannot be written: {exc}" if isinstance(
                        exc, OSError) else str(exc)
                    self._finish_cycle(problem, sched)
                    log.warning("%s: cycle failed (%d in a row): %s; retrying in %.1f s",
                                self._where(), sched.failures, problem, delay)
                    if once:
                        return 1
                else:
                    sched, delay = after_success(schedule, sched, report.poll_interval,
                                                 self._random())
                    self._finish_cycle("", sched)
                    if once:
                        return 0
                if stop.is_set() or wait(delay):
                    log.info("%s: stopping", self._where())
                    return 0

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The agent's lock, held for the block.

        Raises:
            LockError: another run holds it.
            ConfigError: it cannot be taken: the state directory is read-only or full.
        """
        lock = LockFile(self.lock_path)
        try:
            lock.__enter__()
        except OSError as exc:  # a read-only (or full) state directory: nothing can be kept
            raise ConfigError(f"{self._where()}: the agent's state directory "
                              f"{self.settings.state_dir} cannot be written (its lock): {exc}"
                              ) from exc
        try:
            yield
        finally:
            lock.__exit__(None, None, None)

    def _finish_cycle(self, error: str, sched: ScheduleState) -> None:
        self.state.last_cycle_at = self._clock()
        self.state.last_error = error
        self.state.interval = sched.interval
        self.state.failures = sched.failures
        with contextlib.suppress(OSError):
            self.state.save(self.state_path)

    def status(self) -> dict[str, Any]:
        """What a person wants to know, from the state on disk (takes no lock)."""
        assignments = self.state.desired.get("assignments", [])
        holder = ""
        try:
            with LockFile(self.lock_path):
                pass
        except AgentError as exc:
            holder = str(exc)
        return {
            "host_id": self.identity.host_id, "msp_id": self.identity.msp_id,
            "server": self.transport.base_url, "backend": self.settings.backend,
            "target": str(self.settings.target), "dry_run": self.settings.dry_run,
            "pinned_organizations": list(self.identity.roots.organizations),
            "certificate_expires": self.identity.certificate.not_valid_after_utc.isoformat(),
            "running": holder, "etag": self.state.etag, "poll_interval": self.state.interval,
            "last_cycle_at": self.state.last_cycle_at, "last_error": self.state.last_error,
            "failures_in_a_row": self.state.failures,
            "assignments": [
                {"deployment": f"{a.get('rollout_id')}/{a.get('patch_id')}",
                 "state": self.state.settled.get(f"{a.get('rollout_id')}/{a.get('patch_id')}",
                                                 "pending")}
                for a in assignments if isinstance(a, dict)
            ],
            "reports_queued": len(self.outbox.pending()),
            "inventory_reported": self.inventory_state.last(),
        }
