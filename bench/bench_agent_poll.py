"""Many agents polling one org app over mutual TLS (issue 17, "Load"): latency of the agent
protocol's poll and desired-state requests, errors, and the app's memory over the run.

The org app (``create_app``: no peer needed for polls) runs in its own process, served over
HTTPS by werkzeug (a thread per connection) behind the proxy layer of
tests/support/agentlab.py, which passes the handshake's verified client certificate in
``X-Client-Cert``, as the TLS-terminating proxy of docs/agent.md does. The app checks each
certificate again (issued by the organization's root, ``role=host``, ``host_id``), the nonce
(no replay) and the time, reads the host's order from the dispatcher's board and notes the
poll.

The agents are lightweight protocol clients in this process (asyncio): each has its own host
certificate (the organization CA's, ``role=host``, its ``host_id``) as TLS client
certificate, opens a new TLS connection per request as the real agent does, sends a fresh
nonce and the time, checks the nonce echo, and asks ``/desired-state`` (with ``If-None-Match``
once it holds an ETag) only when the poll's ETag differs from the one it holds. A tenth of
the hosts have an order on the board, and the orders change once mid-run (every one of them
fetches its new desired state, then 304s). Polls are spread by a jittered interval (±20 %).

Every ``--sample`` seconds the app process's resident memory (``VmRSS``) is read; the table
gives it at the start and end of the run and its maximum, and the trend: the mean of the
last third of the samples over the mean of the second third (about 1.0 when memory is
bounded; a leak per request shows as growth).

    .venv/bin/python bench/bench_agent_poll.py [--agents 1000] [--interval 10]
        [--duration 120] [--port 30500] [--sample 2] [--smoke]

``--smoke``: 50 agents for 8 s at a 1 s interval (shows that the bench still works).
Exit status 0 when every request succeeded, 1 when there were errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.support.chaincode_runtime import IssuedCertificate, make_certificate

MSP = "ITOpsMSP"
PREFIX = "/api/v1/agent"
PORT = 30500


@dataclass
class Result:
    """What one run measured."""

    agents: int
    interval: float
    seconds: float
    latencies: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    rss_kib: list[int] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def rss_trend(self) -> float:
        """Mean RSS of the last third of the samples over that of the second third."""
        return rss_trend(self.rss_kib)


def rss_trend(samples: Sequence[int]) -> float:
    """Mean of the last third of ``samples`` over that of the second third (about 1.0 when
    memory is bounded; ``nan`` with fewer than three samples)."""
    third = len(samples) // 3
    if third < 1:
        return float("nan")
    return statistics.mean(samples[2 * third:]) / statistics.mean(samples[third:2 * third])


def table(r: Result) -> str:
    mib = [k / 1024 for k in r.rss_kib] or [float("nan")]
    errors = sum(r.errors.values())
    lines = ["| agents | interval s | seconds | requests | req/s | errors | p50 ms | p99 ms "
             "| max ms | app RSS start MiB | end MiB | max MiB | RSS trend |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| {r.agents} | {r.interval:g} | {r.seconds:.0f} | {r.requests} | "
             f"{r.requests / r.seconds:.1f} | {errors} | {r.percentile(50) * 1000:.1f} | "
             f"{r.percentile(99) * 1000:.1f} | {max(r.latencies or [0]) * 1000:.1f} | "
             f"{mib[0]:.1f} | {mib[-1]:.1f} | {max(mib):.1f} | {r.rss_trend:.3f} |"]
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(r.kinds.items()))
    lines.append(f"\nrequests by answer: {detail}")
    if errors:
        lines.append("errors: " + ", ".join(f"{k}: {v}" for k, v in r.errors.most_common(5)))
    return "\n".join(lines)


# ------------------------------------------------------------------------------ the PKI


@dataclass(frozen=True)
class Pki:
    home: Path
    org_ca: IssuedCertificate

    @property
    def tls_ca(self) -> Path:
        return self.home / "tls" / "tls-ca.pem"

    def host_files(self, host_id: str) -> tuple[Path, Path]:
        return self.home / "hosts" / f"{host_id}.pem", self.home / "hosts" / f"{host_id}.key"


def make_pki(home: Path, host_ids: Sequence[str]) -> Pki:
    """The organization CA (its MSP directory for the app's trust), a TLS server certificate
    for 127.0.0.1, and a host certificate per host id."""
    org_ca = make_certificate("ca.itops", is_ca=True)
    (home / "msp" / "cacerts").mkdir(parents=True)
    (home / "msp" / "cacerts" / "ca.pem").write_bytes(org_ca.cert_pem)
    tls_ca = make_certificate("tls-ca.itops", is_ca=True)
    server = make_certificate("app.itops", issuer=tls_ca, sans=["127.0.0.1", "localhost"])
    (home / "tls").mkdir()
    (home / "tls" / "tls-ca.pem").write_bytes(tls_ca.cert_pem)
    (home / "tls" / "server.pem").write_bytes(server.cert_pem)
    (home / "tls" / "server.key").write_bytes(server.key_pem)
    (home / "hosts").mkdir()
    pki = Pki(home, org_ca)
    for host_id in host_ids:
        cert = make_certificate(host_id, issuer=org_ca, attrs={"role": "host",
                                                              "host_id": host_id})
        cert_file, key_file = pki.host_files(host_id)
        cert_file.write_bytes(cert.cert_pem)
        key_file.write_bytes(cert.key_pem)
    return pki


def publish_orders(home: Path, host_ids: Sequence[str], generation: int) -> None:
    """Orders for a tenth of the hosts (``generation`` changes the rollout, hence the ETags)."""
    from patchledger.app.dispatch.board import Board, Order

    digest = f"{generation:064x}"
    Board(home / "board").publish_orders({
        h: Order("apply", f"R-{generation}", f"P-{generation}", digest)
        for h in host_ids[::10]})


# ----------------------------------------------------------------------------- the app


def serve(home: Path, port: int) -> None:
    """The app process: ``create_app`` over HTTPS with mutual TLS, until SIGTERM."""
    from dataclasses import replace

    from werkzeug.serving import WSGIRequestHandler

    from patchledger.app.web.config import AppConfig, SecurityConfig
    from patchledger.app.web.factory import create_app
    from tests.support.agentlab import CERT_HEADER, make_tls_server, proxy

    config = AppConfig(organization="itops", msp_id=MSP,
                       database_url=f"sqlite:///{home / 'app.db'}",
                       artifact_dir=home / "artifacts", wallet_dir=home / "wallet",
                       wallet_passphrase="bench wallet", secret_key="bench session key")
    config = replace(config, security=SecurityConfig(argon2_time_cost=1, argon2_memory_kib=64),
                     trust_msp_dirs=((MSP, home / "msp"),), agent_cert_header=CERT_HEADER,
                     dispatch_dir=home / "board", agent_poll_interval=10, run_projector=False)
    app = create_app(config)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(home / "tls" / "server.pem"), str(home / "tls" / "server.key"))
    context.load_verify_locations(cafile=str(home / "msp" / "cacerts" / "ca.pem"))
    context.verify_mode = ssl.CERT_OPTIONAL

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_tls_server(proxy(app), "127.0.0.1", port, context, request_handler=Quiet)
    server.socket.listen(2048)

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    server.serve_forever()


def rss_kib(pid: int) -> int:
    """The resident memory of process ``pid`` (``VmRSS``, KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


# --------------------------------------------------------------------------- the agents


async def _request(context: ssl.SSLContext, port: int, path: str,
                   headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                   server_hostname="127.0.0.1")
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
                     "Connection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    header_block, _, body = raw.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    answer = {k.strip().lower(): v.strip() for k, v in
              (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return status, answer, body


@dataclass
class Agent:
    host_id: str
    context: ssl.SSLContext
    etag: str = ""


async def _agent(agent: Agent, port: int, interval: float, stop_at: float,
                 result: Result, rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(0, interval))
    while time.monotonic() < stop_at:
        await _cycle(agent, port, result)
        await asyncio.sleep(interval * rng.uniform(0.8, 1.2))


async def _timed(agent: Agent, port: int, path: str, result: Result,
                 extra: dict[str, str] | None = None
                 ) -> tuple[int, dict[str, str], bytes] | None:
    nonce = secrets.token_hex(16)
    headers = {"X-Patchledger-Nonce": nonce, "X-Patchledger-Time": str(int(time.time())),
               **(extra or {})}
    started = time.monotonic()
    try:
        status, answer, body = await asyncio.wait_for(
            _request(agent.context, port, path, headers), timeout=30)
    except (OSError, ssl.SSLError, TimeoutError, ValueError, IndexError) as exc:
        result.errors[f"{path.rsplit('/', 1)[-1]}: {type(exc).__name__}"] += 1
        return None
    result.latencies.append(time.monotonic() - started)
    kind = f"{path.rsplit('/', 1)[-1]} {status}"
    result.kinds[kind] += 1
    if status not in (200, 304):
        result.errors[kind] += 1
        return None
    if status == 200 and answer.get("x-patchledger-nonce") != nonce:
        result.errors[f"{kind} without the nonce echo"] += 1
        return None
    return status, answer, body


async def _cycle(agent: Agent, port: int, result: Result) -> None:
    polled = await _timed(agent, port, f"{PREFIX}/poll", result)
    if polled is None:
        return
    etag = json.loads(polled[2])["etag"]
    if etag == agent.etag:
        return
    extra = {"If-None-Match": agent.etag} if agent.etag else {}
    desired = await _timed(agent, port, f"{PREFIX}/desired-state", result, extra)
    if desired is not None:
        agent.etag = desired[1].get("etag", "")


def _context(pki: Pki, host_id: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.tls_ca))
    cert_file, key_file = pki.host_files(host_id)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


async def _drive(pki: Pki, host_ids: Sequence[str], port: int, interval: float,
                 duration: float, result: Result, pid: int, sample: float,
                 change_at: float) -> None:
    rng = random.Random(17)
    agents = [Agent(h, _context(pki, h)) for h in host_ids]
    started = time.monotonic()
    stop_at = started + duration
    tasks = [asyncio.create_task(_agent(a, port, interval, stop_at, result, rng))
             for a in agents]
    changed = False
    while time.monotonic() < stop_at:
        result.rss_kib.append(rss_kib(pid))
        if not changed and time.monotonic() - started >= change_at:
            publish_orders(pki.home, host_ids, 2)  # a new rollout: the ETags change
            changed = True
        await asyncio.sleep(sample)
    await asyncio.gather(*tasks)
    result.rss_kib.append(rss_kib(pid))


def run_load(*, agents: int, interval: float, duration: float, port: int,
             sample: float = 2.0, home: Path | None = None) -> Result:
    """Start the app process, drive ``agents`` protocol clients for ``duration`` seconds,
    stop the app; what was measured.

    Raises:
        RuntimeError: the app process did not start.
    """
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        base = home or Path(tmp)
        host_ids = [f"load-{i:05d}" for i in range(agents)]
        pki = make_pki(base, host_ids)
        publish_orders(base, host_ids, 1)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log_path = base / "app.log"
        with log_path.open("wb") as log_file:
            app = subprocess.Popen([sys.executable, __file__, "--serve", str(base),
                                    "--port", str(port)], stdout=subprocess.PIPE,
                                   stderr=log_file, text=True, env=env)
        try:
            assert app.stdout is not None
            line = app.stdout.readline()
            app.stdout.close()
            if line.strip() != "ready":
                app.kill()
                app.wait()
                raise RuntimeError(f"the app did not start: {line}"
                                   f"{log_path.read_text(errors='replace')[-2000:]}")
            result = Result(agents, interval, duration)
            began = time.monotonic()
            asyncio.run(_drive(pki, host_ids, port, interval, duration, result, app.pid,
                               sample, change_at=duration / 2))
            result.seconds = time.monotonic() - began
            return result
        finally:
            app.terminate()
            try:
                app.wait(timeout=20)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0,
                        help="seconds between one agent's polls (jittered ±20 %%)")
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--sample", type=float, default=2.0, help="RSS sampling period, s")
    parser.add_argument("--smoke", action="store_true", help="50 agents, 8 s, 1 s interval")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.smoke:
        args.agents, args.duration, args.interval, args.sample = 50, 8.0, 1.0, 1.0
    result = run_load(agents=args.agents, interval=args.interval, duration=args.duration,
                      port=args.port, sample=args.sample)
    print(table(result))
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
