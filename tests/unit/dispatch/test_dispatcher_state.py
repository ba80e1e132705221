"""The dispatcher's incremental state and the planner/dispatcher race, over the real lifecycle
core (core_ledger): the deployments are read in full only at the start, at each wave start and
after a replay, not at every step, and the view the dispatcher keeps matches the ledger; a
restarted dispatcher rebuilds it from the ledger; ``dispatch plan`` racing a running
``dispatch run`` creates the rollout once and keeps the plan, whichever CreateRollout
commits first."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from patchledger.app.dispatch.dispatcher import Dispatcher, DispatchSettings, StepReport
from patchledger.app.dispatch.ledger import SubmitFailed
from patchledger.app.dispatch.planner import PlanError, Quantity
from patchledger.app.errors import UserError
from patchledger.chaincode.lifecycle.queries import get_record
from tests.unit.dispatch.core_ledger import CoreLedger
from tests.unit.dispatch.test_dispatcher import HOSTS, World, new_world, request


@pytest.fixture
def world(tmp_path: Path) -> World:
    return new_world(tmp_path)


class CountingLedger:
    """The core ledger, counting full reads of the deployments."""

    def __init__(self, inner: CoreLedger) -> None:
        self.inner = inner
        self.deployment_reads = 0

    def evaluate(self, function: str, *args: Any) -> Any:
        return self.inner.evaluate(function, *args)

    def submit(self, function: str, *args: Any, endorsing: Sequence[str] = ()) -> Any:
        return self.inner.submit(function, *args, endorsing=endorsing)

    def records(self, record_type: str, status: str = "") -> Iterator[dict[str, Any]]:
        if record_type == "Deployment":
            self.deployment_reads += 1
        return self.inner.records(record_type, status)


def _ledger_counts(world: World) -> Counter[str]:
    return Counter(get_record(world.ledger.store, "Deployment", "R-1", h).state
                   for h in HOSTS
                   if _exists(world, h))


def _exists(world: World, host: str) -> bool:
    try:
        get_record(world.ledger.store, "Deployment", "R-1", host)
    except Exception:
        return False
    return True


def test_deployments_are_read_in_full_per_wave_not_per_step(world: World) -> None:
    counting = CountingLedger(world.ledger)
    d = Dispatcher(counting, world.state, "ITOpsMSP", world.dispatcher().settings,
                   clock=world.clock)
    d.create_rollout(request())
    steps = compared = 0
    for _ in range(80):
        report: StepReport = d.step()
        steps += 1
        if not report.decisions and "R-1" in d._deps:
            # no decision changed the ledger after the step's view: the view (the last
            # full read plus the committed batches' outcomes) is exactly the ledger
            assert Counter(dep["status"] for dep in d._deps["R-1"].values()) == \
                _ledger_counts(world)
            compared += 1
        world.hosts.act()
        world.clock.now += 1
        if world.status() == "COMPLETED":
            d.step()
            break
    assert world.status() == "COMPLETED"
    assert compared > 5
    # the start (PLANNED), then one read per wave started (3 waves) and at the completion
    assert counting.deployment_reads <= 5 < steps


def test_the_view_matches_the_ledger_after_every_step_and_after_a_restart(
        world: World) -> None:
    d = world.dispatcher()
    d.create_rollout(request())
    for _ in range(8):  # into wave 1
        d.step()
        world.hosts.act()
        world.clock.now += 1
    d.flush_reports(StepReport(), force=True)
    view = Counter(dep["status"] for dep in d._deps["R-1"].values())
    assert view == _ledger_counts(world)
    restarted = world.dispatcher()  # same state directory: rebuilds from the ledger
    restarted.step()  # reads in full, then starts the next wave
    restarted.step()  # the wave changed: reads in full again
    assert restarted.full_reads == 2
    assert Counter(dep["status"] for dep in restarted._deps["R-1"].values()) == \
        _ledger_counts(world)
    world.drive(restarted, until={"COMPLETED"})
    assert world.status() == "COMPLETED"
    assert [a for a, _ in world.ledger.decisions()] == ["advance", "advance", "advance",
                                                         "complete"]


class RacingLedger:
    """The ledger as the planner sees it: right before the planner's own CreateRollout
    (``first="dispatcher"``) or right after it (``first="planner"``), a running dispatcher
    on the same state directory takes a step (and sees the new plan file)."""

    def __init__(self, inner: CoreLedger, first: str) -> None:
        self.inner = inner
        self.first = first
        self.dispatcher: Dispatcher | None = None

    def evaluate(self, function: str, *args: Any) -> Any:
        return self.inner.evaluate(function, *args)

    def records(self, record_type: str, status: str = "") -> Iterator[dict[str, Any]]:
        return self.inner.records(record_type, status)

    def submit(self, function: str, *args: Any, endorsing: Sequence[str] = ()) -> Any:
        racer, self.dispatcher = self.dispatcher, None
        if function == "CreateRollout" and racer is not None and self.first == "dispatcher":
            racer.step()  # the running dispatcher creates the rollout first
        result = self.inner.submit(function, *args, endorsing=endorsing)
        if function == "CreateRollout" and racer is not None and self.first == "planner":
            racer.step()
        return result


@pytest.mark.parametrize("first", ["dispatcher", "planner"])
def test_plan_racing_a_running_dispatcher_creates_the_rollout_once(
        world: World, first: str) -> None:
    running = world.dispatcher()
    racing = RacingLedger(world.ledger, first)
    racing.dispatcher = running
    planner = Dispatcher(racing, world.state, "ITOpsMSP", running.settings,
                         clock=world.clock)
    plan = planner.create_rollout(request())  # no error, whichever committed first
    assert (world.state / "plans" / "R-1.json").is_file()  # the plan is kept
    creates = [f for f, _ in world.ledger.calls if f == "CreateRollout"]
    assert len(creates) == (2 if first == "dispatcher" else 1)
    assert world.status() in ("PLANNED", "RUNNING")
    world.drive(running, until={"COMPLETED"})
    assert world.status() == "COMPLETED"
    assert [len(w.hosts) for w in plan.waves] == [2, 3, 5]
    assert [a for a, _ in world.ledger.decisions()].count("complete") == 1


def test_a_different_rollout_under_the_same_id_is_not_taken_for_the_plan(
        world: World) -> None:
    d = world.dispatcher()
    d.create_rollout(request())
    (world.state / "plans" / "R-1.json").unlink()  # another planner's rollout R-1
    other = world.dispatcher()
    with pytest.raises(PlanError, match="not this plan's: its waves hold other hosts"):
        other.create_rollout(request(canary=Quantity(1)))
    assert not (world.state / "plans" / "R-1.json").exists()


def test_a_refused_create_without_a_rollout_on_the_ledger_is_reported(world: World) -> None:
    d = world.dispatcher()
    with pytest.raises(SubmitFailed, match="CreateRollout refused"):
        d.create_rollout(request(patch_id="P-unknown"))
    assert not (world.state / "plans" / "R-1.json").exists()



class ConcurrentLedger:
    """The core ledger behind a lock, recording which report batches were in flight at once
    (each submit waits a little so that concurrent ones overlap)."""

    def __init__(self, inner: CoreLedger) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.in_flight: list[set[str]] = []
        self.overlaps: list[list[set[str]]] = []

    def evaluate(self, function: str, *args: Any) -> Any:
        with self.lock:
            return self.inner.evaluate(function, *args)

    def records(self, record_type: str, status: str = "") -> Iterator[dict[str, Any]]:
        with self.lock:
            return iter(list(self.inner.records(record_type, status)))

    def submit(self, function: str, *args: Any, endorsing: Sequence[str] = ()) -> Any:
        if function != "ReportDeployments":
            with self.lock:
                return self.inner.submit(function, *args, endorsing=endorsing)
        hosts = {r["report"]["host_id"] for r in args[0]}
        with self.lock:
            self.in_flight.append(hosts)
            self.overlaps.append([set(h) for h in self.in_flight])
        time.sleep(0.05)
        with self.lock:
            self.in_flight.remove(hosts)
            return self.inner.submit(function, *args, endorsing=endorsing)


def test_report_batches_in_flight_together_hold_disjoint_hosts(world: World) -> None:
    ledger = ConcurrentLedger(world.ledger)
    d = Dispatcher(ledger, world.state, "ITOpsMSP",
                   DispatchSettings(batch_max_reports=1, batch_max_latency=0.1,
                                    batches_in_flight=4), clock=world.clock)
    d.create_rollout(request(max_concurrency=Quantity(5), disruption_budget=Quantity(5)))
    for _ in range(80):
        d.step()
        world.hosts.act()
        world.clock.now += 1
        if world.status() == "COMPLETED":
            break
    assert world.status() == "COMPLETED"
    assert max(len(o) for o in ledger.overlaps) > 1  # batches did go together
    for together in ledger.overlaps:
        seen: set[str] = set()
        for hosts in together:
            assert not hosts & seen
            seen |= hosts
    with pytest.raises(UserError, match="batches_in_flight"):
        DispatchSettings(batches_in_flight=9)
