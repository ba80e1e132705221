"""The report cache follows the read model: a new block recomputes a report whose moment may
still receive transactions once the entry is older than its live time; a settled moment stays
cached whatever is projected; least recently used entries go first; the UI serves a cached
report with the same digest and block height as a fresh computation."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from apiflask import APIFlask
from sqlalchemy import Engine

from patchledger.app.reports import render
from patchledger.app.reports.cache import Entry, ReportCache, read_model_state
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
        assert read_model_state(conn, parse_as_of("2026-11-01")) == (True, 22)
        # 23 blocks (0-22), the newest before the end of 2026-11-30: more may come
        assert read_model_state(conn, parse_as_of("2026-11-30")) == (False, 22)
    with engine.begin() as conn:
        w = Writer(conn, block=23)
        w.put("Vulnerability", vuln("CVE-G", "critical", due="2026-12-01"), t("2026-11-20"))
        w.flush()
    with engine.connect() as conn:
        assert read_model_state(conn, parse_as_of("2026-11-01")) == (True, 23)
        assert read_model_state(conn, parse_as_of("2026-11-30")) == (False, 23)
        # the end of 11-19 is a second before the newest block: not settled yet
        assert read_model_state(conn, parse_as_of("2026-11-19")) == (False, 23)
        assert read_model_state(conn, parse_as_of("2026-11-18")) == (True, 23)


def test_background_refresh_keeps_the_old_entry_on_error(engine: Engine) -> None:
    now = [0.0]
    cache = ReportCache(live_seconds=0, clock=lambda: now[0])
    with engine.connect() as conn:
        first = cache.report("d", False, 1, lambda: compute(load_facts(
            conn, parse_as_of("2026-11-01"))))

    def broken() -> Report:
        raise RuntimeError("the database went away")

    now[0] = 5.0
    assert cache.report("d", False, 2, broken, refresh_in_background=True) is first
    cache.wait(10)
    assert cache.report("d", False, 1, broken) is first  # still there, still current at 1


def test_hits_misses_and_eviction(engine: Engine) -> None:
    now = [0.0]
    cache = ReportCache(size=2, live_seconds=30, clock=lambda: now[0])
    computed: list[str] = []

    def get(day: str, settled: bool = False, height: int = 22) -> Entry:
        def run() -> Report:
            computed.append(day)
            with engine.connect() as conn:
                return compute(load_facts(conn, parse_as_of(day)))
        return cache.report(day, settled, height, run)

    first = get("2026-11-01", True)
    assert get("2026-11-01", True, 99) is first  # settled: whatever the height
    assert computed == ["2026-11-01"] and (cache.hits, cache.misses) == (1, 1)
    html = cache.rendering(first, "html", render.html)
    assert cache.rendering(first, "html", lambda r: "not called") == html
    live = get("2026-11-30")
    now[0] = 29.0
    assert get("2026-11-30", height=23) is live  # a newer block, within the live time
    now[0] = 31.0
    assert get("2026-11-30", height=22) is live  # the same height: still current
    assert get("2026-11-30", height=23) is not live  # newer and too old: recomputed
    assert computed == ["2026-11-01", "2026-11-30", "2026-11-30"]
    # least recently used out: 11-01 was used before 11-30
    get("2026-11-15")
    get("2026-11-01", True)
    assert computed[-2:] == ["2026-11-15", "2026-11-01"]


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
    # a block arrives (today is not settled): within the live time the entry computed at the
    # older height is served (it states that height); after it, the report is computed again
    with app.app_context(), state().engine.begin() as conn:
        w = Writer(conn, block=10_000_000)
        w.put("Vulnerability", vuln("CVE-NEW", "critical", due=today), int(time.time()))
        w.flush()
    assert client.get(url).headers["X-Report-SHA256"] == first.headers["X-Report-SHA256"]
    cache.live_seconds = 0
    # out of date now: served as it is (stating its height) while a thread recomputes it
    stale = client.get(url)
    assert stale.headers["X-Report-SHA256"] == first.headers["X-Report-SHA256"]
    assert (cache.hits, cache.misses, cache.stale) == (3, 1, 1)
    cache.wait(30)
    third = client.get(url)
    assert third.headers["X-Report-SHA256"] != first.headers["X-Report-SHA256"]
    assert int(third.headers["X-Report-Block-Height"]) > int(
        first.headers["X-Report-Block-Height"])
    with app.app_context(), state().engine.connect() as conn:
        assert third.headers["X-Report-SHA256"] == render.digest(
            compute(load_facts(conn, parse_as_of(today))))
