"""Pid files: running, stopped and stale processes; stop by pid."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from patchledger.network import process
from patchledger.network.config import StateLayout


def test_start_info_stop_round_trip(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    pid = process.start(layout, "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                        {})
    assert process.info(layout, "sleeper") == process.ProcInfo(process.ProcState.RUNNING, pid)
    assert process.stop(layout, "sleeper", timeout=5)
    assert process.info(layout, "sleeper").state is process.ProcState.STOPPED
    assert "starting sleeper" in layout.log_file("sleeper").read_text()


def test_pid_file_of_a_dead_process_is_stale(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    pid = process.start(layout, "quick", [sys.executable, "-c", "pass"], {})
    while process._alive(pid):
        pass
    assert process.info(layout, "quick") == process.ProcInfo(process.ProcState.STALE, pid)
    assert not process.stop(layout, "quick")  # nothing to stop; the pid file is removed
    assert not layout.pid_file("quick").exists()


def test_pid_reused_by_another_process_is_stale(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    layout.pid_file("x").parent.mkdir(parents=True)
    # Our own pid, but with a start time that is not ours: a reused pid.
    layout.pid_file("x").write_text(json.dumps({"pid": os.getpid(),
                                                "start_time": 1, "argv": ["x"]}))
    assert process.info(layout, "x").state is process.ProcState.STALE


def test_garbled_pid_file_is_stale(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    layout.pid_file("x").parent.mkdir(parents=True)
    layout.pid_file("x").write_text("not json")
    assert process.info(layout, "x").state is process.ProcState.STALE


def test_port_probe_sees_a_listener() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert process.port_in_use("127.0.0.1", s.getsockname()[1])


def test_recorded_lists_every_pid_file(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    for name in ("b", "a"):
        layout.pid_file(name).parent.mkdir(parents=True, exist_ok=True)
        layout.pid_file(name).write_text("{}")
    assert process.recorded(layout) == ["a", "b"]
