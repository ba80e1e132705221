"""The fleet simulator's delivery of reports when its relay fails: one simulated host (the real
agent code: attestation verified, file tree applied, reports signed) against a ledger run by
the lifecycle core, through a relay that fails polls and report deliveries on demand. Every
report reaches the ledger once, and the host never runs its order twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from patchledger.agent.config import AgentConfig
from patchledger.app.dispatch.board import Order
from patchledger.app.fleet.reconcile import host_truth
from patchledger.app.fleet.simulator import Fleet, HostSpec, SimulatedHost, artifact_of
from patchledger.chaincode.lifecycle.ledger import MemoryStore
from patchledger.chaincode.lifecycle.ops import deployments
from patchledger.chaincode.lifecycle.queries import get_record
from tests.unit.agent.attestation_support import HOST, App
from tests.unit.agent.attestation_support import ledger as attested_ledger
from tests.unit.lifecycle.lifecycle_support import NOW, TRUST, run

ARTIFACT = artifact_of({"VERSION": b"P-1\n"})


@dataclass
class FlakyRelay:
    """A relay over the core's ledger; ``down_polls``/``down_reports`` calls fail first."""

    store: MemoryStore
    down_polls: int = 0
    down_reports: int = 0
    order: Order | None = None
    taken: list[dict[str, Any]] = field(default_factory=list)
    results: list[str] = field(default_factory=list)

    def poll(self, host_id: str) -> Order | None:
        if self.down_polls:
            self.down_polls -= 1
            raise ConnectionRefusedError("the app is down")
        return self.order

    def download(self, order: Order) -> bytes:
        return ARTIFACT

    def attest(self, host_id: str, rollout_id: str, nonce: str) -> Mapping[str, Any]:
        return App(self.store)(host_id, rollout_id, nonce)

    def report(self, reports: Sequence[Mapping[str, Any]]) -> None:
        if self.down_reports:
            self.down_reports -= 1
            raise OSError(28, "No space left on device", "/board/inbox")
        self.taken.extend(dict(r) for r in reports)
        batch = run(self.store, HOST, deployments.report_deployments, [dict(r) for r in reports])
        self.results.extend("accepted" if r.accepted else str(r.error_type)
                            for r in batch.results)

    def flush_seen(self) -> None:
        pass


def _host(tmp_path: Path) -> SimulatedHost:
    config = AgentConfig(host_id="h1", target=tmp_path / "h1" / "target" / "app",
                         state_dir=tmp_path / "h1" / "agent")
    return SimulatedHost(HostSpec("h1"), config, HOST.key)


def _fleet(relay: FlakyRelay, host: SimulatedHost) -> Fleet:
    return Fleet([host], relay, TRUST, workers=1, clock=lambda: NOW)


def _setup(tmp_path: Path, *, down_polls: int = 0, down_reports: int = 0
           ) -> tuple[FlakyRelay, SimulatedHost, MemoryStore]:
    store = attested_ledger(ARTIFACT)
    relay = FlakyRelay(store, down_polls, down_reports)
    relay.order = Order("apply", "R-1", "P-1", "0" * 64)
    return relay, _host(tmp_path), store


@pytest.mark.parametrize("parallel_polls", [False, True])
def test_a_failed_poll_is_an_error_of_the_tick_and_retried(tmp_path: Path,
                                                           parallel_polls: bool) -> None:
    relay, host, store = _setup(tmp_path, down_polls=1)
    fleet = _fleet(relay, host)
    fleet.parallel_polls = parallel_polls
    assert fleet.tick() == {"ERROR": 1}  # before: the exception ended the whole tick
    assert fleet.tick() == {"VERIFIED": 1}
    assert get_record(store, "Deployment", "R-1", "h1").to_dict()["status"] == "VERIFIED"


def test_reports_the_relay_cannot_take_stay_queued_and_go_once_it_can(tmp_path: Path) -> None:
    relay, host, store = _setup(tmp_path, down_reports=2)
    fleet = _fleet(relay, host)
    assert fleet.tick() == {"VERIFIED": 1}  # applied; the delivery failed, the report queued
    assert relay.taken == [] and len(host.outbox.pending()) == 1
    assert host_truth("h1", host.config.state_dir, "R-1").queued == ("VERIFIED",)
    assert fleet.tick() == {"ERROR": 1}  # the second delivery fails too: nothing runs again
    assert fleet.tick() == {}
    assert [r["report"]["sequence"] for r in relay.taken] == [1]
    assert relay.results == ["accepted"] and host.outbox.pending() == []
    assert get_record(store, "Deployment", "R-1", "h1").to_dict()["status"] == "VERIFIED"
    assert fleet.outcomes["VERIFIED"] == 1  # one run in all


def test_a_restart_between_queueing_and_finishing_does_not_run_the_order_again(
    tmp_path: Path,
) -> None:
    relay, host, _ = _setup(tmp_path, down_reports=1)
    _fleet(relay, host).tick()
    host.done_file.unlink()  # as if the simulator died after queueing, before finish()
    again = _host(tmp_path)
    again.load_done()
    fleet = _fleet(relay, again)
    assert fleet.tick() == {}  # the queued report counts as finished: delivered, no new run
    assert [r["report"]["sequence"] for r in relay.taken] == [1]
    assert ("apply", "R-1") in again.done
    truth = host_truth("h1", again.config.state_dir, "R-1")
    assert (truth.finished, truth.installed, truth.queued, truth.last_sequence) == \
        (True, True, (), 1)
