"""Where a rollout bench's time goes: CPU seconds per component of the network (peers,
orderers, chaincode servers, CAs, the bench process itself: agents, relay and dispatcher) over
a window, read from ``/proc``, and a sampling profile of the bench process's threads (which
function of the project each thread is in, sampled every few milliseconds).

Linux only (``/proc``); used by ``bench/bench_rollout.py --profile``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

__all__ = ["CpuMeter", "Sampler"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, ()))
    return out


def _component(pid: int) -> str:
    if pid == os.getpid():
        return "bench process (agents, relay, dispatcher, clients)"
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(a.decode(errors="replace") for a in argv)
    for word, name in (("orderer", "orderers"), ("peer", "peers"), ("fabric-ca", "CAs"),
                       ("chaincode", "chaincode servers")):
        if word in text:
            return name
    return Path(argv[0].decode(errors="replace")).name or "?"


def _cpu(pid: int) -> float:
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter:
    """CPU seconds per component between :meth:`start` and :meth:`stop` (processes of this
    process's tree; a process that exited in between counts up to its last reading)."""

    def __init__(self) -> None:
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self.elapsed = 0.0
        self._t = 0.0

    def _read(self) -> dict[int, float]:
        out = {}
        for pid in _descendants(os.getpid()):
            if pid not in self._names:
                self._names[pid] = _component(pid)
            out[pid] = _cpu(pid)
        return out

    def start(self) -> None:
        """Take the first reading."""
        self._start = self._read()
        self._t = time.monotonic()

    def stop(self) -> dict[str, float]:
        """CPU seconds per component since :meth:`start`."""
        self.elapsed = time.monotonic() - self._t
        end = self._read()
        totals: dict[str, float] = {}
        for pid, seconds in end.items():
            name = self._names[pid]
            totals[name] = totals.get(name, 0.0) + seconds - self._start.get(pid, 0.0)
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


class Sampler(threading.Thread):
    """Samples every thread's stack of this process every ``period`` seconds and counts the
    innermost frame of the project (``patchledger``), or of the library it waits in."""

    def __init__(self, period: float = 0.005) -> None:
        super().__init__(daemon=True, name="sampler")
        self.period = period
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = threading.get_ident()
        while not self._stop_event.wait(self.period):
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                self.samples += 1
                self.counts[_where(frame)] += 1

    def stop(self) -> None:
        """End sampling."""
        self._stop_event.set()
        self.join(5)


def _where(frame: object) -> str:
    f = frame
    inner = ""
    ours = ""
    while f is not None:
        code = f.f_code  # type: ignore[attr-defined]
        name = f"{Path(code.co_filename).name}:{code.co_name}"
        if not inner:
            inner = name
        path = code.co_filename
        if ("/patchledger/" in path or "/wt/" in path) and "/bench/" not in path \
                and "/.venv/" not in path:
            ours = name
            break
        f = f.f_back  # type: ignore[attr-defined]
    if inner.startswith(("threading.py:wait", "threading.py:_wait_for_tstate_lock",
                         "queue.py:get", "thread.py:_worker")) and not ours:
        return "idle (waiting for work)"
    return f"{ours} -> {inner}" if ours and ours != inner else (ours or inner)
