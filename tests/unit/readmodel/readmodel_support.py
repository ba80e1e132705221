"""Support for read-model tests (unit and integration): a migrated SQLite file, and the read
model's content in the shape of a ledger history to compare with."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from patchledger.app.db import open_engine, sqlite_url, upgrade
from patchledger.app.readmodel.projector import Projector
from patchledger.app.readmodel.tables import RECORD_TABLES, other_records, record_versions

History = dict[tuple[str, str], list[tuple[str, str | None]]]


def migrated_sqlite(path: Path) -> Engine:
    """A SQLite file at ``path`` with the schema at head."""
    engine = open_engine(sqlite_url(path))
    upgrade(engine)
    return engine


def versions_of(engine: Engine) -> History:
    """Every record version in the read model: (type, id) -> [(tx_id, json or None)]."""
    v = record_versions.c
    out: History = {}
    with engine.connect() as conn:
        rows = conn.execute(select(v.record_type, v.record_id, v.tx_id, v.json)
                            .order_by(v.record_type, v.record_id, v.version))
        for record_type, record_id, tx_id, text in rows:
            out.setdefault((record_type, record_id), []).append((tx_id, text))
    return out


def current_of(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    """Every current record in the read model: (type, id) -> parsed JSON."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with engine.connect() as conn:
        for record_type, table in RECORD_TABLES.items():
            for record_id, text in conn.execute(select(table.c.record_id, table.c.json)):
                out[(record_type, record_id)] = json.loads(text)
        for record_type, record_id, text in conn.execute(
                select(other_records.c.record_type, other_records.c.record_id,
                       other_records.c.json)):
            out[(record_type, record_id)] = json.loads(text)
    return out


def expected_current(history: History) -> dict[tuple[str, str], dict[str, Any]]:
    """The current records a history implies (last version, unless deleted)."""
    return {key: json.loads(versions[-1][1]) for key, versions in history.items()
            if versions[-1][1] is not None}


def run_in_thread(projector: Projector) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``projector.run()`` in a daemon thread; what it raises lands in the list."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            projector.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors
