"""The dispatcher over the real lifecycle core (tests/unit/dispatch/core_ledger.py): hosts act
on its orders through the board and report signed results into its inbox. A rollout runs to
COMPLETED within its limits; a failing canary halts and rolls back; a revocation stops it; an
offline host makes the wave inconclusive; a new dispatcher on the same state directory carries
on without releasing, deciding or recording anything twice."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from patchledger.app.dispatch import dispatcher as dispatcher_module
from patchledger.app.dispatch.board import Board
from patchledger.app.dispatch.dispatcher import Dispatcher, DispatchSettings, StepReport
from patchledger.app.dispatch.ledger import FabricLedger
from patchledger.app.dispatch.planner import PlanError, Quantity, RolloutRequest, WaveRequest
from patchledger.app.fabric import EndorseError, GatewayError
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.ops import hosts as host_ops
from patchledger.chaincode.lifecycle.queries import get_record
from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.lifecycle.rollout import Rollout
from tests.unit.dispatch.core_ledger import Clock, CoreLedger
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    ITOPS,
    SECOPS,
    TRUST,
    approved_store,
    host_identity,
    report,
    run,
    who,
)

HOSTS = tuple(f"h{i}" for i in range(1, 11))


@dataclass
class Hosts:
    """Agents that obey the orders: ``fail`` hosts report FAILED then ROLLED_BACK, hosts in
    ``offline`` never act; every host numbers its reports."""

    board: Board
    fail: set[str] = field(default_factory=set)
    offline: set[str] = field(default_factory=set)
    sequence: Counter[str] = field(default_factory=Counter)
    done: set[tuple[str, str, str]] = field(default_factory=set)
    concurrent_max: int = 0

    def act(self) -> None:
        runs = []
        for host in HOSTS:
            if host in self.offline:
                continue
            self.board.mark_seen(host)
            order = self.board.order_for(host)
            if order is None or (host, order.action, order.rollout_id) in self.done:
                continue
            self.done.add((host, order.action, order.rollout_id))
            if order.action == "roll_back":
                outcomes = ["ROLLED_BACK"]
            else:
                outcomes = ["FAILED", "ROLLED_BACK"] if host in self.fail else ["VERIFIED"]
            signed = []
            for outcome in outcomes:
                self.sequence[host] += 1
                signed.append(report(host_identity(ITOPS, host), self.sequence[host], outcome,
                                     rollout_id=order.rollout_id))
            runs.append(signed)
        self.board.flush_seen()
        for signed in runs:
            self.board.put_reports(signed)


@dataclass
class World:
    ledger: CoreLedger
    clock: Clock
    state: Path
    hosts: Hosts

    def dispatcher(self, **settings: object) -> Dispatcher:
        return Dispatcher(self.ledger, self.state, ITOPS,
                          DispatchSettings(batch_max_latency=0.1, **settings),  # type: ignore[arg-type]
                          clock=self.clock)

    def status(self, rollout_id: str = "R-1") -> str:
        return get_record(self.ledger.store, "Rollout", rollout_id).state

    def drive(self, d: Dispatcher, steps: int = 60, until: set[str] | None = None,
              rollout_id: str = "R-1") -> None:
        for _ in range(steps):
            d.step()
            orders = [d.board.order_for(h) for h in HOSTS]
            active = sum(1 for o in orders if o is not None and o.action == "apply")
            self.hosts.concurrent_max = max(self.hosts.concurrent_max, active)
            self.hosts.act()
            self.clock.now += 1
            if until and self.status(rollout_id) in until:
                d.step()
                return


@pytest.fixture
def world(tmp_path: Path) -> World:
    return new_world(tmp_path)


def new_world(tmp_path: Path) -> World:
    """Ten approved hosts of ITOps on the core ledger, a dispatcher state directory."""
    clock = Clock()
    ledger = CoreLedger(approved_store(HOSTS), who(ITOPS, "operator"), clock)
    return World(ledger, clock, tmp_path / "dispatch", Hosts(Board(tmp_path / "dispatch")))


def request(**changes: object) -> RolloutRequest:
    base: dict[str, object] = {
        "rollout_id": "R-1", "patch_id": "P-1", "canary": Quantity(2),
        "waves": (WaveRequest(percent=30),), "disruption_budget": Quantity(3),
        "max_concurrency": Quantity(2), "soak_seconds": 2, "wave_timeout_seconds": 30}
    base.update(changes)
    return RolloutRequest(**base)  # type: ignore[arg-type]


def test_a_rollout_runs_wave_by_wave_to_completed_within_its_limits(world: World) -> None:
    d = world.dispatcher()
    plan = d.create_rollout(request())
    assert [len(w.hosts) for w in plan.waves] == [2, 3, 5]
    world.drive(d, until={"COMPLETED"})
    assert world.status() == "COMPLETED"
    assert world.hosts.concurrent_max <= 2
    actions = [a for a, _ in world.ledger.decisions()]
    assert actions == ["advance", "advance", "advance", "complete"]
    reasons = [r for _, r in world.ledger.decisions()]
    assert reasons[1].startswith("dispatcher: SUCCESS: wave 0: 2/2 verified")
    record = get_record(world.ledger.store, "Rollout", "R-1")
    assert isinstance(record, Rollout)
    assert record.reason.startswith("dispatcher: SUCCESS: wave 2")
    for host in HOSTS:
        assert get_record(world.ledger.store, "Deployment", "R-1", host).state == "VERIFIED"
    assert not list((world.state / "inbox").iterdir())
    with pytest.raises(PlanError, match="already planned"):
        d.create_rollout(request())


def test_a_failing_canary_halts_and_rolls_back_with_the_reason_on_the_ledger(
    world: World,
) -> None:
    d = world.dispatcher()
    plan = d.create_rollout(request())
    world.hosts.fail.add(plan.waves[0].hosts[0])
    world.drive(d, until={"ROLLED_BACK"})
    assert world.status() == "ROLLED_BACK"
    actions = [a for a, _ in world.ledger.decisions()]
    assert actions == ["advance", "halt", "roll_back"]
    halt_reason = world.ledger.decisions()[1][1]
    assert "FAILURE: wave 0: 1/2 host(s) failed, above the 0% threshold" in halt_reason
    world.drive(d, steps=5)
    ok = plan.waves[0].hosts[1]
    assert get_record(world.ledger.store, "Deployment", "R-1", ok).state == "ROLLED_BACK"
    # the later waves never started: only the canary has deployments
    assert {d_.host_id for d_ in _deployments(world)} == set(plan.waves[0].hosts)
    assert "R-1" in d.checkpoint.finished


def _deployments(world: World) -> list[Deployment]:
    return [Deployment.from_json(raw) for _, raw in world.ledger.store.scan("Deployment", ())]


def test_a_revocation_mid_rollout_stops_dispatching_and_rolls_back(world: World) -> None:
    d = world.dispatcher()
    d.create_rollout(request())
    world.drive(d, until={"RUNNING"})
    world.drive(d, steps=4)
    for org in (SECOPS, COMPLIANCE):
        world.ledger.submit("RevokePatch", "P-1", "backdoored build", caller=who(org, "approver"))
    # the ledger's rule: the revocation itself halts the rollout and orders the rollback
    assert world.status() == "ROLLED_BACK"
    record = get_record(world.ledger.store, "Rollout", "R-1")
    assert isinstance(record, Rollout) and record.reason == "patch P-1 revoked"
    decided = len(world.ledger.decisions())
    world.drive(d, steps=6)
    assert len(world.ledger.decisions()) == decided  # nothing left to decide: it stopped
    verified = [dep for dep in _deployments(world) if dep.state == "VERIFIED"]
    assert not verified, verified  # every host that had applied it rolled back on order
    assert any(dep.state == "ROLLED_BACK" for dep in _deployments(world))


def test_a_halt_by_an_operator_orders_rollback(world: World) -> None:
    d = world.dispatcher()
    d.create_rollout(request())
    world.drive(d, steps=3)
    world.ledger.submit("HaltRollout", "R-1")
    world.drive(d, steps=4)
    assert world.status() == "ROLLED_BACK"
    assert "rollout halted (halted by ITOpsMSP)" in world.ledger.decisions()[-1][1]


def test_an_offline_host_makes_the_wave_inconclusive_and_pauses_it(world: World) -> None:
    d = world.dispatcher()
    plan = d.create_rollout(request(wave_timeout_seconds=10))
    silent = plan.waves[0].hosts[1]
    world.hosts.offline.add(silent)
    world.drive(d, steps=20)
    assert world.status() == "PAUSED"
    action, reason = world.ledger.decisions()[-1]
    assert action == "pause"
    assert f"INCONCLUSIVE: wave 0: 1/2 host(s) did not report within 10s: offline: {silent}" \
        in reason
    world.hosts.offline.clear()
    world.ledger.submit("ResumeRollout", "R-1")
    world.drive(d, until={"COMPLETED"})
    assert world.status() == "COMPLETED"


@pytest.mark.parametrize("forged_status", ["VERIFIED", "FAILED"])
def test_a_status_the_host_did_not_sign_is_not_counted_and_pauses_the_wave(
    world: World, forged_status: str, caplog: pytest.LogCaptureFixture,
) -> None:
    # What two colluding organizations can commit (deployments have no key-level policy):
    # a status of an ITOps host that the host never signed. Written into the store here;
    # tests/integration/test_dispatch.py does it with SecOps' and Compliance's peers.
    d = world.dispatcher(resync_after=3)
    plan = d.create_rollout(request(wave_timeout_seconds=300))
    silent = plan.waves[0].hosts[1]
    world.hosts.offline.add(silent)
    world.drive(d, until={"RUNNING"})
    key = Key("Deployment", ("R-1", silent))
    scheduled = Deployment.from_json(world.ledger.store.data[key])
    world.ledger.store.data[key] = dataclasses.replace(
        scheduled, status=forged_status, report_sequence=1).to_json()
    world.drive(d, steps=15, until={"PAUSED"})
    assert world.status() == "PAUSED"  # neither advanced (forged VERIFIED) nor halted (FAILED)
    action, reason = world.ledger.decisions()[-1]
    assert action == "pause"
    assert (f"INCONCLUSIVE: wave 0: 1 host status(es) not signed by their host, not counted "
            f"({silent}: deployment R-1/{silent}: status {forged_status} (report 1) carries "
            f"no signature of host '{silent}')") in reason
    assert [a for a, _ in world.ledger.decisions()] == ["advance", "pause"]
    assert any(silent in r.getMessage() and "R-1" in r.getMessage()
               and "report sequence 1" in r.getMessage() for r in caplog.records)
    # verified once: later full reads (the pause, resyncs) use the cached result
    checks, reads = d.verifications, d.full_reads
    step = StepReport()
    for _ in range(8):
        step = d.step()
        world.clock.now += 1
    assert d.full_reads > reads and d.verifications == checks
    assert list(step.forged) == ["R-1"] and list(step.forged["R-1"]) == [silent]
    # the forged host counts as no report; the other canary host verified genuinely
    assert step.progress["R-1"] == Counter({"VERIFIED": 1, "SCHEDULED": 1})


def test_a_full_read_parses_each_rollout_record_once(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # regression: the signature check parsed the rollout record (every host of its waves) once
    # per deployment it checked, which made a full read quadratic: about 60 s at 10,000 hosts
    # between the last VERIFIED and the completion in bench_rollout
    parsed: list[str] = []

    def counting(data: Any) -> Rollout:
        parsed.append(str(data.get("rollout_id")))
        return Rollout.from_dict(data)

    monkeypatch.setattr(dispatcher_module, "Rollout", SimpleNamespace(from_dict=counting))
    d = world.dispatcher(resync_after=3)
    d.create_rollout(request())
    world.drive(d, until={"COMPLETED"})
    assert world.status() == "COMPLETED"
    assert d.verifications > d.full_reads >= 2, (d.verifications, d.full_reads)
    assert 1 <= parsed.count("R-1") <= d.full_reads, (parsed, d.full_reads)


def test_a_restarted_dispatcher_repeats_and_loses_nothing(world: World) -> None:
    d = world.dispatcher()
    d.create_rollout(request(max_concurrency=Quantity(1)))
    world.drive(d, steps=3)
    assert world.status() == "RUNNING"
    world.hosts.act()  # reports waiting in the inbox when the dispatcher "dies"
    assert list((world.state / "inbox").iterdir())
    fresh = world.dispatcher()  # a new process on the same state directory
    assert fresh.checkpoint.released == d.checkpoint.released
    world.drive(fresh, until={"COMPLETED"})
    assert world.status() == "COMPLETED"
    actions = [a for a, _ in world.ledger.decisions()]
    assert actions == ["advance", "advance", "advance", "complete"]
    # finished: its released hosts are no longer kept (the checkpoint stays bounded)
    assert fresh.checkpoint.finished == ["R-1"] and fresh.checkpoint.released == {}
    batches = [a[0] for f, a in world.ledger.calls if f == "ReportDeployments"]
    reports = [r["report"]["host_id"] for b in batches for r in b]
    assert Counter(reports) == Counter(HOSTS)  # each host's report submitted once


def test_a_batch_resubmitted_after_a_crash_is_refused_as_replays(world: World) -> None:
    d = world.dispatcher()
    d.create_rollout(request())
    world.drive(d, steps=2)
    world.hosts.act()
    files = d.board.pending_reports()
    assert files
    saved = [(f.path, f.path.read_bytes()) for f in files]
    first = StepReport()
    d.flush_reports(first, force=True)  # submitted and removed
    assert first.accepted == sum(len(f.reports) for f in files)
    assert not d.board.pending_reports()
    for path, data in saved:  # the crash came before the removal
        path.write_bytes(data)
    step = StepReport()
    d.flush_reports(step, force=True)
    assert (step.accepted, step.replayed, step.refused) == (0, sum(len(f.reports)
                                                                   for f in files), 0)


def test_reports_stay_in_the_inbox_while_the_peer_is_unreachable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # regression (tests/reliability/test_network_faults.py): a batch submitted while the own
    # peer restarted was set aside as "refused", so acknowledged reports never reached the
    # ledger; an unreachable peer must leave the files for the next flush
    d = world.dispatcher()
    d.create_rollout(request())
    world.drive(d, steps=2)
    world.hosts.act()
    pending = sum(len(f.reports) for f in d.board.pending_reports())
    assert pending
    submit = world.ledger.submit
    down = EndorseError("failed to connect to all addresses", code=grpc.StatusCode.UNAVAILABLE)
    unreachable = FabricLedger(_Down(down), [], attempts=2)  # type: ignore[arg-type]
    monkeypatch.setattr(world.ledger, "submit", unreachable.submit)
    with pytest.raises(GatewayError):
        d.flush_reports(StepReport(), force=True)
    assert sum(len(f.reports) for f in d.board.pending_reports()) == pending
    assert not (world.state / "refused.jsonl").exists()
    monkeypatch.setattr(world.ledger, "submit", submit)  # the peer is back
    step = StepReport()
    d.flush_reports(step, force=True)
    assert (step.accepted, step.refused) == (pending, 0) and not d.board.pending_reports()


@dataclass
class _Down:
    """A gateway whose peer cannot be reached: every submit fails with ``error``."""

    error: Exception

    def get_network(self, channel: str) -> _Down:
        return self

    def get_contract(self, chaincode: str) -> _Down:
        return self

    def submit_async(self, *_: object, **__: object) -> None:
        raise self.error


def test_a_host_outside_its_window_waits_and_is_reported(world: World) -> None:
    for host in ("w1", "w2"):  # NOW is a Thursday morning: a Saturday-night window is closed
        run(world.ledger.store, who(ITOPS, "admin"), host_ops.enroll_host, host,
            host_identity(ITOPS, host).cert_pem.decode(), trust=TRUST, groups=["night"],
            maintenance_window="Sat 02:00-04:00 UTC")
    d = world.dispatcher()
    plan = d.create_rollout(request(target_groups=("night",), canary=Quantity(1),
                                    waves=(), wave_timeout_seconds=10))
    assert plan.windows == {"w1": "Sat 02:00-04:00 UTC", "w2": "Sat 02:00-04:00 UTC"}
    for _ in range(15):
        d.step()
        assert d.board.order_for("w1") is None and d.board.order_for("w2") is None
        world.clock.now += 1
    assert world.status() == "PAUSED"
    waiting = plan.waves[0].hosts[0]
    assert f"outside their maintenance window: {waiting}" in world.ledger.decisions()[-1][1]


def test_rollouts_one_after_another_leave_no_state_of_the_finished_ones(world: World) -> None:
    # the leak bench/bench_dispatcher_memory.py found: every finished rollout kept its list
    # of released hosts (in memory and in each checkpoint write), and every step read every
    # plan file ever written
    d = world.dispatcher()
    for number in (1, 2, 3):
        rid = f"R-{number}"
        d.create_rollout(request(rollout_id=rid))
        world.drive(d, until={"COMPLETED"}, rollout_id=rid)
        assert world.status(rid) == "COMPLETED"
        assert rid in d.checkpoint.finished and d.checkpoint.released == {}
        assert json.loads(d.checkpoint_path.read_text())["released"] == {}
        # a finished rollout's plan is not read again: a damaged one stops nothing
        (d.plans_dir / f"{rid}.json").write_text("{not json")
    assert d.checkpoint.finished == ["R-1", "R-2", "R-3"]
    d.step()
    with pytest.raises(PlanError, match=r"R-1\.json is unreadable"):
        d.plans()  # read in full on request: the damage is named
