"""The read model's query functions: filters, sorting, keyset paging that neither skips nor
repeats, and clear errors for bad parameters."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine

from patchledger.app.readmodel import queries
from patchledger.app.readmodel.projector import project
from patchledger.app.readmodel.queries import QueryError
from patchledger.chaincode.lifecycle.queries import RECORD_TYPES
from tests.support.readmodel import SimulatedLedger, build_chain
from tests.unit.readmodel.conftest import CHANNEL

SEVERITIES = ("low", "medium", "high", "critical")


@pytest.fixture
def filled(engine: Engine, ledger: SimulatedLedger) -> Engine:
    steps: list[Callable[[], object]] = [ledger.init_ledger]
    for i in range(40):
        extra = {"cvss_score": f"{(i % 10) + 0.5:.1f}"} if i % 4 else {}
        steps.append(partial(ledger.record_vulnerability, f"CVE-2024-{i:04d}",
                             severity=SEVERITIES[i % 4], known_exploited=i % 5 == 0, **extra))
    for i in range(0, 40, 7):
        steps.append(partial(ledger.assess, f"CVE-2024-{i:04d}", "NOT_AFFECTED"))
    project(engine, build_chain(ledger, steps, per_block=6).blocks, channel=CHANNEL)
    return engine


def _all_pages(conn, **kwargs) -> list[queries.RecordRow]:
    out, cursor = [], None
    while True:
        page = queries.list_records(conn, "Vulnerability", cursor=cursor, **kwargs)
        out.extend(page.items)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


@pytest.mark.parametrize(("sort", "descending"), [
    ("record_id", False), ("record_id", True), ("cvss_score", True), ("severity", False),
    ("updated_at", True), ("known_exploited", True),
])
def test_paging_visits_every_record_once_in_order(filled: Engine, sort: str,
                                                  descending: bool) -> None:
    with filled.connect() as conn:
        rows = _all_pages(conn, sort=sort, descending=descending, limit=7)
    assert len(rows) == 40 == len({r.record_id for r in rows})

    def key(r: queries.RecordRow) -> tuple[Any, str]:
        value = r.record.get(sort, r.record_id) if sort != "record_id" else r.record_id
        if sort == "cvss_score":
            value = float(value) if value else -1.0
        if sort == "updated_at":
            value = r.updated_at
        return (value, r.record_id)
    keys = [key(r) for r in rows]
    assert keys == sorted(keys, reverse=descending)


def test_filters(filled: Engine) -> None:
    with filled.connect() as conn:
        kev = _all_pages(conn, filters={"known_exploited": "true"}, limit=3)
        assert {r.record_id for r in kev} == {f"CVE-2024-{i:04d}" for i in range(0, 40, 5)}
        high = queries.list_records(conn, "Vulnerability",
                                    filters={"severity": ["high", "critical"],
                                             "state": "NOT_AFFECTED"}).items
        assert {r.record_id for r in high} == {f"CVE-2024-{i:04d}" for i in range(0, 40, 7)
                                              if i % 4 in (2, 3)}
        assert queries.count_records(conn, "Vulnerability", filters={"state": "OPEN"}) == 34
        scored = queries.list_records(conn, "Vulnerability", filters={"cvss_score": "9.5"})
        assert {r.record["cvss_score"] for r in scored.items} == {"9.5"}


def test_record_detail_and_etag_change_with_each_version(filled: Engine) -> None:
    with filled.connect() as conn:
        row = queries.get_record(conn, "Vulnerability", "CVE-2024-0007")
        assert row is not None and row.versions == 2 and row.state == "NOT_AFFECTED"
        first = queries.record_history(conn, "Vulnerability", "CVE-2024-0007")[0]
        assert first.state == "OPEN" and first.record is not None
        assert row.etag != f'"Vulnerability/CVE-2024-0007/1/{first.tx_id[:16]}"'
        assert queries.get_record(conn, "Vulnerability", "CVE-1999-9999") is None
        assert queries.record_history(conn, "Vulnerability", "CVE-1999-9999") == []


def test_blocks_and_transactions(filled: Engine) -> None:
    with filled.connect() as conn:
        height = queries.projected_height(conn)
        seen: list[int] = []
        cursor: str | None = None
        while True:
            page = queries.list_blocks(conn, limit=3, cursor=cursor)
            seen.extend(b.number for b in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == list(range(height - 1, -1, -1))
        txs, cursor = [], None
        while True:
            tpage = queries.list_transactions(conn, function="AssessVulnerability", limit=2,
                                              cursor=cursor, descending=False)
            txs.extend(tpage.items)
            if tpage.next_cursor is None:
                break
            cursor = tpage.next_cursor
        assert len(txs) == 6 and all(t.creator_msp == "ITOpsMSP" and t.valid for t in txs)
        assert [(t.block_number, t.tx_index) for t in txs] == sorted(
            (t.block_number, t.tx_index) for t in txs)
        writes = queries.transaction_writes(conn, txs[0].tx_id)
        assert [w.record_id for w in writes] == ["CVE-2024-0000"]
        assert queries.list_transactions(conn, creator_msp="ComplianceMSP").items == []
        genesis = queries.list_transactions(conn, block_number=0).items
        assert [t.header_type for t in genesis] == ["CONFIG"]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"record_type": "Nope"}, "record_type"),
    ({"filters": {"password": "x"}}, "password"),
    ({"filters": {"known_exploited": "maybe"}}, "known_exploited"),
    ({"filters": {"cvss_score": "high"}}, "cvss_score"),
    ({"sort": "title"}, "sort"),
    ({"limit": 0}, "limit"),
    ({"limit": 501}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": queries.encode_cursor([1, 2, 3])}, "cursor"),
])
def test_bad_parameters_name_the_field(filled: Engine, kwargs: dict[str, Any], field: str) -> None:
    args = {"record_type": "Vulnerability", **kwargs}
    if "sort" in kwargs and kwargs["sort"] == "title":
        args["sort"] = "no_such_field"
    with filled.connect() as conn, pytest.raises(QueryError) as raised:
        queries.list_records(conn, **args)
    assert raised.value.field == field
    assert field in str(raised.value)


def test_record_types_lists_filterable_fields() -> None:
    types = queries.record_types()
    # every record type the contract writes (and its liveness Ping) has a table of its own
    assert set(RECORD_TYPES) | {"Ping"} == set(types)
    assert "severity" in types["Vulnerability"] and "state" in types["Host"]
