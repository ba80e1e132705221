"""The fleet simulator: many hosts' agents in one process, each running the real agent code.

Each simulated host has its own CA-issued identity (key generated locally, certificate from
its organization's CA, :mod:`app.fleet.enroll`), its own agent state directory and file-tree
target, its own maintenance window and a health check that fails for a chosen share of the
fleet. Every tick, each online host polls the relay (:class:`~app.dispatch.relay.AgentRelay`,
in-process here: the seam where the app's HTTP endpoints would be) and carries out its order
with the agent's own functions:

- ``apply``: download the artifact, then :func:`agent.runner.run_assignment`: the endorsed
  attestation (the relay's batch of this rollout's requests, each agent's nonce in it) verified
  offline against the roots pinned at enrollment, the anti-rollback
  check, the window, the file-tree backend's stage/apply/verify, the health check, commit or
  roll back, signed reports;
- ``roll_back``: :func:`agent.rollback_order.run_rollback_order` (attested order, kept copy
  restored, signed ROLLED_BACK report).

The reports go back through the relay as the agent daemon's do: a run's signed reports are
first queued durably in the host's outbox (:class:`agent.outbox.Outbox`, the daemon's), the
order is then marked finished, and the outbox is delivered until the relay takes it (a relay
that cannot be reached, or a crash of the simulator between the run and the delivery, loses
nothing: the queued reports go at a later tick; one delivered twice is refused by the ledger
as a replay). A host carries out each order once (the orders it finished are kept in its
state directory, and an order whose report is queued counts as finished), and a DEFERRED run
(window closed) is retried at a later tick. A poll, download or attestation that fails is
logged and retried at the next tick (``ERROR``). Offline hosts never poll.

The relay is anything with :class:`Relay`'s methods: the dispatcher's in-process
:class:`~app.dispatch.relay.AgentRelay`, or a client of the org app's agent endpoints.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.agent.config import AgentConfig
from patchledger.agent.errors import AgentError
from patchledger.agent.health import HealthResult
from patchledger.agent.outbox import Outbox
from patchledger.agent.rollback_order import run_rollback_order
from patchledger.agent.runner import Assignment, Outcome, RunResult, run_assignment
from patchledger.app.dispatch.board import Order
from patchledger.app.errors import UserError
from patchledger.chaincode.lifecycle.trust import OrgTrust
from patchledger.common.durable import write_atomic

__all__ = ["Fleet", "HostSpec", "Relay", "SimulatedHost", "artifact_of", "host_specs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostSpec:
    """A simulated host: its id, groups, window, and how it behaves."""

    host_id: str
    groups: tuple[str, ...] = ()
    maintenance_window: str = "always"
    fails_health: bool = False
    online: bool = True
    health_seconds: float = 0.0


class Relay(Protocol):
    """What the simulated agents need of their organization's app (the seam where HTTP is)."""

    def poll(self, host_id: str) -> Order | None:
        """The host's current order (``None``: nothing to do); notes the poll."""

    def download(self, order: Order) -> bytes:
        """The order's artifact."""

    def attest(self, host_id: str, rollout_id: str, nonce: str) -> Mapping[str, Any]:
        """The endorsed ``AttestDeployment`` bundle."""

    def report(self, reports: Sequence[Mapping[str, Any]]) -> None:
        """Take one host's signed reports (durably, before returning)."""

    def flush_seen(self) -> None:
        """Make the polls noted so far visible to the dispatcher."""


def _share(seed: str, host_id: str) -> float:
    digest = hashlib.sha256(f"{seed}\x00{host_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def host_specs(count: int, *, prefix: str, groups: Sequence[str] = ("fleet",),
               failure_rate: float = 0.0, offline_rate: float = 0.0, seed: str = "fleet",
               windows: Mapping[str, str] | None = None) -> list[HostSpec]:
    """``count`` hosts ``<prefix>-00000``...; groups dealt round-robin; a host fails its
    health check when its seeded share is below ``failure_rate`` (and is offline below
    ``offline_rate`` of another draw), so a run is repeatable; ``windows`` maps a group to the
    maintenance window of its hosts.

    Raises:
        UserError: a count below 1, rates outside 0-1, no group.
    """
    if count < 1:
        raise UserError(f"a fleet needs at least one host, not {count}")
    for name, rate in (("failure rate", failure_rate), ("offline rate", offline_rate)):
        if not 0.0 <= rate <= 1.0:
            raise UserError(f"the {name} must be between 0 and 1, not {rate}")
    if not groups:
        raise UserError("give at least one group")
    out = []
    for i in range(count):
        host_id = f"{prefix}-{i:05d}"
        group = groups[i % len(groups)]
        out.append(HostSpec(host_id, (group,), (windows or {}).get(group, "always"),
                            _share(seed, host_id) < failure_rate,
                            _share(seed + "/offline", host_id) >= offline_rate))
    return out


def artifact_of(files: Mapping[str, bytes]) -> bytes:
    """A tar.gz of ``files`` (path -> content): an artifact the file-tree backend applies."""
    buf = io.BytesIO()
    # gzip's header holds a time stamp: fixed, so the same files give the same artifact digest
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class SimulatedHost:
    """One host's agent: its settings, its key, and the orders it finished."""

    spec: HostSpec
    config: AgentConfig
    key: ec.EllipticCurvePrivateKey
    done: set[tuple[str, str]] = field(default_factory=set)

    @property
    def outbox(self) -> Outbox:
        """The reports queued until the relay took them (the agent daemon's outbox)."""
        return Outbox(self.config.state_dir / "outbox")

    @property
    def done_file(self) -> Path:
        """Where the finished orders are kept."""
        return self.config.state_dir / "orders-done.json"

    def load_done(self) -> None:
        """Read the finished orders (none when the file does not exist)."""
        if self.done_file.exists():
            self.done = {(a, r) for a, r in json.loads(self.done_file.read_text())}

    def finish(self, order: Order) -> None:
        """Record an order as carried out, durably."""
        self.done.add((order.action, order.rollout_id))
        write_atomic(self.done_file, json.dumps(sorted(self.done)))

    def health(self, target: Path) -> HealthResult:
        """The simulated health check (taking ``health_seconds``)."""
        if self.spec.health_seconds:
            time.sleep(self.spec.health_seconds)
        if self.spec.fails_health:
            return HealthResult(False, f"simulated failure: service on {self.spec.host_id} "
                                       "does not answer")
        return HealthResult(True, "simulated service answers")


@dataclass
class Fleet:
    """Simulated hosts driven through one relay (module docstring).

    Attributes:
        hosts: the simulated hosts.
        relay: the app's relay (in-process).
        roots: the organization roots the agents pinned at enrollment.
        workers: threads running agents at once.
        clock: seconds since the epoch (the agents' clock).
        parallel_polls: poll from the worker threads as well (a relay whose polls are HTTP
            requests); by default the polls are made one after the other.
    """

    hosts: Sequence[SimulatedHost]
    relay: Relay
    roots: OrgTrust
    workers: int = 8
    clock: Callable[[], float] = time.time
    parallel_polls: bool = False
    outcomes: Counter[str] = field(default_factory=Counter)
    verified_at: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, host: SimulatedHost, order: Order) -> RunResult:
        now: Callable[[], int] = lambda: int(self.clock())  # noqa: E731
        if order.action == "roll_back":
            return run_rollback_order(host.config, order.rollout_id, order.patch_id,
                                      roots=self.roots, host_key=host.key,
                                      attestor=self.relay.attest, clock=now)
        artifact = self.relay.download(order)
        return run_assignment(host.config, Assignment(order.rollout_id, order.patch_id, artifact),
                              roots=self.roots, host_key=host.key, attestor=self.relay.attest,
                              health=host.health, clock=now)

    def _deliver(self, host: SimulatedHost) -> None:
        """Hand the host's queued reports to the relay; drop them once it took them.

        Raises:
            Exception: whatever the relay raises (the reports stay queued).
        """
        pending = host.outbox.pending()
        if pending:
            self.relay.report(pending)
            host.outbox.acknowledge(r["report"]["sequence"] for r in pending)

    def _due(self, host: SimulatedHost) -> Order | str | None:
        """The host delivers its queued reports and polls; its order when it has one it has
        not carried out (``"ERROR"`` when the relay failed: logged, retried next tick)."""
        try:
            queued = host.outbox.deployments()  # before the delivery empties the outbox
            self._deliver(host)
            order = self.relay.poll(host.spec.host_id)
            if order is None or (order.action, order.rollout_id) in host.done:
                return None
            was = queued.get(f"{order.rollout_id}/{order.patch_id}")
            if was is not None and (order.action == "apply" or was == "ROLLED_BACK"):
                host.finish(order)  # its reports were queued, then a crash before finish()
                return None
            return order
        except Exception as exc:  # the relay (the app) could not be reached: next tick
            log.warning("host %s: poll failed: %s: %s", host.spec.host_id,
                        type(exc).__name__, exc)
            return "ERROR"

    def _visit(self, job: tuple[SimulatedHost, Order]) -> str:
        host, order = job
        try:
            result = self._run(host, order)
            if result.outcome is Outcome.DEFERRED:
                return result.outcome.value
            host.outbox.add(list(result.reports))
            host.finish(order)
        except (AgentError, UserError, OSError) as exc:
            log.warning("host %s: %s of %s failed: %s", host.spec.host_id, order.action,
                        order.rollout_id, exc)
            return "ERROR"
        except Exception as exc:  # the relay could not reach a peer or the app: next tick
            log.warning("host %s: %s of %s: %s: %s", host.spec.host_id, order.action,
                        order.rollout_id, type(exc).__name__, exc)
            return "ERROR"
        with self._lock:
            if result.outcome is Outcome.VERIFIED:
                self.verified_at[host.spec.host_id] = self.clock()
        try:
            self._deliver(host)
        except Exception as exc:  # queued: delivered at a later tick
            log.warning("host %s: reports queued, not delivered: %s: %s", host.spec.host_id,
                        type(exc).__name__, exc)
        return result.outcome.value

    def tick(self) -> Counter[str]:
        """Every online host polls once and carries out its order; the outcomes of this tick
        (``ERROR`` for a run that raised: logged, retried at the next tick)."""
        # Polls are cheap in-process (a dictionary look-up in the relay): made here, one after
        # the other, unless each is a request to an org app (``parallel_polls``); only the
        # hosts with an order to carry out take an agent thread.
        online = [h for h in self.hosts if h.spec.online]
        with ThreadPoolExecutor(self.workers) as pool:
            polled = list(pool.map(self._due, online)) if self.parallel_polls else \
                [self._due(h) for h in online]
            jobs = [(h, o) for h, o in zip(online, polled, strict=True) if isinstance(o, Order)]
            results = Counter(r for r in pool.map(self._visit, jobs) if r)
        results["ERROR"] += sum(o == "ERROR" for o in polled)
        results = +results  # no zero counts
        try:
            self.relay.flush_seen()
        except Exception as exc:  # the next tick writes them again
            log.warning("the relay could not note the polls: %s: %s", type(exc).__name__, exc)
        self.outcomes.update(results)
        return results

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Tick until ``stop`` is set."""
        while not stop.is_set():
            self.tick()
            stop.wait(interval)
