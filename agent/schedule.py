"""When the agent talks to the app next: a jittered poll interval the server may change, and
backoff with jitter after errors. Pure: the random draws are passed in (``u`` in [0, 1)).

- **Poll**: ``interval * (1 - jitter + 2*jitter*u)``, the interval being the server's
  ``poll_interval`` clamped to ``[min_interval, max_interval]`` (a server cannot make the
  agent poll every millisecond, or never). Jitter spreads thousands of hosts that started
  together.
- **Backoff** after the ``n``-th consecutive failure ("equal jitter", AWS architecture blog):
  ``m = min(cap, base * 2^(n-1))``, delay ``m/2 + u*m/2``, so it grows exponentially, is never
  above ``cap`` and never below half its ceiling (no immediate hammering after an outage, and
  hosts that failed together do not retry together). A server's ``Retry-After`` raises the
  delay up to the cap, never above it.
- **Reset**: one success sets the failure count back to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from patchledger.agent.errors import ConfigError

__all__ = [
    "Schedule",
    "ScheduleState",
    "after_failure",
    "after_success",
    "backoff_delay",
    "clamp_interval",
    "poll_delay",
]


@dataclass(frozen=True)
class Schedule:
    """The schedule's settings (seconds).

    Attributes:
        interval: the poll interval until the server sets one.
        jitter: the poll interval's spread, a fraction in [0, 1).
        min_interval, max_interval: the bounds on a server-set interval.
        backoff_base: the first backoff ceiling.
        backoff_cap: the largest backoff.
    """

    interval: float = 300.0
    jitter: float = 0.2
    min_interval: float = 10.0
    max_interval: float = 86_400.0
    backoff_base: float = 5.0
    backoff_cap: float = 900.0

    def __post_init__(self) -> None:
        """Raises:
        ConfigError: a bound out of order, a jitter outside [0, 1), a non-positive value.
        """
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"poll jitter must be in [0, 1), not {self.jitter}")
        if not 0 < self.min_interval <= self.interval <= self.max_interval:
            raise ConfigError(
                f"poll interval {self.interval} must lie in [{self.min_interval},"
                f" {self.max_interval}] with a positive minimum"
            )
        if not 0 < self.backoff_base <= self.backoff_cap:
            raise ConfigError(f"backoff base {self.backoff_base} must be positive and at most"
                              f" the cap {self.backoff_cap}")


@dataclass(frozen=True)
class ScheduleState:
    """What the schedule remembers: the current interval and the failures in a row."""

    interval: float
    failures: int = 0


def clamp_interval(schedule: Schedule, requested: float | None, current: float) -> float:
    """The interval after the server asked for ``requested`` (``None``, not a number or not
    positive: keep ``current``)."""
    if requested is None or isinstance(requested, bool) or not requested > 0:
        return current
    return min(schedule.max_interval, max(schedule.min_interval, float(requested)))


def poll_delay(schedule: Schedule, interval: float, u: float) -> float:
    """The jittered wait before the next poll."""
    return interval * (1 - schedule.jitter + 2 * schedule.jitter * u)


def backoff_delay(schedule: Schedule, failures: int, u: float,
                  retry_after: float | None = None) -> float:
    """The wait after the ``failures``-th consecutive failure (``failures`` >= 1)."""
    exponent = min(max(failures, 1) - 1, 60)  # 2**60 * base is past any cap
    ceiling = min(schedule.backoff_cap, schedule.backoff_base * 2.0 ** exponent)
    delay = ceiling / 2 + u * ceiling / 2
    if retry_after is not None and retry_after > delay:
        delay = min(schedule.backoff_cap, retry_after)
    return delay


def after_success(schedule: Schedule, state: ScheduleState, requested: float | None,
                  u: float) -> tuple[ScheduleState, float]:
    """The new state and the wait after a successful cycle (failures reset)."""
    interval = clamp_interval(schedule, requested, state.interval)
    return ScheduleState(interval, 0), poll_delay(schedule, interval, u)


def after_failure(schedule: Schedule, state: ScheduleState, u: float,
                  retry_after: float | None = None) -> tuple[ScheduleState, float]:
    """The new state and the wait after a failed cycle."""
    failed = replace(state, failures=state.failures + 1)
    return failed, backoff_delay(schedule, failed.failures, u, retry_after)
