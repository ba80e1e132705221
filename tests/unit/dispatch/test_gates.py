"""Wave gates: releases never exceed the disruption budget or the concurrency and respect
windows and offline hosts; verdicts follow the rules of app.dispatch.gates, including over
whole simulated waves where hosts fail, go offline and windows close."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from patchledger.app.dispatch.gates import (
    HostState,
    HostView,
    VerdictKind,
    WaveRules,
    WaveView,
    classify,
    select_releases,
    wave_verdict,
)

host_st = st.builds(HostView, st.just(""), st.sampled_from(list(HostState)), st.booleans(),
                    st.booleans())


def wave_of(views: list[HostView], budget: int, concurrency: int, index: int = 0) -> WaveView:
    named = tuple(HostView(f"h{i}", v.state, v.window_open, v.online)
                  for i, v in enumerate(views))
    return WaveView(index, named, budget, concurrency)


def rules(threshold: int = 0, soak: int = 0, timeout: int = 100, start: int = 1000,
          clock: int | None = None) -> WaveRules:
    return WaveRules(threshold, soak, timeout, start, start if clock is None else clock)


@settings(max_examples=300, deadline=None)
@given(st.lists(host_st, max_size=40), st.integers(1, 20), st.integers(1, 20))
def test_releases_respect_budget_concurrency_windows_and_offline_hosts(
    views: list[HostView], budget: int, concurrency: int
) -> None:
    wave = wave_of(views, budget, concurrency)
    released = select_releases(wave)
    by_id = {h.host_id: h for h in wave.hosts}
    assert len(released) == len(set(released))
    for host_id in released:
        h = by_id[host_id]
        assert h.state is HostState.WAITING and h.window_open and h.online
    in_progress = wave.count(HostState.IN_PROGRESS) + len(released)
    failed = wave.count(HostState.FAILED)
    if released:
        assert in_progress <= concurrency
        assert in_progress + failed <= budget
    ready = [h for h in wave.hosts if h.state is HostState.WAITING and h.window_open and h.online]
    if len(released) < len(ready):  # it stopped only at a limit
        assert in_progress >= concurrency or in_progress + failed >= budget


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1,
                max_size=30),
       st.integers(1, 8), st.integers(1, 8), st.integers(0, 100), st.randoms())
def test_a_simulated_wave_never_exceeds_its_budget_and_ends_with_a_verdict(
    hosts: list[tuple[bool, bool, bool]], budget: int, concurrency: int, threshold: int,
    rnd: object,
) -> None:
    """Drive a wave to its end: each step releases what the gate allows, then some released
    hosts settle (fail or verify as drawn); hosts drawn offline or outside their window never
    start. The disruption budget and the concurrency hold at every step, no host outside its
    window or offline is ever released, and the wave ends with a final verdict by its
    timeout."""
    import random
    assert isinstance(rnd, random.Random)
    fails = {f"h{i}": f for i, (f, _, _) in enumerate(hosts)}
    available = {f"h{i}": (w, o) for i, (_, w, o) in enumerate(hosts)}
    states = {f"h{i}": HostState.WAITING for i in range(len(hosts))}
    r = rules(threshold=threshold, timeout=50)
    now = r.wave_started_at
    verdict = None
    for _ in range(200):
        window_open, online = zip(*(available[h] for h in states), strict=True)
        wave = WaveView(0, tuple(HostView(h, s, w, o) for (h, s), w, o in
                                 zip(states.items(), window_open, online, strict=True)),
                        budget, concurrency)
        verdict = wave_verdict(wave, r, now)
        if verdict.kind is not VerdictKind.RUNNING:
            break
        for host_id in select_releases(wave):
            assert available[host_id] == (True, True)
            states[host_id] = HostState.IN_PROGRESS
        in_progress = [h for h, s in states.items() if s is HostState.IN_PROGRESS]
        failed = sum(1 for s in states.values() if s is HostState.FAILED)
        assert len(in_progress) <= concurrency
        assert len(in_progress) + failed <= budget
        for host_id in in_progress:
            if rnd.random() < 0.5:
                states[host_id] = HostState.FAILED if fails[host_id] else HostState.VERIFIED
        now += 1
    assert verdict is not None and verdict.kind is not VerdictKind.RUNNING
    total, n_failed = len(states), sum(1 for s in states.values() if s is HostState.FAILED)
    if verdict.kind is VerdictKind.SUCCESS:
        assert all(s in (HostState.VERIFIED, HostState.FAILED) for s in states.values())
        assert n_failed * 100 <= threshold * total
    if verdict.kind is VerdictKind.INCONCLUSIVE:
        assert now >= r.clock_started_at + r.wave_timeout_seconds


@settings(max_examples=300, deadline=None)
@given(st.lists(host_st, max_size=30), st.integers(1, 10), st.integers(0, 100),
       st.integers(0, 50), st.integers(0, 300))
def test_verdicts_follow_the_rules(views: list[HostView], budget: int, threshold: int,
                                   soak: int, elapsed: int) -> None:
    wave = wave_of(views, budget, 5)
    r = rules(threshold=threshold, soak=soak, timeout=100)
    now = r.wave_started_at + elapsed
    verdict = wave_verdict(wave, r, now)
    total = len(wave.hosts)
    failed = wave.count(HostState.FAILED)
    settled = failed + wave.count(HostState.VERIFIED)
    if total == 0:
        assert verdict.kind is VerdictKind.INCONCLUSIVE
    elif failed * 100 > threshold * total:
        assert verdict.kind is VerdictKind.FAILURE
        assert "threshold" in verdict.reason
    elif settled == total:
        assert verdict.kind is (VerdictKind.SUCCESS if elapsed >= soak else VerdictKind.RUNNING)
    elif wave.count(HostState.WAITING) and failed >= budget:
        assert verdict.kind is VerdictKind.FAILURE
        assert "disruption budget" in verdict.reason
    elif elapsed >= 100:
        assert verdict.kind is VerdictKind.INCONCLUSIVE
    else:
        assert verdict.kind is VerdictKind.RUNNING
    assert verdict.reason.startswith("wave 0")


def test_an_inconclusive_wave_names_offline_out_of_window_and_silent_hosts() -> None:
    wave = WaveView(2, (
        HostView("a", HostState.VERIFIED),
        HostView("b", HostState.WAITING, online=False),
        HostView("c", HostState.WAITING, window_open=False),
        HostView("d", HostState.IN_PROGRESS),
    ), 5, 5)
    verdict = wave_verdict(wave, rules(timeout=60), 1060)
    assert verdict.kind is VerdictKind.INCONCLUSIVE
    assert verdict.reason == (
        "wave 2: 3/4 host(s) did not report within 60s: offline: b; outside their maintenance "
        "window: c; released without a report: d")


def test_the_timeout_counts_from_the_last_resume() -> None:
    wave = WaveView(0, (HostView("a", HostState.IN_PROGRESS),), 1, 1)
    assert wave_verdict(wave, rules(timeout=60, clock=1100), 1100 + 59).kind is VerdictKind.RUNNING
    assert wave_verdict(wave, rules(timeout=60, clock=1100), 1160).kind is VerdictKind.INCONCLUSIVE


def test_classify() -> None:
    assert classify(None, False) is HostState.WAITING
    assert classify("SCHEDULED", False) is HostState.WAITING
    assert classify("SCHEDULED", True) is HostState.IN_PROGRESS
    assert classify("APPLIED", False) is HostState.IN_PROGRESS
    assert classify("ROLLED_BACK", True) is HostState.FAILED
    assert classify("VERIFIED", True) is HostState.VERIFIED


def test_a_forged_status_counts_as_no_report_and_makes_the_wave_inconclusive() -> None:
    # h1's VERIFIED did not verify: the dispatcher gives it as no report (classify(None, ...))
    # with the reason; the other host is genuinely verified, so without the forgery the
    # wave would be settled and succeed.
    why = "deployment R-1/h1: status VERIFIED (report 1) carries no signature of host 'h1'"
    wave = WaveView(0, (HostView("h0", HostState.VERIFIED),
                        HostView("h1", classify(None, True), forged=why)), 2, 2)
    assert wave.count(HostState.VERIFIED) == 1
    verdict = wave_verdict(wave, rules(), 1000)
    assert verdict.kind is VerdictKind.INCONCLUSIVE
    assert verdict.reason == ("wave 0: 1 host status(es) not signed by their host, not "
                              f"counted (h1: {why})")
    honest = WaveView(0, (wave.hosts[0], HostView("h1", HostState.VERIFIED)), 2, 2)
    assert wave_verdict(honest, rules(), 1000).kind is VerdictKind.SUCCESS


def test_genuine_failures_above_the_threshold_still_halt_and_name_the_forgery() -> None:
    wave = WaveView(0, (HostView("h0", HostState.FAILED),
                        HostView("h1", HostState.WAITING, forged="no signature")), 2, 2)
    verdict = wave_verdict(wave, rules(), 1000)
    assert verdict.kind is VerdictKind.FAILURE
    assert "1/2 host(s) failed" in verdict.reason
    assert "also 1 host status(es) not signed by their host, not counted (h1: no signature)" \
        in verdict.reason
