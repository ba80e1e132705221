"""The rollout wizard's planning, pure: which of the organization's enrolled hosts go in which
wave, from host groups or percentages, with an optional canary wave first, and when each wave
may start at the earliest (one soak period after the previous one).

The plan lists every wave's hosts explicitly, so the ``CreateRollout`` document the wizard
submits is exactly the preview the operator saw (the contract resolves explicit hosts as
given). Each wave carries its disruption budget and maximum concurrency, given as a number of
hosts or a percentage of the wave's hosts and resolved per wave with the dispatcher's own
:class:`~patchledger.app.dispatch.planner.Quantity`; the plan becomes the dispatcher's
:class:`~patchledger.app.dispatch.planner.RolloutPlan` (the ledger's rollout record has no
field for these limits: the dispatcher enforces them from its plan file).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from patchledger.app.dispatch.planner import PlanError as PlannerError
from patchledger.app.dispatch.planner import Quantity, RolloutPlan, RolloutRequest, WavePlan
from patchledger.app.errors import UserError

#: The dispatcher's own defaults (app.dispatch.planner.RolloutRequest).
DEFAULT_BUDGET: Quantity = RolloutRequest("defaults", "defaults").disruption_budget
DEFAULT_CONCURRENCY: Quantity = RolloutRequest("defaults", "defaults").max_concurrency


@dataclass(frozen=True)
class HostInfo:
    """An enrolled host of the organization as the planner needs it."""

    host_id: str
    groups: tuple[str, ...]
    maintenance_window: str = ""


@dataclass(frozen=True)
class PlannedWave:
    """One wave of the plan: its hosts, what selected them, its earliest start offset and its
    limits resolved to numbers of hosts."""

    index: int
    hosts: tuple[str, ...]
    selector: str
    groups: tuple[str, ...]
    starts_after_seconds: int
    disruption_budget: int = 1
    max_concurrency: int = 1


class PlanError(UserError):
    """The wizard's input cannot make a plan; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _percentages(text: str) -> list[int]:
    try:
        values = [int(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise PlanError("percentages", f"{text!r} must be whole numbers separated by commas"
                        ) from None
    if not values or any(v <= 0 for v in values) or sum(values) != 100:
        raise PlanError("percentages", f"{text!r} must be positive and add up to 100")
    return values


def quantity(text: str, field: str) -> Quantity:
    """A wave limit as typed: ``"5"`` hosts or ``"20%"`` of the wave's hosts.

    Raises:
        PlanError: not a whole number of at least 1 or a percentage of 1-100 (``field``).
    """
    try:
        return Quantity.parse(text.strip(), field)
    except PlannerError as exc:
        raise PlanError(field, str(exc).removeprefix(f"{field}: ")) from None


def plan(hosts: Sequence[HostInfo], *, mode: str, groups_text: str = "",
         percentages: str = "", canary: int = 0, soak_seconds: int = 0,
         disruption_budget: Quantity = DEFAULT_BUDGET,
         max_concurrency: Quantity = DEFAULT_CONCURRENCY) -> list[PlannedWave]:
    """The waves for ``hosts`` (sorted by id for a stable plan).

    ``mode`` ``groups``: one wave per line of ``groups_text`` (comma-separated group names),
    each taking the hosts of those groups not taken by an earlier wave (the contract's rule).
    ``mode`` ``percent``: ``percentages`` (e.g. ``10,30,60``) of the hosts left after the
    canary, in host order; a wave is at least one host. ``canary``: that many hosts first,
    in a wave of their own. ``disruption_budget`` (hosts in progress plus failed) and
    ``max_concurrency`` (hosts in progress) apply to every wave, a percentage resolved
    against that wave's hosts (at least 1).

    Raises:
        PlanError: bad mode, percentages, group lines, canary size, or a wave with no host.
    """
    ordered = sorted(hosts, key=lambda h: h.host_id)
    if not ordered:
        raise PlanError("hosts", "the organization has no enrolled host")
    if not 0 <= canary < len(ordered):
        raise PlanError("canary", f"must be from 0 to {len(ordered) - 1} hosts")
    if soak_seconds < 0:
        raise PlanError("soak_seconds", "must not be negative")
    waves: list[tuple[tuple[str, ...], str, tuple[str, ...]]] = []
    rest = ordered
    if canary:
        waves.append((tuple(h.host_id for h in ordered[:canary]), f"canary: {canary} hosts",
                      ("canary",)))
        rest = ordered[canary:]
    if mode == "percent":
        shares = _percentages(percentages)
        start = 0
        for i, share in enumerate(shares):
            end = len(rest) if i == len(shares) - 1 else max(
                start + 1, round(len(rest) * sum(shares[:i + 1]) / 100))
            chunk = rest[start:min(end, len(rest))]
            if not chunk:
                raise PlanError("percentages", f"wave {len(waves) + 1} ({share} %) has no "
                                f"host left of {len(rest)}")
            waves.append((tuple(h.host_id for h in chunk), f"{share} %", ()))
            start = end
    elif mode == "groups":
        lines = [tuple(g.strip() for g in line.split(",") if g.strip())
                 for line in groups_text.splitlines() if line.strip()]
        if not lines:
            raise PlanError("groups", "give one line of group names per wave")
        taken = {h for wave in waves for h in wave[0]}
        for line in lines:
            chosen = tuple(h.host_id for h in rest
                           if set(line) & set(h.groups) and h.host_id not in taken)
            if not chosen:
                raise PlanError("groups", f"groups {', '.join(line)} select no host not "
                                "already in an earlier wave")
            taken |= set(chosen)
            waves.append((chosen, f"groups {', '.join(line)}", line))
    else:
        raise PlanError("mode", "must be groups or percent")
    return [PlannedWave(i, hs, selector, gs, i * soak_seconds,
                        disruption_budget.resolve(len(hs)), max_concurrency.resolve(len(hs)))
            for i, (hs, selector, gs) in enumerate(waves)]


def rollout_plan(rollout_id: str, patch_id: str, waves: Sequence[PlannedWave],
                 hosts: Sequence[HostInfo], *, failure_threshold_pct: int, soak_seconds: int,
                 wave_timeout_seconds: int = 3600, rollback_on_failure: bool = True
                 ) -> RolloutPlan:
    """The dispatcher's plan of the wizard's waves (its ``create_rollout_argument()`` is the
    ``CreateRollout`` document: explicit hosts per wave and no group selector, which the
    contract would widen with hosts of a group enrolled after the preview)."""
    windows = {h.host_id: h.maintenance_window or "always" for h in hosts}
    return RolloutPlan(
        rollout_id, patch_id,
        tuple(WavePlan("canary" if w.groups == ("canary",) else f"wave {w.index}", w.hosts,
                       w.disruption_budget, w.max_concurrency,
                       () if w.groups == ("canary",) else w.groups) for w in waves),
        soak_seconds, failure_threshold_pct, wave_timeout_seconds, rollback_on_failure,
        {h: windows.get(h, "always") for w in waves for h in w.hosts})


def plan_digest(rollout: RolloutPlan) -> str:
    """SHA-256 of the plan's canonical JSON: the preview carries it, and the plan created
    must have the same (else the hosts changed since the preview)."""
    text = json.dumps(rollout.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
