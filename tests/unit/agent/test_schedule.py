"""The schedule's pure rules, property-tested: backoff bounded by the cap and above half its
ceiling, jittered, growing, reset by a success; the poll interval jittered within its band
and server changes clamped."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchledger.agent.errors import ConfigError
from patchledger.agent.schedule import (
    Schedule,
    ScheduleState,
    after_failure,
    after_success,
    backoff_delay,
    clamp_interval,
    poll_delay,
)

S = Schedule()
units = st.floats(min_value=0, max_value=1, exclude_max=True)
failures = st.integers(min_value=1, max_value=10_000)
schedules = st.builds(
    lambda base, factor, interval, jitter: Schedule(
        interval=interval, jitter=jitter, backoff_base=base, backoff_cap=base * factor),
    st.floats(min_value=0.1, max_value=100), st.floats(min_value=1, max_value=1000),
    st.floats(min_value=10, max_value=86_400), st.floats(min_value=0, max_value=0.9),
)


@given(schedules, failures, units, st.none() | st.floats(min_value=0, max_value=1e9))
def test_backoff_is_bounded(schedule: Schedule, n: int, u: float, retry_after) -> None:
    delay = backoff_delay(schedule, n, u, retry_after)
    ceiling = min(schedule.backoff_cap, schedule.backoff_base * 2.0 ** min(n - 1, 60))
    assert ceiling / 2 <= delay <= schedule.backoff_cap
    if retry_after is None:
        assert delay <= ceiling


@given(schedules, failures, units, units)
def test_backoff_is_jittered(schedule: Schedule, n: int, u1: float, u2: float) -> None:
    d1, d2 = backoff_delay(schedule, n, u1), backoff_delay(schedule, n, u2)
    if u1 <= u2:
        assert d1 <= d2
    if abs(u1 - u2) > 0.01:
        assert d1 != d2  # two hosts with different draws do not retry together


@given(schedules, st.integers(min_value=1, max_value=100), units)
def test_backoff_never_shrinks_as_failures_grow(schedule: Schedule, n: int, u: float) -> None:
    assert backoff_delay(schedule, n + 1, u) >= backoff_delay(schedule, n, u)


@given(schedules, st.integers(min_value=0, max_value=50), units, units)
def test_a_success_resets_the_backoff(schedule: Schedule, n: int, u: float, v: float) -> None:
    state = ScheduleState(schedule.interval)
    for _ in range(n):
        state, _ = after_failure(schedule, state, u)
    assert state.failures == n
    state, delay = after_success(schedule, state, None, v)
    assert state.failures == 0
    assert delay == poll_delay(schedule, schedule.interval, v)
    state, first = after_failure(schedule, state, u)
    assert first == backoff_delay(schedule, 1, u) <= schedule.backoff_base


@given(schedules, units)
def test_poll_delay_stays_in_the_jitter_band(schedule: Schedule, u: float) -> None:
    delay = poll_delay(schedule, schedule.interval, u)
    low = schedule.interval * (1 - schedule.jitter)
    high = schedule.interval * (1 + schedule.jitter)
    assert low <= delay <= high


@given(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.integers()))
def test_a_server_interval_is_clamped(requested) -> None:
    got = clamp_interval(S, requested, 300.0)
    assert S.min_interval <= got <= S.max_interval
    if isinstance(requested, (int, float)) and not isinstance(requested, bool) and requested > 0:
        assert got == min(S.max_interval, max(S.min_interval, float(requested)))
    else:
        assert got == 300.0


def test_the_server_changes_the_interval() -> None:
    state, delay = after_success(S, ScheduleState(300), 60, 0.5)
    assert state.interval == 60
    assert delay == 60
    assert after_success(S, state, 0.001, 0.5)[0].interval == S.min_interval


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    assert backoff_delay(S, 1, 0.0, retry_after=120) == 120
    assert backoff_delay(S, 1, 0.0, retry_after=10**9) == S.backoff_cap


@pytest.mark.parametrize("kwargs", [
    {"jitter": 1.0}, {"jitter": -0.1}, {"interval": 5}, {"backoff_base": 0},
    {"backoff_base": 1000}, {"min_interval": 0, "interval": 1},
])
def test_bad_schedules_are_config_errors(kwargs) -> None:
    with pytest.raises(ConfigError):
        Schedule(**kwargs)
