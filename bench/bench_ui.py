"""Web UI page benchmark: p50 / p95 server time of every page with 10,000 hosts and 1,000
vulnerabilities (synthesized rows, app.ui.synth) in the read model of a real SQLite file.

Requests go through Flask's test client (no network): the time measured is the server's
(routing, authentication, queries, rendering). Run on purpose, never by CI:

    .venv/bin/python bench/bench_ui.py [--smoke] [--hosts 10000] [--vulns 1000] [--runs 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pyotp

from patchledger.app.web import auth
from patchledger.app.web.config import AppConfig, SecurityConfig
from patchledger.app.web.factory import create_app, state

# Run as a file (bench/<name>.py) the repository root is not on sys.path; the synthesized read
# model this bench uses lives in tests/support/ (it is not shipped in the wheel).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.support.ui import estate

PASSWORD = "bench password 1"

PAGES = ["/ui/", "/ui/vulnerabilities", "/ui/vulnerabilities?state=OPEN&kev=true&sort=cvss_score",
         "/ui/vulnerabilities/CVE-2026-00000", "/ui/patches", "/ui/patches/p-0001",
         "/ui/hosts", "/ui/hosts?owner_msp=ITOpsMSP", "/ui/hosts/host-00001", "/ui/rollouts",
         "/ui/rollouts/ro-000", "/ui/policy", "/ui/audit",
         "/ui/audit?record_type=Host&record_id=host-00001", "/ui/feeds"]


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
        started = time.perf_counter()
        with app.app_context(), state().engine.begin() as conn:
            estate(conn, hosts=args.hosts, vulns=args.vulns, start=int(time.time()))
        print(f"synthesized {args.hosts} hosts, {args.vulns} vulnerabilities in "
              f"{time.perf_counter() - started:.1f} s")
        with app.app_context():
            db = state().sessions()
            secret = auth.create_user(db, state().config.security, "bench", "admin",
                                      PASSWORD).totp_secret or ""
            db.close()
        client = app.test_client()
        login = client.get("/ui/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert csrf is not None
        client.post("/ui/login", data={"csrf_token": csrf.group(1), "username": "bench",
                                       "password": PASSWORD, "totp": pyotp.TOTP(secret).now()})
        today = datetime.now(UTC).date().isoformat()
        pages = [*PAGES, f"/ui/reports?as_of={today}&format=html"]
        print(f"{'page':<58} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        worst = 0.0
        for path in pages:
            times = []
            for _ in range(runs + 1):
                t0 = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    print(f"{path}: HTTP {response.status_code}", file=sys.stderr)
                    return 1
            times = sorted(times[1:])  # the first request warms caches
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            worst = max(worst, p95)
            print(f"{path:<58} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")
        print(f"worst p95: {worst:.1f} ms ({runs} runs per page)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
