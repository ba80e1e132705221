"""Rollout plans: which hosts go in which wave, and each wave's limits. Pure (no I/O, no clock).

A :class:`RolloutRequest` names the fleet (the organization's enrolled hosts, optionally only
some groups), a **canary** wave (a number of hosts or a percentage of the fleet), then the
following waves, each either by **groups** (every host of those groups not already planned) or
by **percentage** (the next share of the fleet). Hosts left when the requested waves are used
up form one last wave, so a plan always covers the whole fleet it names; empty waves are
dropped (the ledger refuses them).

Hosts are taken in a spread order that is stable for a rollout (SHA-256 of the rollout id and
the host id), so a canary is a sample of the fleet rather than its first names, and re-planning
the same request over the same hosts gives the same plan.

Per wave:

- **disruption budget**: the most hosts that may be disrupted at once, hosts in progress plus
  hosts failed, as Google Cloud's OS patch rollouts define it (a number, or a percentage of the
  wave's hosts); a failed host stays disrupted, so failures use the budget up;
- **max concurrency**: the most hosts in progress at once (AWS Systems Manager's rate control;
  a number or a percentage of the wave's hosts).

A percentage resolves to ``floor(pct * hosts / 100)`` and never below 1 (a wave that could start
no host would wait forever). The plan also carries what the gates need after a restart: the
soak time, the failure threshold, the wave timeout after which hosts that did not report make
the wave inconclusive, and whether a failed rollout is rolled back.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from patchledger.agent.errors import ConfigError
from patchledger.agent.window import parse_window
from patchledger.app.errors import UserError

__all__ = [
    "HostInfo",
    "PlanError",
    "Quantity",
    "RolloutPlan",
    "RolloutRequest",
    "WavePlan",
    "WaveRequest",
    "plan_rollout",
]

_QUANTITY = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


class PlanError(UserError):
    """A rollout request that cannot be planned; the message names the field and the value."""


@dataclass(frozen=True)
class Quantity:
    """A number of hosts, or a percentage (``percent``) of a total."""

    value: int
    percent: bool = False

    def __post_init__(self) -> None:
        """Raises:
        PlanError: a negative value, a percentage above 100, or zero hosts.
        """
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 1:
            raise PlanError(f"a host quantity must be a whole number of at least 1, not "
                            f"{self.value!r}")
        if self.percent and self.value > 100:
            raise PlanError(f"a percentage of hosts must be at most 100, not {self.value}%")

    @classmethod
    def parse(cls, text: str | int, what: str) -> Quantity:
        """``"10"`` (hosts) or ``"25%"``; an int is a number of hosts.

        Raises:
            PlanError: naming ``what`` and the text.
        """
        if isinstance(text, int) and not isinstance(text, bool):
            return cls(text)
        match = _QUANTITY.match(str(text))
        if not match:
            raise PlanError(f"{what}: {text!r} is neither a number of hosts nor a percentage "
                            "such as 25%")
        try:
            return cls(int(match[1]), bool(match[2]))
        except PlanError as exc:
            raise PlanError(f"{what}: {exc}") from None

    def resolve(self, total: int) -> int:
        """The number of hosts this is of ``total``: at least 1, at most ``max(total, 1)``."""
        count = self.value * total // 100 if self.percent else self.value
        return max(1, min(count, max(total, 1)))

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


@dataclass(frozen=True)
class WaveRequest:
    """A wave after the canary: by ``groups`` or by ``percent`` of the fleet (exactly one),
    with optional limits of its own (else the request's)."""

    groups: tuple[str, ...] = ()
    percent: int | None = None
    disruption_budget: Quantity | None = None
    max_concurrency: Quantity | None = None

    def __post_init__(self) -> None:
        """Raises:
        PlanError: both or neither of groups and percent, or a percentage outside 1-100.
        """
        if bool(self.groups) == (self.percent is not None):
            raise PlanError("a wave is given by groups or by a percentage of the fleet, "
                            f"exactly one (got groups={list(self.groups)}, "
                            f"percent={self.percent})")
        if self.percent is not None and not 1 <= self.percent <= 100:
            raise PlanError(f"a wave's percentage must be 1 to 100, not {self.percent}")


@dataclass(frozen=True)
class RolloutRequest:
    """What an operator asks for (module docstring).

    Attributes:
        rollout_id: the ledger id of the rollout to create.
        patch_id: the APPROVED patch to roll out.
        canary: the canary wave's size.
        waves: the waves after the canary.
        target_groups: only hosts in one of these groups (empty: every enrolled host).
        disruption_budget: each wave's default budget.
        max_concurrency: each wave's default concurrency.
        soak_seconds: how long a settled wave is watched before the next starts.
        failure_threshold_pct: the share of a wave's hosts allowed to fail (the ledger's gate).
        wave_timeout_seconds: after this long in a wave, hosts that did not report (offline,
            outside their window) make the wave inconclusive.
        rollback_on_failure: whether a failed wave rolls the rollout's hosts back.
    """

    rollout_id: str
    patch_id: str
    canary: Quantity = Quantity(1)
    waves: tuple[WaveRequest, ...] = ()
    target_groups: tuple[str, ...] = ()
    disruption_budget: Quantity = Quantity(10, percent=True)
    max_concurrency: Quantity = Quantity(25, percent=True)
    soak_seconds: int = 0
    failure_threshold_pct: int = 0
    wave_timeout_seconds: int = 3600
    rollback_on_failure: bool = True

    def __post_init__(self) -> None:
        """Raises:
        PlanError: an empty id, a negative time, a threshold outside 0-100.
        """
        for name in ("rollout_id", "patch_id"):
            if not getattr(self, name):
                raise PlanError(f"{name} must not be empty")
        for name in ("soak_seconds", "wave_timeout_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PlanError(f"{name} must be a whole number of seconds, not {value!r}")
        if self.wave_timeout_seconds < 1:
            raise PlanError("wave_timeout_seconds must be at least 1")
        if not 0 <= self.failure_threshold_pct <= 100:
            raise PlanError(f"failure_threshold_pct must be 0 to 100, not "
                            f"{self.failure_threshold_pct}")


@dataclass(frozen=True)
class HostInfo:
    """An enrolled host as the planner sees it (from its Host record)."""

    host_id: str
    groups: tuple[str, ...] = ()
    maintenance_window: str = "always"


@dataclass(frozen=True)
class WavePlan:
    """One planned wave: its hosts in release order and its limits (resolved to numbers)."""

    label: str
    hosts: tuple[str, ...]
    disruption_budget: int
    max_concurrency: int
    groups: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON object of this wave."""
        return {"label": self.label, "hosts": list(self.hosts), "groups": list(self.groups),
                "disruption_budget": self.disruption_budget,
                "max_concurrency": self.max_concurrency}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WavePlan:
        """Inverse of :meth:`to_dict`.

        Raises:
            PlanError: a member is missing or of the wrong type.
        """
        try:
            return cls(str(data["label"]), tuple(str(h) for h in data["hosts"]),
                       int(data["disruption_budget"]), int(data["max_concurrency"]),
                       tuple(str(g) for g in data.get("groups", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"a stored wave plan is malformed: {exc!r}") from exc


@dataclass(frozen=True)
class RolloutPlan:
    """A plan ready for ``CreateRollout`` and for the dispatcher's gates."""

    rollout_id: str
    patch_id: str
    waves: tuple[WavePlan, ...]
    soak_seconds: int
    failure_threshold_pct: int
    wave_timeout_seconds: int
    rollback_on_failure: bool
    windows: Mapping[str, str] = field(default_factory=dict)

    def create_rollout_argument(self) -> dict[str, Any]:
        """The ``CreateRollout`` argument: the waves as explicit host lists."""
        return {"rollout_id": self.rollout_id, "patch_id": self.patch_id,
                "waves": [{"hosts": list(w.hosts)} for w in self.waves],
                "failure_threshold_pct": self.failure_threshold_pct,
                "soak_seconds": self.soak_seconds}

    def to_dict(self) -> dict[str, Any]:
        """JSON object of this plan (kept in the dispatcher's state directory)."""
        return {"rollout_id": self.rollout_id, "patch_id": self.patch_id,
                "waves": [w.to_dict() for w in self.waves], "soak_seconds": self.soak_seconds,
                "failure_threshold_pct": self.failure_threshold_pct,
                "wave_timeout_seconds": self.wave_timeout_seconds,
                "rollback_on_failure": self.rollback_on_failure, "windows": dict(self.windows)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutPlan:
        """Inverse of :meth:`to_dict`.

        Raises:
            PlanError: a member is missing or of the wrong type.
        """
        try:
            return cls(str(data["rollout_id"]), str(data["patch_id"]),
                       tuple(WavePlan.from_dict(w) for w in data["waves"]),
                       int(data["soak_seconds"]), int(data["failure_threshold_pct"]),
                       int(data["wave_timeout_seconds"]), bool(data["rollback_on_failure"]),
                       {str(k): str(v) for k, v in dict(data.get("windows", {})).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"a stored rollout plan is malformed: {exc!r}") from exc


def spread_order(rollout_id: str, host_ids: Sequence[str]) -> list[str]:
    """``host_ids`` in the rollout's stable spread order (module docstring)."""
    def rank(host_id: str) -> tuple[str, str]:
        digest = hashlib.sha256(f"{rollout_id}\x00{host_id}".encode()).hexdigest()
        return digest, host_id
    return sorted(set(host_ids), key=rank)


def _wave(label: str, hosts: list[str], budget: Quantity, concurrency: Quantity,
          groups: tuple[str, ...] = ()) -> WavePlan:
    return WavePlan(label, tuple(hosts), budget.resolve(len(hosts)),
                    concurrency.resolve(len(hosts)), groups)


def plan_rollout(request: RolloutRequest, hosts: Sequence[HostInfo]) -> RolloutPlan:
    """Plan ``request`` over ``hosts`` (module docstring).

    Raises:
        PlanError: no host is eligible, a host id repeats, or a host's maintenance window is
            unreadable (naming the host). A group wave that selects no remaining host is not
            an error: it is dropped.
    """
    seen: set[str] = set()
    for h in hosts:
        if h.host_id in seen:
            raise PlanError(f"host {h.host_id!r} is listed twice")
        seen.add(h.host_id)
    windows: dict[str, str] = {}
    for h in hosts:
        try:
            parse_window(h.maintenance_window or "always")
        except ConfigError as exc:
            raise PlanError(f"host {h.host_id!r}: {exc}") from exc
        windows[h.host_id] = h.maintenance_window or "always"
    wanted = set(request.target_groups)
    eligible = [h for h in hosts if not wanted or wanted & set(h.groups)]
    if not eligible:
        scope = f" in groups {sorted(wanted)}" if wanted else ""
        raise PlanError(f"rollout {request.rollout_id!r}: no enrolled host{scope} to roll out to")
    groups_of = {h.host_id: set(h.groups) for h in eligible}
    order = spread_order(request.rollout_id, [h.host_id for h in eligible])
    total = len(order)
    remaining = list(order)
    canary_size = request.canary.resolve(total)
    waves = [_wave("canary", remaining[:canary_size], request.disruption_budget,
                   request.max_concurrency)]
    remaining = remaining[canary_size:]
    for spec in request.waves:
        if not remaining:
            break
        if spec.groups:
            chosen = [h for h in remaining if groups_of[h] & set(spec.groups)]
        else:
            chosen = remaining[:math.ceil((spec.percent or 0) * total / 100)]
        if not chosen:
            continue
        taken = set(chosen)
        remaining = [h for h in remaining if h not in taken]
        waves.append(_wave(f"wave {len(waves)}", chosen,
                           spec.disruption_budget or request.disruption_budget,
                           spec.max_concurrency or request.max_concurrency, spec.groups))
    if remaining:
        waves.append(_wave(f"wave {len(waves)}", remaining, request.disruption_budget,
                           request.max_concurrency))
    return RolloutPlan(request.rollout_id, request.patch_id, tuple(waves),
                       request.soak_seconds, request.failure_threshold_pct,
                       request.wave_timeout_seconds, request.rollback_on_failure,
                       {h: windows[h] for h in order})
