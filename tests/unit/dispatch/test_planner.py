"""The rollout planner: every eligible host in exactly one wave, the canary first, waves by
group and percentage, limits resolved per wave, bad requests refused with a clear message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchledger.app.dispatch.planner import (
    HostInfo,
    PlanError,
    Quantity,
    RolloutPlan,
    RolloutRequest,
    WaveRequest,
    plan_rollout,
)

GROUPS = ("web", "db", "edge", "batch")


def fleet(n: int, groups: tuple[str, ...] = GROUPS) -> list[HostInfo]:
    return [HostInfo(f"h{i:03d}", (groups[i % len(groups)],)) for i in range(n)]


hosts_st = st.lists(
    st.builds(HostInfo, st.text("abcdefghij0123456789", min_size=1, max_size=6),
              st.lists(st.sampled_from(GROUPS), max_size=2).map(tuple)),
    min_size=1, max_size=60, unique_by=lambda h: h.host_id)
quantity_st = st.one_of(st.builds(Quantity, st.integers(1, 80)),
                        st.builds(Quantity, st.integers(1, 100), st.just(True)))
wave_st = st.one_of(
    st.builds(WaveRequest, groups=st.lists(st.sampled_from(GROUPS), min_size=1,
                                           max_size=2).map(tuple)),
    st.builds(WaveRequest, percent=st.integers(1, 100)))


@settings(max_examples=150, deadline=None)
@given(hosts_st, quantity_st, st.lists(wave_st, max_size=4), quantity_st, quantity_st,
       st.lists(st.sampled_from(GROUPS), max_size=2))
def test_every_eligible_host_is_in_exactly_one_wave(
    hosts: list[HostInfo], canary: Quantity, waves: list[WaveRequest], budget: Quantity,
    concurrency: Quantity, target: list[str],
) -> None:
    request = RolloutRequest("R-1", "P-1", canary=canary, waves=tuple(waves),
                             disruption_budget=budget, max_concurrency=concurrency,
                             target_groups=tuple(target))
    eligible = {h.host_id for h in hosts if not target or set(target) & set(h.groups)}
    if not eligible:
        with pytest.raises(PlanError, match="no enrolled host"):
            plan_rollout(request, hosts)
        return
    plan = plan_rollout(request, hosts)
    planned = [h for w in plan.waves for h in w.hosts]
    assert len(planned) == len(set(planned)), "a host is in two waves"
    assert set(planned) == eligible
    assert all(w.hosts for w in plan.waves), "an empty wave"
    assert plan.waves[0].label == "canary"
    assert len(plan.waves[0].hosts) == canary.resolve(len(eligible))
    for w in plan.waves:
        assert 1 <= w.disruption_budget <= len(w.hosts) or w.disruption_budget == 1
        assert 1 <= w.max_concurrency <= len(w.hosts) or w.max_concurrency == 1
    assert plan_rollout(request, list(reversed(hosts))) == plan, "the plan depends on order"
    assert RolloutPlan.from_dict(plan.to_dict()) == plan


def test_a_percentage_canary_then_group_and_percentage_waves() -> None:
    hosts = fleet(40)
    request = RolloutRequest(
        "R-2", "P-2", canary=Quantity(5, percent=True),
        waves=(WaveRequest(groups=("db",)), WaveRequest(percent=25)),
        disruption_budget=Quantity(20, percent=True), max_concurrency=Quantity(3))
    plan = plan_rollout(request, hosts)
    assert len(plan.waves[0].hosts) == 2
    db = {h.host_id for h in hosts if "db" in h.groups}
    assert set(plan.waves[1].hosts) == db - set(plan.waves[0].hosts)
    assert len(plan.waves[2].hosts) == 10  # 25% of the fleet
    assert len(plan.waves) == 4  # the rest
    assert plan.waves[1].disruption_budget == max(1, len(plan.waves[1].hosts) * 20 // 100)
    assert all(w.max_concurrency == 3 for w in plan.waves[1:])
    assert plan.create_rollout_argument()["waves"][0] == {"hosts": list(plan.waves[0].hosts)}


def test_a_wave_limit_of_its_own_overrides_the_default() -> None:
    plan = plan_rollout(RolloutRequest("R-3", "P-3", waves=(
        WaveRequest(percent=50, disruption_budget=Quantity(7), max_concurrency=Quantity(2)),)),
        fleet(20))
    assert (plan.waves[1].disruption_budget, plan.waves[1].max_concurrency) == (7, 2)


def test_the_canary_is_a_spread_sample_stable_per_rollout() -> None:
    hosts = fleet(100)
    a = plan_rollout(RolloutRequest("R-a", "P", canary=Quantity(5)), hosts).waves[0].hosts
    b = plan_rollout(RolloutRequest("R-b", "P", canary=Quantity(5)), hosts).waves[0].hosts
    assert a != b
    assert a != tuple(h.host_id for h in hosts[:5])
    assert plan_rollout(RolloutRequest("R-a", "P", canary=Quantity(5)), hosts).waves[0].hosts == a


@pytest.mark.parametrize(("text", "message"), [
    ("0", "at least 1"), ("150%", "at most 100"), ("ten", "neither a number"), ("-3", "neither"),
])
def test_bad_quantities_are_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message) as info:
        Quantity.parse(text, "canary")
    assert "canary" in str(info.value)


def test_bad_requests_are_refused() -> None:
    with pytest.raises(PlanError, match="exactly one"):
        WaveRequest(groups=("web",), percent=10)
    with pytest.raises(PlanError, match="exactly one"):
        WaveRequest()
    with pytest.raises(PlanError, match="failure_threshold_pct"):
        RolloutRequest("R", "P", failure_threshold_pct=101)
    with pytest.raises(PlanError, match="rollout_id"):
        RolloutRequest("", "P")
    with pytest.raises(PlanError, match="listed twice"):
        plan_rollout(RolloutRequest("R", "P"), [HostInfo("h1"), HostInfo("h1")])
    with pytest.raises(PlanError, match=r"'h2'.*maintenance window"):
        plan_rollout(RolloutRequest("R", "P"), [HostInfo("h1"), HostInfo("h2", (), "Sun 25:00")])


def test_percent_quantities_resolve_to_at_least_one_host() -> None:
    assert Quantity(10, percent=True).resolve(5) == 1
    assert Quantity(50, percent=True).resolve(9) == 4
    assert Quantity(30).resolve(10) == 10
    assert Quantity.parse("25%", "x") == Quantity(25, True)
    assert Quantity.parse(4, "x") == Quantity(4)
