"""SQLite write transactions (app.db's ``for_writes``): they begin with BEGIN IMMEDIATE, so
concurrent read-then-write transactions wait for each other instead of failing with
"database is locked"; plain transactions stay deferred (readers never take the lock)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, select, update
from sqlalchemy.exc import OperationalError

from patchledger.app.db import for_writes, open_engine, sqlite_url

WRITERS = 4
ROUNDS = 15

counters = Table("counters", MetaData(), Column("id", Integer, primary_key=True),
                 Column("n", Integer, nullable=False))


def _engine(tmp_path: Path) -> Engine:
    engine = open_engine(sqlite_url(tmp_path / "app.db"))
    counters.create(engine)
    with engine.begin() as conn:
        conn.execute(counters.insert(), [{"id": 1, "n": 0}])
    return engine


def _increments(engine: Engine) -> tuple[int, list[str]]:
    """WRITERS threads each add 1 ROUNDS times, reading the counter and writing it back in
    one transaction of ``engine``; (the final count, the errors seen)."""
    errors: list[str] = []

    def work() -> None:
        for _ in range(ROUNDS):
            try:
                with engine.begin() as conn:
                    n = conn.execute(select(counters.c.n)).scalar_one()
                    time.sleep(0.002)  # let another writer commit between read and write
                    conn.execute(update(counters).values(n=n + 1))
            except OperationalError as exc:
                errors.append(str(exc.orig))

    threads = [threading.Thread(target=work) for _ in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        return conn.execute(select(counters.c.n)).scalar_one(), errors


def test_concurrent_read_then_write_transactions_are_never_locked_out(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    count, errors = _increments(for_writes(engine))
    assert errors == []
    assert count == WRITERS * ROUNDS  # serialized: no lost update either
    engine.dispose()


def test_deferred_read_then_write_transactions_fail_locked(tmp_path: Path) -> None:
    """What for_writes fixes: the same work in plain (deferred) transactions is refused."""
    engine = _engine(tmp_path)
    count, errors = _increments(engine)
    assert errors and all("database is locked" in e for e in errors), errors
    assert count == WRITERS * ROUNDS - len(errors)
    engine.dispose()


def _lock_is_held(path: Path) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        assert "database is locked" in str(exc)
        return True
    finally:
        other.close()


def test_a_write_transaction_holds_the_lock_from_begin_and_a_read_does_not(
        tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with for_writes(engine).begin():
        assert _lock_is_held(tmp_path / "app.db")
    with engine.begin() as conn:
        conn.execute(select(counters.c.n)).scalar_one()
        assert not _lock_is_held(tmp_path / "app.db")
    engine.dispose()


@pytest.mark.parametrize(("method", "locked"), [("POST", True), ("GET", False)])
def test_web_sessions_of_unsafe_requests_write_immediately(
        tmp_path: Path, method: str, locked: bool) -> None:
    from patchledger.app.web.factory import create_app, state
    from tests.unit.webapp.conftest import make_config

    app = create_app(make_config(tmp_path))
    with app.test_request_context("/api/v1/tokens", method=method):
        db = state().db()
        db.execute(select(1))
        assert _lock_is_held(tmp_path / "app.db") is locked
        db.rollback()
    state_engine = app.extensions["patchledger"].engine
    state_engine.dispose()
