"""Web UI page benchmark: p50 / p95 server time of every page with 10,000 hosts and 1,000
vulnerabilities (synthesized rows, tests/support/ui.py) in the read model of a real SQLite
file, each page as a user of a role that may open it (admin, operator, approver, auditor).

Requests go through Flask's test client (no network): the time measured is the server's
(routing, authentication, queries, rendering). The compliance report is measured twice: as
the UI serves it (its cache keyed by the read model's state: every request after the first
is a hit) and cold (the cache emptied before each request: the history read, computed and
rendered each time). The load average is printed with the figures. Run on purpose, never
by CI:

    .venv/bin/python bench/bench_ui.py [--smoke] [--hosts 10000] [--vulns 1000] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp

from patchledger.app.reports.cache import ReportCache
from patchledger.app.web import auth
from patchledger.app.web.config import AppConfig, SecurityConfig
from patchledger.app.web.factory import create_app, state

# Run as a file (bench/<name>.py) the repository root is not on sys.path; the synthesized read
# model this bench uses lives in tests/support/ (it is not shipped in the wheel).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.support.ui import seed

PASSWORD = "bench password 1"

#: (role, method, path, form) of every page measured; POST forms get the session's CSRF token.
PAGES: list[tuple[str, str, str, dict[str, str]]] = [
    *[("admin", "GET", p, {}) for p in (
        "/ui/", "/ui/vulnerabilities", "/ui/vulnerabilities?state=OPEN&kev=true&sort=cvss_score",
        "/ui/vulnerabilities/CVE-2026-00000", "/ui/patches", "/ui/patches/p-0001", "/ui/hosts",
        "/ui/hosts?owner_msp=ITOpsMSP", "/ui/hosts/host-00001", "/ui/rollouts",
        "/ui/rollouts/ro-000", "/ui/policy", "/ui/audit",
        "/ui/audit?record_type=Host&record_id=host-00001", "/ui/feeds",
        "/ui/enrollment-tokens", "/ui/account")],
    ("operator", "GET", "/ui/patch-proposal?vuln_id=CVE-2026-00000", {}),
    ("operator", "GET", "/ui/rollouts/new", {}),
    ("operator", "POST", "/ui/rollouts/new", {
        "rollout_id": "ro-bench", "patch_id": "p-0000", "mode": "percent",
        "percentages": "10,30,60", "canary": "5", "soak_seconds": "600",
        "failure_threshold_pct": "10", "disruption_budget": "10%", "max_concurrency": "25%",
        "wave_timeout_seconds": "3600", "rollback_on_failure": "yes", "step": "preview"}),
    ("approver", "POST", "/ui/patches/p-0001/revoke", {}),
]
ROLES = ("admin", "operator", "approver", "auditor")


def _client(app: Any, role: str) -> Any:
    """A test client logged in as the bench's user of ``role``, and its CSRF token."""
    with app.app_context():
        db = state().sessions()
        secret = auth.create_user(db, state().config.security, f"bench-{role}", role,
                                  PASSWORD).totp_secret
        db.close()
    client = app.test_client()
    login = client.get("/ui/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert csrf is not None
    form = {"csrf_token": csrf.group(1), "username": f"bench-{role}", "password": PASSWORD}
    if secret:
        form["totp"] = pyotp.TOTP(secret).now()
    assert client.post("/ui/login", data=form).status_code == 302, role
    page = client.get("/ui/account").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    return client, token.group(1)


def _measure(runs: int, call: Callable[[], Any], before: Callable[[], None] | None = None
             ) -> tuple[list[float], list[float], int]:
    """Wall and CPU milliseconds of ``runs`` calls (after one warm-up), sorted, and the worst
    status. The CPU time (this process's, all threads) does not grow with the machine's load
    the way the wall time does."""
    wall, cpu = [], []
    status = 200
    for _ in range(runs + 1):
        if before is not None:
            before()
        c0, t0 = time.process_time(), time.perf_counter()
        response = call()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        status = max(status, response.status_code)
    return sorted(wall[1:]), sorted(cpu[1:]), status  # the first request warms caches


def _request(client: Any, method: str, path: str, data: dict[str, str] | None
             ) -> Callable[[], Any]:
    return lambda: client.open(path, method=method, data=data)


def _p95(times: list[float]) -> float:
    return times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--vulns", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="3 runs per page")
    args = parser.parse_args(argv)
    runs = 3 if args.smoke else args.runs
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        app = create_app(AppConfig(
            organization="secops", msp_id="SecOpsMSP", database_url=f"sqlite:///{home}/app.db",
            artifact_dir=home / "artifacts", wallet_dir=home / "wallet",
            wallet_passphrase="bench", secret_key="bench",
            security=SecurityConfig(argon2_time_cost=1, argon2_memory_kib=8)))
        with app.app_context():
            print(seed(state().engine, hosts=args.hosts, vulns=args.vulns))
        clients = {role: _client(app, role) for role in ROLES}
        today = datetime.now(UTC).date().isoformat()
        report = f"/ui/reports?as_of={today}&format=html"
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'page':<66} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu p50':>8} "
              f"{'cpu p95':>8}")
        worst = 0.0
        rows: list[tuple[str, Callable[[], Any], Callable[[], None] | None]] = []
        for role, method, path, form in PAGES:
            client, csrf = clients[role]
            data = {"csrf_token": csrf, **form} if method == "POST" else None
            rows.append((f"{method} {path} ({role})" if method == "POST" else path,
                         _request(client, method, path, data), None))
        auditor = clients["auditor"][0]
        rows.append((f"{report} (cached)", lambda: auditor.get(report), None))

        def empty() -> None:
            app.extensions["patchledger.report_cache"] = ReportCache()

        rows.append((f"{report} (cold)", lambda: auditor.get(report), empty))
        for label, call, before in rows:
            times, cpu, status = _measure(runs, call, before)
            if status != 200:
                print(f"{label}: HTTP {status}", file=sys.stderr)
                return 1
            p95 = _p95(times)
            worst = max(worst, p95)
            print(f"{label:<66} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f} "
                  f"{statistics.median(cpu):8.1f} {_p95(cpu):8.1f}")
        print(f"worst p95: {worst:.1f} ms ({runs} runs per page); load average after: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
