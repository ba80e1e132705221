"""The live projector, catch-up and rebuild over real block delivery (the Fabric client's
Deliver stream from the in-process fake peer), and the read-model lag."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine

from patchledger.app.fabric.errors import EventsError
from patchledger.app.fabric.gateway import Gateway
from patchledger.app.readmodel.projection import ApplyResult
from patchledger.app.readmodel.projector import (
    Projector,
    ProjectorSettings,
    catch_up,
    lag,
    next_block,
    rebuild,
)
from tests.support.fabric.fake_gateway import FakeGateway, ScriptedFailure
from tests.support.readmodel import SimulatedLedger
from tests.unit.readmodel.conftest import CHANNEL
from tests.unit.readmodel.readmodel_support import (
    current_of,
    expected_current,
    run_in_thread,
    versions_of,
)


def _add_blocks(fake: FakeGateway, ledger: SimulatedLedger, count: int, start: int) -> None:
    for i in range(start, start + count):
        if i == 0:
            ledger.init_ledger()
        ledger.record_vulnerability(f"CVE-2025-{i:04d}")
        if i % 3 == 2:
            ledger.assess(f"CVE-2025-{i - 1:04d}", "MITIGATED")
        fake.add_block(*ledger.take())


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_live_projection_stops_mid_stream_and_resumes(engine: Engine, fake: FakeGateway,
                                                      gateway: Gateway,
                                                      ledger: SimulatedLedger) -> None:
    network = gateway.get_network(CHANNEL)
    batches: list[ApplyResult] = []
    _add_blocks(fake, ledger, 5, 0)
    projector = Projector(engine, network, ProjectorSettings(batch_blocks=2),
                          on_batch=batches.append)
    thread, errors = run_in_thread(projector)
    _wait(lambda: next_block(engine) == fake.height)
    _add_blocks(fake, ledger, 3, 5)  # committed while the projector streams
    _wait(lambda: next_block(engine) == fake.height)
    projector.stop()
    thread.join(5)
    assert not thread.is_alive() and not errors
    assert max(b.blocks for b in batches) <= 2
    _add_blocks(fake, ledger, 4, 8)  # committed while it is down
    assert next_block(engine) < fake.height
    again = Projector(engine, network)
    thread, errors = run_in_thread(again)
    _wait(lambda: next_block(engine) == fake.height)
    again.stop()
    thread.join(5)
    assert not errors
    assert versions_of(engine) == ledger.history
    assert current_of(engine) == expected_current(ledger.history)


def test_a_failed_stream_raises_and_keeps_what_was_projected(
        engine: Engine, fake: FakeGateway, gateway: Gateway, ledger: SimulatedLedger) -> None:
    import grpc

    _add_blocks(fake, ledger, 3, 0)
    catch_up(engine, gateway.get_network(CHANNEL))
    fake.fail_next("deliver", ScriptedFailure(grpc.StatusCode.UNAVAILABLE, "peer restarting"))
    projector = Projector(engine, gateway.get_network(CHANNEL))
    with pytest.raises(EventsError, match="peer restarting"):
        projector.run()
    assert next_block(engine) == fake.height


def test_catch_up_and_rebuild_equal_the_ledger(engine: Engine, fake: FakeGateway,
                                              gateway: Gateway,
                                              ledger: SimulatedLedger) -> None:
    network = gateway.get_network(CHANNEL)
    _add_blocks(fake, ledger, 6, 0)
    assert catch_up(engine, network, ProjectorSettings(batch_blocks=4)) == fake.height
    assert versions_of(engine) == ledger.history
    _add_blocks(fake, ledger, 2, 6)
    assert catch_up(engine, network) == fake.height
    assert catch_up(engine, network) == fake.height  # up to date: returns at once
    before = versions_of(engine)
    assert rebuild(engine, network, ProjectorSettings(batch_blocks=3)) == fake.height
    assert versions_of(engine) == before == ledger.history
    assert current_of(engine) == expected_current(ledger.history)


def test_lag(engine: Engine, fake: FakeGateway, gateway: Gateway,
             ledger: SimulatedLedger) -> None:
    _add_blocks(fake, ledger, 2, 0)
    assert lag(engine, fake.height).behind == fake.height
    catch_up(engine, gateway.get_network(CHANNEL))
    now = lag(engine, fake.height)
    assert (now.projected, now.behind) == (fake.height, 0)
    assert lag(engine, None).behind is None
