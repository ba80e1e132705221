"""The report cache: its key follows the read model (a new block recomputes a report whose
moment may still receive transactions; a settled moment stays cached whatever is projected),
least recently used entries go first, and the UI serves a cached report with the same digest
and block height as a fresh computation."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from apiflask import APIFlask
from sqlalchemy import Engine

from patchledger.app.reports import render
from patchledger.app.reports.cache import ReportCache, state_key
from patchledger.app.reports.compliance import Report, compute
from patchledger.app.reports.source import load_facts, parse_as_of
from patchledger.app.web.factory import state
from tests.support.ui import Writer, estate
from tests.unit.reports.test_kev_report import engine, t, vuln
from tests.unit.ui.conftest import log_in
from tests.unit.webapp import conftest as webapp
from tests.unit.webapp.conftest import Account

app = webapp.app
accounts = webapp.accounts
__all__ = ["accounts", "app", "engine"]  # fixtures, imported


def test_key_follows_the_read_model(engine: Engine) -> None:
    with engine.connect() as conn:
        # the newest block (2026-11-10) is long after 2026-11-01: settled
        assert state_key(conn, parse_as_of("2026-11-01")) == ("settled", 0)
        # 23 blocks (0-22), the newest before the end of 2026-11-30: more may come
        assert state_key(conn, parse_as_of("2026-11-30")) == ("height", 22)
    with engine.begin() as conn:
        w = Writer(conn, block=23)
        w.put("Vulnerability", vuln("CVE-G", "critical", due="2026-12-01"), t("2026-11-20"))
        w.flush()
    with engine.connect() as conn:
        assert state_key(conn, parse_as_of("2026-11-01")) == ("settled", 0)
        assert state_key(conn, parse_as_of("2026-11-30")) == ("height", 23)
        # the end of 11-19 is a second before the newest block: not settled yet
        assert state_key(conn, parse_as_of("2026-11-19")) == ("height", 23)
        assert state_key(conn, parse_as_of("2026-11-18")) == ("settled", 0)


def test_hits_misses_and_eviction(engine: Engine) -> None:
    cache = ReportCache(size=2)
    computed: list[str] = []

    def compute_as_of(day: str) -> Report:
        computed.append(day)
        with engine.connect() as conn:
            return compute(load_facts(conn, parse_as_of(day)))

    first = cache.report(("2026-11-01",), lambda: compute_as_of("2026-11-01"))
    again = cache.report(("2026-11-01",), lambda: compute_as_of("2026-11-01"))
    assert again is first and computed == ["2026-11-01"]
    assert (cache.hits, cache.misses) == (1, 1)
    html = cache.rendering(first, "html", render.html)
    assert cache.rendering(first, "html", lambda r: "not called") == html
    cache.report(("2026-11-30",), lambda: compute_as_of("2026-11-30"))
    cache.report(("2026-11-01",), lambda: compute_as_of("2026-11-01"))  # used: kept
    cache.report(("2026-11-15",), lambda: compute_as_of("2026-11-15"))  # evicts 11-30
    cache.report(("2026-11-01",), lambda: compute_as_of("2026-11-01"))
    cache.report(("2026-11-30",), lambda: compute_as_of("2026-11-30"))
    assert computed == ["2026-11-01", "2026-11-30", "2026-11-15", "2026-11-30"]


def test_ui_serves_the_cached_report(app: APIFlask, accounts: dict[str, Account]) -> None:
    with app.app_context(), state().engine.begin() as conn:
        estate(conn, hosts=200, vulns=40, start=int(time.time()))
    client = log_in(app.test_client(), accounts["auditor"])
    today = datetime.now(UTC).date().isoformat()
    url = f"/ui/reports?as_of={today}&format=html"
    first, second = client.get(url), client.get(url)
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert first.headers["X-Report-SHA256"] == second.headers["X-Report-SHA256"]
    cache = app.extensions["patchledger.report_cache"]
    assert (cache.hits, cache.misses) == (1, 1)
    with app.app_context(), state().engine.connect() as conn:
        fresh = compute(load_facts(conn, parse_as_of(today)))
    assert first.headers["X-Report-SHA256"] == render.digest(fresh)
    assert first.headers["X-Report-Block-Height"] == str(fresh.facts.block_height)
    # another format of the same report: the same entry, rendered once more
    csv = client.get(f"/ui/reports?as_of={today}&format=csv")
    assert csv.headers["X-Report-SHA256"] == first.headers["X-Report-SHA256"]
    assert (cache.hits, cache.misses) == (2, 1)
    # a block arrives (today is not settled): the report is computed again
    with app.app_context(), state().engine.begin() as conn:
        w = Writer(conn, block=10_000_000)
        w.put("Vulnerability", vuln("CVE-NEW", "critical", due=today), int(time.time()))
        w.flush()
    third = client.get(url)
    assert (cache.hits, cache.misses) == (2, 2)
    assert third.headers["X-Report-SHA256"] != first.headers["X-Report-SHA256"]
