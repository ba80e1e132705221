"""Starting, finding and stopping the network's processes by pid file.

Every process is started in its own session (so it survives the CLI that started it), with its
output appended to ``logs/<name>.log`` and a pid file ``run/<name>.pid`` holding the pid and the
process start time read from ``/proc``. The start time makes a pid file whose pid was reused by
an unrelated process recognisable as stale. Processes are only ever signalled by the pids that
these files record.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from patchledger.common.durable import write_atomic
from patchledger.network.config import StateLayout
from patchledger.network.errors import NetworkError


class ProcState(StrEnum):
    """What a pid file says about its process."""

    RUNNING = "running"
    STOPPED = "stopped"  # no pid file
    STALE = "stale"  # a pid file whose process is gone (or whose pid now names another process)


@dataclass(frozen=True)
class ProcInfo:
    """A process's state and pid (0 when there is none)."""

    state: ProcState
    pid: int = 0


class ProcessError(NetworkError):
    """A process could not be started or did not become ready."""


#: Processes this Python process started and has not yet seen exit. Holding the Popen objects
#: lets us reap them (no zombies while a long-lived caller, such as a test session, runs) and
#: avoids "subprocess is still running" warnings when they would be garbage-collected.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live, non-zombie process; None otherwise."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # zombie or dead
        return None
    return int(fields[19])


def start(
    layout: StateLayout,
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` detached, logging to the node's log file; record and return its pid.

    Raises:
        ProcessError: the executable cannot be started.
    """
    log = layout.log_file(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            raise ProcessError(f"cannot start {name} ({argv[0]}): {exc.strerror}") from exc
    _children[proc.pid] = proc
    started = _start_time(proc.pid) or 0
    record = {"pid": proc.pid, "start_time": started, "argv": list(argv)}
    write_atomic(layout.pid_file(name), json.dumps(record), mode=0o644)
    return proc.pid


def info(layout: StateLayout, name: str) -> ProcInfo:
    """The state of the process recorded for ``name``."""
    path = layout.pid_file(name)
    try:
        record = json.loads(path.read_text())
        pid, recorded = int(record["pid"]), int(record["start_time"])
    except FileNotFoundError:
        return ProcInfo(ProcState.STOPPED)
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        return ProcInfo(ProcState.STALE)
    actual = _start_time(pid)
    if actual is None or (recorded and actual != recorded):
        return ProcInfo(ProcState.STALE, pid)
    return ProcInfo(ProcState.RUNNING, pid)


def recorded(layout: StateLayout) -> list[str]:
    """Names of every process with a pid file (whatever started it and whatever its state)."""
    return sorted(p.name.removesuffix(".pid") for p in (layout.root / "run").glob("*.pid"))


def stop(layout: StateLayout, name: str, timeout: float = 8.0) -> bool:
    """Stop the process recorded for ``name`` (SIGTERM, then SIGKILL after ``timeout``).

    Returns True if a running process was stopped. The pid file is removed in every case.
    """
    current = info(layout, name)
    stopped = False
    if current.state is ProcState.RUNNING:
        _signal(current.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(current.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(current.pid):
            _signal(current.pid, signal.SIGKILL)
            while _alive(current.pid):
                time.sleep(0.02)
        stopped = True
    layout.pid_file(name).unlink(missing_ok=True)
    return stopped


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:  # our own child: reap it
        del _children[pid]
        return False
    return _start_time(pid) is not None


def port_in_use(host: str, port: int) -> bool:
    """True if something already listens on ``host:port`` (or the port cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def wait_for_port(host: str, port: int, timeout: float, pid: int, name: str) -> None:
    """Wait until ``host:port`` accepts connections.

    Raises:
        ProcessError: the process died, or the port did not open within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise ProcessError(f"{name} exited during start-up; see its log")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise ProcessError(f"{name} did not listen on {host}:{port} within {timeout:.0f} s")
