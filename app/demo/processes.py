"""The demo's processes: the three apps, ITOps' dispatcher and the simulated fleet.

Each is a ``patchledger`` sub-command started detached by :mod:`patchledger.network.process`
(its own session, output in ``<demo>/logs/<name>.log``, pid and start time in
``<demo>/run/<name>.pid``); it is only ever stopped by the pid its file records.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from patchledger.app.demo.settings import FLEET_ORG, ORGS, DemoSettings
from patchledger.app.errors import UserError
from patchledger.network import process
from patchledger.network.errors import NetworkError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoProcess:
    """One process of the demo: its name (pid and log file) and its ``patchledger`` argv."""

    name: str
    argv: tuple[str, ...]
    port: int = 0  # the port it listens on (0: none)


def _patchledger() -> str:
    """The ``patchledger`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "patchledger"
    if not script.is_file():
        raise UserError(f"no patchledger command next to {sys.executable}: run scripts/install.sh")
    return str(script)


def app_process(settings: DemoSettings, org: str) -> DemoProcess:
    """``patchledger app serve`` of ``org`` with its configuration file."""
    config = settings.app_home(org) / "config.json"
    return DemoProcess(f"app-{org}", (_patchledger(), "app", "serve", "--org", org,
                                      "--config", str(config), "--threads", "6"),
                       settings.app_port(org))


def dispatcher_process(settings: DemoSettings) -> DemoProcess:
    """``patchledger dispatch run`` of ITOps as its dispatcher identity."""
    return DemoProcess(f"dispatch-{FLEET_ORG}", (
        _patchledger(), "dispatch", "run", "--org", FLEET_ORG,
        "--msp-dir", str(settings.operator_msp), "--state-dir", str(settings.dispatch_dir),
        "--batch-latency", "0.5", "--interval", "0.5", "--offline-after", "120"))


def fleet_process(settings: DemoSettings, failing: Sequence[str]) -> DemoProcess:
    """``patchledger fleet simulate``: the ITOps fleet, ``failing`` hosts' health failing."""
    argv = [_patchledger(), "fleet", "simulate", "--org", FLEET_ORG,
            "--msp-dir", str(settings.operator_msp), "--state-dir", str(settings.dispatch_dir),
            "--fleet-dir", str(settings.fleet_dir), "--hosts", str(settings.hosts),
            "--prefix", "demo", "--groups", "web,db", "--interval", "0.5",
            "--duration", str(30 * 24 * 3600), "--workers", "6"]
    for host_id in failing:
        argv += ["--fail-host", host_id]
    return DemoProcess(f"fleet-{FLEET_ORG}", tuple(argv))


def ensure_running(settings: DemoSettings, proc: DemoProcess, progress: Progress,
                   ready: Callable[[], bool] | None = None, timeout: float = 90.0) -> None:
    """Start ``proc`` unless its pid file names a running process; wait until it listens
    on its port (or ``ready()`` holds).

    Raises:
        UserError: its port is taken by another process, it exited, or it was not ready in
            ``timeout`` seconds (the message names its log).
    """
    ensure_all_running(settings, [proc], progress, ready, timeout)


def ensure_all_running(settings: DemoSettings, procs: Sequence[DemoProcess], progress: Progress,
                       ready: Callable[[], bool] | None = None, timeout: float = 90.0) -> None:
    """:func:`ensure_running` of each of ``procs``, started at once, then waited for.

    Raises:
        UserError: as :func:`ensure_running`, for the first that fails.
    """
    layout = settings.layout
    started: list[tuple[DemoProcess, int]] = []
    for proc in procs:
        current = process.info(layout, proc.name)
        if current.state is process.ProcState.RUNNING:
            progress(f"{proc.name} is running (pid {current.pid})")
            continue
        if proc.port and process.port_in_use(settings.host, proc.port):
            raise UserError(f"{proc.name}: port {settings.host}:{proc.port} is taken by another "
                            "process; choose other ports with PATCHLEDGER_DEMO_APP_PORT_BASE")
        env = {**_base_env(), **settings.network_env}
        started.append((proc, process.start(layout, proc.name, proc.argv, env)))
    for proc, pid in started:
        log = layout.log_file(proc.name)
        try:
            if proc.port:
                process.wait_for_port(settings.host, proc.port, timeout, pid, proc.name)
            deadline = time.monotonic() + timeout
            while ready is not None and not ready():
                if process.info(layout, proc.name).state is not process.ProcState.RUNNING:
                    raise UserError(f"{proc.name} exited during start-up; see {log}")
                if time.monotonic() > deadline:
                    raise UserError(f"{proc.name} was not ready within {timeout:.0f} s; "
                                    f"see {log}")
                time.sleep(0.3)
        except NetworkError as exc:
            raise UserError(f"{exc} ({log})") from exc
        progress(f"{proc.name} started (pid {pid}, log {log})")


def stop(settings: DemoSettings, proc: DemoProcess, progress: Progress) -> None:
    """Stop ``proc`` if its pid file names a running process (by that pid)."""
    if process.stop(settings.layout, proc.name):
        progress(f"stopped {proc.name}")


def check_alive(settings: DemoSettings, procs: Sequence[DemoProcess]) -> None:
    """Raise if one of ``procs`` is not running.

    Raises:
        UserError: naming the process and the end of its log.
    """
    for proc in procs:
        if process.info(settings.layout, proc.name).state is not process.ProcState.RUNNING:
            log = settings.layout.log_file(proc.name)
            try:
                tail = log.read_text(errors="replace").strip().splitlines()[-1][:400]
            except (OSError, IndexError):
                tail = ""
            raise UserError(f"{proc.name} is not running (see {log}): {tail}")


def _base_env() -> dict[str, str]:
    # the processes' environment: this one's, less the demo's own and the API client's
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PATCHLEDGER_DEMO_", "PATCHLEDGER_API_"))}


def demo_processes(settings: DemoSettings) -> list[str]:
    """Names of the demo's processes with a pid file, the apps last (stopped first)."""
    return process.recorded(settings.layout)


def stop_all(settings: DemoSettings, progress: Progress) -> list[str]:
    """Stop every process the demo recorded (fleet, dispatcher, then the apps), by pid."""
    names = demo_processes(settings)
    order = sorted(names, key=lambda n: (not n.startswith("fleet"),
                                         not n.startswith("dispatch"), n))
    stopped = []
    for name in order:
        if process.stop(settings.layout, name):
            stopped.append(name)
            progress(f"stopped {name}")
    return stopped


def status(settings: DemoSettings) -> list[dict[str, object]]:
    """Each expected process: name, state, pid, port."""
    expected = [f"app-{o}" for o in ORGS] + [f"dispatch-{FLEET_ORG}", f"fleet-{FLEET_ORG}"]
    rows: list[dict[str, object]] = []
    for name in expected + [n for n in demo_processes(settings) if n not in expected]:
        info = process.info(settings.layout, name)
        org = name.removeprefix("app-")
        rows.append({"name": name, "state": info.state.value, "pid": info.pid,
                     "url": settings.app_url(org) if org in ORGS else ""})
    return rows


def log_has(settings: DemoSettings, name: str, text: str) -> bool:
    """Whether the process's log holds ``text`` since its last start."""
    log = settings.layout.log_file(name)
    try:
        content = log.read_text(errors="replace")
    except OSError:
        return False
    return text in content.rsplit("==== ", 1)[-1]


def read_json_lines(settings: DemoSettings, name: str) -> list[dict[str, object]]:
    """The JSON-object lines of the process's log since its last start."""
    log = settings.layout.log_file(name)
    try:
        tail = log.read_text(errors="replace").rsplit("==== ", 1)[-1]
    except OSError:
        return []
    out = []
    for line in tail.splitlines():
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
    return out
