"""The app database on a real PostgreSQL server (tests/integration/postgres_support.py; no
Fabric network): an empty database upgraded by Alembic alone equals the code's models, the
web app's users and tokens included (the SQLite twin is tests/unit/readmodel/test_migrations.py);
the projection's PostgreSQL path (COPY) writes what the SQLite path writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from patchledger.app.db import open_engine, sqlite_url, upgrade
from patchledger.app.readmodel.projector import project, rebuild
from patchledger.app.readmodel.tables import (
    RECORD_TABLES,
    blocks,
    checkpoints,
    other_records,
    record_versions,
    transactions,
)
from tests.integration.postgres_support import postgres_server
from tests.support.appdb import assert_upgrade_from_empty_equals_the_models
from tests.support.readmodel import ChainSource, SimulatedLedger, build_chain, mixed_steps

pytestmark = pytest.mark.integration


def test_upgrade_from_empty_equals_the_models_on_postgresql() -> None:
    with postgres_server() as server:
        engine = open_engine(server.create_database("migrations"))
        try:
            assert_upgrade_from_empty_equals_the_models(engine)
        finally:
            engine.dispose()


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows, ordered, without what differs by design (the time a
    block was projected, record_versions' surrogate id)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    tables = [*RECORD_TABLES.values(), other_records, record_versions, transactions, blocks,
              checkpoints]
    with engine.connect() as conn:
        for table in tables:
            columns = [c for c in table.columns
                       if c.name not in ("projected_at", "id", "updated_at")
                       or (c.name == "updated_at" and table is not checkpoints)]
            order = list(table.primary_key.columns) if table is not record_versions else [
                table.c.record_type, table.c.record_id, table.c.version]
            out[table.name] = [tuple(r) for r in conn.execute(
                select(*columns).order_by(*order))]
    return out


def test_projection_by_copy_on_postgresql_equals_sqlite(tmp_path: Path) -> None:
    """The PostgreSQL path (COPY, staged upserts, array lookups) writes exactly what the
    SQLite path (executemany) writes: in batches with a re-delivered batch, a delete, and a
    rebuild in one transaction."""
    ledger = SimulatedLedger()
    steps = mixed_steps(ledger, 400)
    steps.append(lambda: ledger.write_raw("ITOpsMSP", "Purge", {
        "\x00Deployment\x00R-1\x00h-000001\x00": None, "\x00Host\x00h-000002\x00": None}))
    steps.append(lambda: ledger.write_raw("ITOpsMSP", "Restore", {  # a version after a delete
        "\x00Host\x00h-000002\x00": b'{"host_id": "h-000002", "status": "ENROLLED"}'}))
    steps.append(lambda: ledger.record_vulnerability("CVE-2025-000003", severity="critical",
                                                     known_exploited=True))
    chain = build_chain(ledger, steps, per_block=25)
    third = len(chain.blocks) // 3
    batches = [chain.blocks[:third], chain.blocks[third:2 * third],
               chain.blocks[third - 2:], chain.blocks[2 * third:]]  # the third overlaps
    sqlite = open_engine(sqlite_url(tmp_path / "app.db"))
    with postgres_server() as server:
        pg = open_engine(server.create_database("projection"))
        try:
            for engine in (sqlite, pg):
                upgrade(engine)
                for batch in batches:
                    project(engine, batch, channel=ledger.channel)
            expected = _rows(sqlite)
            assert sum(len(rows) for rows in expected.values()) > 1000
            assert _rows(pg) == expected
            rebuild(pg, ChainSource(chain.blocks, ledger.channel))
            assert _rows(pg) == expected
        finally:
            pg.dispose()
            sqlite.dispose()
