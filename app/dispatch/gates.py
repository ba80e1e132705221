"""Wave gates: which hosts of the running wave may start now, and the wave's verdict. Pure.

A host of the running wave is, from its Deployment record on the ledger and whether the
dispatcher released it (handed its agent the assignment):

========================  ===========================================================
``WAITING``               SCHEDULED and not released
``IN_PROGRESS``           released and not settled (SCHEDULED, DISPATCHED or APPLIED)
``VERIFIED``              VERIFIED
``FAILED``                FAILED or ROLLED_BACK (the ledger's gate counts both as failed)
========================  ===========================================================

The gates take verified facts: a status whose host signature does not verify
(:mod:`patchledger.chaincode.lifecycle.deployment_proof`, checked by the dispatcher at its
adapter edge) is given as no report (``SCHEDULED``), with ``HostView.forged`` naming why; it
counts neither as verified nor as failed.

**Releases** (:func:`select_releases`): waiting hosts whose maintenance window is open and
that are online are released in plan order while ``in_progress < max_concurrency`` and
``in_progress + failed < disruption_budget``; so neither limit is ever exceeded by a release
(a failure only moves a host from in progress to failed, which the budget already counted).

**Verdict** (:func:`wave_verdict`), three values as Argo Rollouts' analysis runs, plus
``RUNNING`` while the wave is still being measured; the first rule that applies wins:

1. no deployment in the wave: ``INCONCLUSIVE`` (too few reports to judge);
2. more failed than the threshold allows (``failed * 100 > threshold_pct * hosts``, the
   ledger's own gate; only genuine failures count): ``FAILURE`` (halting is the safe way;
   forged statuses, if any, are named in the reason too);
3. a host's recorded status is not signed by the host (``HostView.forged``): ``INCONCLUSIVE``,
   naming the hosts and why (a colluding majority wrote it; a person must look);
4. every host settled: ``RUNNING`` (soaking) until ``wave_started_at + soak``, then
   ``SUCCESS``;
5. the failures used the whole disruption budget while hosts still wait: ``FAILURE`` (no host
   can start any more);
6. the wave timeout passed (counted from the wave's start or the last resume) with hosts not
   settled: ``INCONCLUSIVE``, naming the hosts that are offline, outside their window, or
   released without a report (they never hold a wave forever: they are reported);
7. otherwise ``RUNNING``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "HostState",
    "HostView",
    "Verdict",
    "VerdictKind",
    "WaveRules",
    "WaveView",
    "classify",
    "select_releases",
    "wave_verdict",
]

_SHOWN = 10  # host ids named in a reason before "and N more"


class HostState(StrEnum):
    """A wave host's state for the gates (module docstring)."""

    WAITING = "WAITING"
    IN_PROGRESS = "IN_PROGRESS"
    VERIFIED = "VERIFIED"
    FAILED = "FAILED"


def classify(ledger_status: str | None, released: bool) -> HostState:
    """The gate state of a host from its deployment status (``None``: no deployment yet)."""
    if ledger_status == "VERIFIED":
        return HostState.VERIFIED
    if ledger_status in ("FAILED", "ROLLED_BACK"):
        return HostState.FAILED
    if ledger_status in ("DISPATCHED", "APPLIED") or released:
        return HostState.IN_PROGRESS
    return HostState.WAITING


@dataclass(frozen=True)
class HostView:
    """One host of the running wave, as the dispatcher observed it."""

    host_id: str
    state: HostState
    window_open: bool = True
    online: bool = True
    forged: str = ""  # why its recorded status is not the host's (empty: verified or none)


@dataclass(frozen=True)
class WaveView:
    """The running wave: its hosts in plan order and its limits."""

    index: int
    hosts: tuple[HostView, ...]
    disruption_budget: int
    max_concurrency: int

    def count(self, state: HostState) -> int:
        """How many hosts are in ``state``."""
        return sum(1 for h in self.hosts if h.state is state)

    def ids(self, state: HostState) -> list[str]:
        """The hosts in ``state``, in plan order."""
        return [h.host_id for h in self.hosts if h.state is state]

    def forged(self) -> list[HostView]:
        """The hosts whose recorded status is not signed by the host, in plan order."""
        return [h for h in self.hosts if h.forged]


@dataclass(frozen=True)
class WaveRules:
    """The rollout's gate parameters and the wave's clock.

    Attributes:
        failure_threshold_pct: share of the wave's hosts allowed to fail.
        soak_seconds: how long a settled wave is watched.
        wave_timeout_seconds: how long hosts may take before the wave is inconclusive.
        wave_started_at: when the wave started (ledger time, seconds).
        clock_started_at: when the wave's timeout started counting (its start, or the last
            resume after a pause).
    """

    failure_threshold_pct: int
    soak_seconds: int
    wave_timeout_seconds: int
    wave_started_at: int
    clock_started_at: int


class VerdictKind(StrEnum):
    """What the gate says about the running wave."""

    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True)
class Verdict:
    """A verdict and its reason (recorded on the ledger with the decision it leads to)."""

    kind: VerdictKind
    reason: str


def select_releases(wave: WaveView) -> tuple[str, ...]:
    """The waiting hosts to release now (module docstring), in plan order."""
    in_progress = wave.count(HostState.IN_PROGRESS)
    failed = wave.count(HostState.FAILED)
    room = min(wave.max_concurrency - in_progress, wave.disruption_budget - in_progress - failed)
    if room <= 0:
        return ()
    ready = [h.host_id for h in wave.hosts
             if h.state is HostState.WAITING and h.window_open and h.online]
    return tuple(ready[:room])


def _named(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_SHOWN])
    return shown + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def _pending_reason(wave: WaveView) -> str:
    groups: Mapping[str, list[str]] = {
        "offline": [h.host_id for h in wave.hosts
                    if h.state is HostState.WAITING and not h.online],
        "outside their maintenance window": [
            h.host_id for h in wave.hosts
            if h.state is HostState.WAITING and h.online and not h.window_open],
        "released without a report": wave.ids(HostState.IN_PROGRESS),
        "waiting for the disruption budget or concurrency": [
            h.host_id for h in wave.hosts
            if h.state is HostState.WAITING and h.online and h.window_open],
    }
    return "; ".join(f"{what}: {_named(ids)}" for what, ids in groups.items() if ids)


def wave_verdict(wave: WaveView, rules: WaveRules, now: int) -> Verdict:
    """The verdict on ``wave`` at ``now`` (rules in the module docstring)."""
    label = f"wave {wave.index}"
    total = len(wave.hosts)
    if total == 0:
        return Verdict(VerdictKind.INCONCLUSIVE, f"{label} has no deployment: too few reports "
                                                 "to judge")
    failed = wave.ids(HostState.FAILED)
    verified = wave.count(HostState.VERIFIED)
    forged = wave.forged()
    forged_note = ""
    if forged:
        shown = "; ".join(f"{h.host_id}: {h.forged}" for h in forged[:_SHOWN])
        more = f"; and {len(forged) - _SHOWN} more" if len(forged) > _SHOWN else ""
        forged_note = (f"{len(forged)} host status(es) not signed by their host, not counted "
                       f"({shown}{more})")
    if len(failed) * 100 > rules.failure_threshold_pct * total:
        return Verdict(VerdictKind.FAILURE,
                       f"{label}: {len(failed)}/{total} host(s) failed, above the "
                       f"{rules.failure_threshold_pct}% threshold ({_named(failed)})"
                       + (f"; also {forged_note}" if forged_note else ""))
    if forged_note:
        return Verdict(VerdictKind.INCONCLUSIVE, f"{label}: {forged_note}")
    if verified + len(failed) == total:
        soak_end = rules.wave_started_at + rules.soak_seconds
        if now < soak_end:
            return Verdict(VerdictKind.RUNNING, f"{label} settled; soaking until {soak_end}")
        return Verdict(VerdictKind.SUCCESS,
                       f"{label}: {verified}/{total} verified, {len(failed)} failed (within "
                       f"{rules.failure_threshold_pct}%), soaked {rules.soak_seconds}s")
    waiting = wave.count(HostState.WAITING)
    if waiting and len(failed) >= wave.disruption_budget:
        return Verdict(VerdictKind.FAILURE,
                       f"{label}: {len(failed)} failed host(s) use up the disruption budget of "
                       f"{wave.disruption_budget}; {waiting} host(s) cannot start "
                       f"({_named(failed)})")
    deadline = rules.clock_started_at + rules.wave_timeout_seconds
    if now >= deadline:
        unsettled = total - verified - len(failed)
        return Verdict(VerdictKind.INCONCLUSIVE,
                       f"{label}: {unsettled}/{total} host(s) did not report within "
                       f"{rules.wave_timeout_seconds}s: {_pending_reason(wave)}")
    return Verdict(VerdictKind.RUNNING,
                   f"{label}: {verified} verified, {len(failed)} failed, "
                   f"{wave.count(HostState.IN_PROGRESS)} in progress, {waiting} waiting")
