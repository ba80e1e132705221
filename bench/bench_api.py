"""REST API benchmark: p50 / p95 / max latency of the /api/v1 list and detail endpoints over
real HTTP, against the app served by ``patchledger app serve`` (waitress, the production WSGI
server), with 10,000 hosts, 1,000 vulnerabilities, 100,000 findings and 100 rollouts (20,000
deployments) in the read model.

The read model is synthesized (tests/support/ui.py's estate, the same seeding as
bench/bench_ui.py) into a SQLite file (default) or a throw-away PostgreSQL (``--postgres``);
the app runs in its own process with the bench's configuration file and no network; the bench
is the HTTP client (one keep-alive connection, sequential requests, an API token of an
auditor). The first request of each endpoint is not counted (it warms caches). Run on purpose:

    .venv/bin/python bench/bench_api.py [--smoke] [--port 21000] [--runs 50]
        [--hosts 10000] [--vulns 1000] [--findings-per-vuln 100] [--rollouts 100]
        [--database-url URL | --postgres]

Goal (issue 12): p95 under 100 ms for every list and detail endpoint. Exit status 1 when an
endpoint answers other than 200 (or the server does not start); the goal is reported, not
enforced (figures depend on the machine's load).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from patchledger.app.db import open_engine
from patchledger.app.web import auth
from patchledger.app.web.config import SecurityConfig
from patchledger.app.web.db import session_factory

# Run as a file (bench/<name>.py) the repository root is not on sys.path; the synthesized read
# model this bench uses lives in tests/support/ (it is not shipped in the wheel).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from bench.bench_readmodel import database
from tests.support.ui import seed

PREFIX = "/api/v1"
#: The endpoints measured; ``{cursor:PATH}`` is replaced by the next_cursor of PATH's first
#: page (a page deep in the list), ``{block}`` and ``{tx}`` by a block and a transaction of
#: the read model, ``{host}`` and ``{rollout}`` by a host and a rollout in the middle.
ENDPOINTS = [
    "/vulnerabilities",
    "/vulnerabilities?limit=500",
    "/vulnerabilities?state=OPEN&severity=critical",
    "/vulnerabilities?known_exploited=true&sort=cvss_score&descending=true",
    "/vulnerabilities/CVE-2026-00010",
    "/vulnerabilities/CVE-2026-00010/findings",
    "/vulnerabilities/CVE-2026-00010/findings?limit=500",
    "/patches",
    "/patches?status=APPROVED&sort=updated_at&descending=true",
    "/patches/p-0001",
    "/approvals",
    "/approvals/p-0000/SecOpsMSP",
    "/hosts",
    "/hosts?cursor={cursor:/hosts?limit=500&sort=updated_at}&limit=500&sort=updated_at",
    "/hosts?owner_msp=ITOpsMSP&status=ENROLLED",
    "/hosts?sort=last_report_sequence&descending=true",
    "/hosts/{host}",
    "/rollouts",
    "/rollouts?status=RUNNING&sort=updated_at",
    "/rollouts/{rollout}",
    "/rollouts/{rollout}/progress",
    "/deployments",
    "/deployments?rollout_id={rollout}&status=VERIFIED",
    "/deployments?host_id={host}",
    "/deployments/{rollout}/host-00001",
    "/exceptions",
    "/exceptions?status=GRANTED&vuln_id=CVE-2026-00007",
    "/exceptions/CVE-2026-00007/ex-0001",
    "/policies",
    "/policies/default",
    "/policy-changes",
    "/revocations",
    "/audit/history/Host/{host}",
    "/audit/history/Vulnerability/CVE-2026-00010",
    "/audit/blocks",
    "/audit/blocks/{block}",
    "/audit/transactions",
    "/audit/transactions?function=ReportDeployments",
    "/audit/transactions?creator_msp=ITOpsMSP&valid=true",
    "/audit/transactions/{tx}",
    "/feeds",
    "/feeds/imports",
]


class Client:
    """One keep-alive HTTP/1.1 connection to the app, authenticated by a bearer token."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path``; (status, body). A dropped connection is reopened once."""
        for attempt in (0, 1):
            try:
                self.conn.request("GET", path, headers=self.headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")


@contextlib.contextmanager
def served(home: Path, url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``patchledger app serve`` of the SecOps app on ``url`` at ``port`` (no network, no
    projector), stopped (SIGTERM, then SIGKILL) at the end."""
    config = home / "app.json"
    config.write_text(json.dumps({"org": "secops", "home": str(home), "database_url": url,
                                  "secret_key": "bench", "wallet_passphrase": "bench",
                                  "projector": "0", "host": "127.0.0.1", "port": port}))
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("patchledger")), "app", "serve", "--org", "secops",
         "--config", str(config), "--no-network", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app serve exited {proc.returncode}: "
                                   f"{(home / 'serve.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", f"{PREFIX}/health")
                if conn.getresponse().status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"app serve did not answer on port {port} in 120 s")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _token(url: str) -> str:
    engine = open_engine(url)
    try:
        with session_factory(engine)() as db:
            security = SecurityConfig(argon2_time_cost=1, argon2_memory_kib=8)
            user = auth.create_user(db, security, "bench", "auditor", "bench password 1").user
            return auth.create_token(db, user, "bench").secret
    finally:
        engine.dispose()


def _resolve(client: Client, path: str, args: argparse.Namespace) -> str:
    """``path`` with its placeholders replaced (see :data:`ENDPOINTS`)."""
    path = path.replace("{host}", f"host-{args.hosts // 2 + 1:05d}").replace(
        "{rollout}", f"ro-{args.rollouts // 2:03d}")
    if "{cursor:" in path:
        start = path.index("{cursor:")
        end = path.index("}", start)
        status, body = client.get(PREFIX + path[start + 8:end])
        if status != 200:
            raise RuntimeError(f"{path[start + 8:end]}: HTTP {status} {body[:300]!r}")
        path = path[:start] + json.loads(body)["next_cursor"] + path[end + 1:]
    if "{block}" in path or "{tx}" in path:
        newest = json.loads(client.get(f"{PREFIX}/audit/blocks?limit=1")[1])["items"][0]
        number = int(newest["number"]) // 2
        block = json.loads(client.get(f"{PREFIX}/audit/blocks/{number}")[1])
        tx = block["transactions"][0]["tx_id"]
        path = path.replace("{block}", str(number)).replace("{tx}", tx)
    return path


def measure(client: Client, path: str, runs: int) -> tuple[list[float], int]:
    """``runs`` timed GETs of ``path`` after one untimed; (milliseconds, body bytes).

    Raises:
        RuntimeError: an answer other than 200.
    """
    times: list[float] = []
    size = 0
    for i in range(runs + 1):
        t0 = time.perf_counter()
        status, body = client.get(PREFIX + path)
        elapsed = (time.perf_counter() - t0) * 1000
        if status != 200:
            raise RuntimeError(f"GET {PREFIX}{path}: HTTP {status} {body[:300]!r}")
        if i:
            times.append(elapsed)
        size = len(body)
    return sorted(times), size


def _p95(times: list[float]) -> float:
    return times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--vulns", type=int, default=1_000)
    parser.add_argument("--findings-per-vuln", type=int, default=100)
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--exceptions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--port", type=int, default=21000, help="the app's listen port")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--postgres", action="store_true",
                        help="start a throw-away PostgreSQL (tests/integration/postgres_support)")
    parser.add_argument("--smoke", action="store_true",
                        help="1,000 hosts, 100 vulnerabilities, 20 rollouts, 3 runs each")
    args = parser.parse_args(argv)
    if args.smoke:
        args.hosts, args.vulns, args.rollouts, args.findings_per_vuln = 1_000, 100, 20, 10
        args.exceptions, args.runs = 20, 3
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp, \
            database(args.database_url, args.postgres, "bench_api") as (url, backend):
        home = Path(tmp)
        engine = open_engine(url)
        try:
            summary = seed(engine, hosts=args.hosts, vulns=args.vulns, rollouts=args.rollouts,
                           findings_per_vuln=args.findings_per_vuln,
                           exceptions=args.exceptions)
        finally:
            engine.dispose()
        print(f"read model ({backend}): {summary}")
        token = _token(url)
        rows: list[tuple[str, int, float, float, float, int]] = []
        with served(home, url, args.port):
            client = Client(args.port, token)
            for template in ENDPOINTS:
                path = _resolve(client, template, args)
                try:
                    times, size = measure(client, path, args.runs)
                except RuntimeError as exc:
                    print(exc, file=sys.stderr)
                    return 1
                shown = template if len(template) <= 70 else template[:67] + "..."
                rows.append((shown, len(times), statistics.median(times), _p95(times),
                             times[-1], size))
    print(f"waitress (patchledger app serve, 8 threads), one keep-alive connection, "
          f"{args.runs} sequential requests per endpoint after one warm-up")
    print()
    print(f"| {'endpoint (/api/v1)':<70} | {'n':>4} | {'p50 ms':>7} | {'p95 ms':>7} | "
          f"{'max ms':>7} | {'bytes':>7} |")
    print(f"|{'-' * 72}|{'-' * 5}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|")
    for name, n, p50, p95, top, size in rows:
        print(f"| {name:<70} | {n:4d} | {p50:7.1f} | {p95:7.1f} | {top:7.1f} | {size:7d} |")
    worst = max(rows, key=lambda r: r[3])
    print()
    print(f"worst p95: {worst[3]:.1f} ms ({worst[0]})")
    if args.smoke:
        print("smoke run: a small read model and 3 runs; the goal (p95 < 100 ms) is judged on "
              "the full run")
    else:
        print("goal (p95 < 100 ms for every endpoint):",
              "met" if worst[3] < 100 else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
