"""Storage faults under the agent daemon (its state directory on a small tmpfs: full, or
read-only) against the local test app over mutual TLS (tests/unit/agent/app_server.py):

- the disk is full before the cycle: the cycle fails (logged, retried with back-off) with an
  error naming the file; read-only: the daemon refuses to run (``ConfigError`` naming the
  state directory and its lock; ``patchledger-agent`` exits 2). Either way nothing is
  applied, the state directory is byte for byte as it was, nothing is sent; once the space
  (or write access) is back the daemon applies and reports, once;
- the disk fills during the change (from the health check: after the files were applied,
  before the commit is recorded): the cycle fails naming the file, the target holds a whole
  tree (the new one: the change was committed), no report is sent; once space is back the
  next cycle verifies again, re-applies the same patch and sends exactly one report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchledger.agent.daemon import Agent
from patchledger.agent.errors import ConfigError
from tests.reliability.storage import FAULTS, FILLER, restore, small_tmpfs, snapshot
from tests.unit.agent.test_daemon import ARTIFACT, World, world  # noqa: F401 (fixture)

pytestmark = pytest.mark.reliability


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "fs") as mounted:
        yield mounted


def _agent(world: World, fs: Path, **settings: object) -> Agent:  # noqa: F811
    return world.agent(state_dir=fs / "state", **settings)


def _fails_naming_a_state_file(agent: Agent, fs: Path, caplog: pytest.LogCaptureFixture
                               ) -> str:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="patchledger.agent"):
        assert agent.run(threading.Event(), once=True) == 1
    failed = [r.getMessage() for r in caplog.records if "cycle failed" in r.getMessage()]
    assert failed, [r.getMessage() for r in caplog.records]
    assert str(fs / "state") in failed[-1], failed[-1]
    return failed[-1]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_full_or_read_only_state_directory_fails_the_cycle_and_the_daemon_resumes(
    world: World, fs: Path, fault: str, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    first = _agent(world, fs)
    assert first.run(threading.Event(), once=True) == 0  # enrolled state: inventory reported
    world.publish(ARTIFACT)
    before = snapshot(fs)
    FAULTS[fault](fs)
    agent = _agent(world, fs)
    if fault == "read-only":  # not even the lock can be taken: the daemon refuses to run
        with pytest.raises(ConfigError) as caught:
            agent.run(threading.Event(), once=True)
        message = str(caught.value)
        assert str(fs / "state" / "agent.lock") in message and "Read-only" in message
    else:  # the lock is taken, the cycle fails writing its state: retried with back-off
        message = _fails_naming_a_state_file(agent, fs, caplog)
        assert "No space left on device" in message
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"1.0\n"  # nothing applied
    assert snapshot(fs) == before  # nothing corrupted, no temporary file left
    assert world.server.state.reports == {}
    restore(fs, fault)
    resumed = _agent(world, fs)
    assert resumed.run(threading.Event(), once=True) == 0
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"2.0\n"
    assert len(world.server.state.reports) == 1 and resumed.outbox.pending() == []
    assert resumed.state.settled == {"R-1/P-1": "APPLIED"}  # no health check configured


def test_a_disk_filling_during_the_change_leaves_a_whole_tree_and_one_report(
    world: World, fs: Path, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    first = _agent(world, fs)
    assert first.run(threading.Event(), once=True) == 0
    world.publish(ARTIFACT)
    # the health check fills the state directory's disk, then passes: the change is
    # committed, the anti-rollback record and the report cannot be written
    filler = fs / FILLER
    fill_then_pass = ("sh", "-c", f"dd if=/dev/zero of={filler} bs=4096 2>/dev/null; true")
    agent = _agent(world, fs, health_command=fill_then_pass)
    _fails_naming_a_state_file(agent, fs, caplog)
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"2.0\n"  # whole: the new tree
    assert world.server.state.reports == {} and agent.outbox.pending() == []
    filler.unlink()
    resumed = _agent(world, fs, health_command=("true",))
    assert resumed.run(threading.Event(), once=True) == 0
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"2.0\n"
    (stored,) = world.server.state.reports.values()
    assert stored["report"]["outcome"] == "VERIFIED"
    assert resumed.outbox.pending() == [] and resumed.state.settled == {"R-1/P-1": "VERIFIED"}


