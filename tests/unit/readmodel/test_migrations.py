"""The app database: migrations shipped in the package create exactly the tables the code
defines, upgrading is idempotent, and database URLs are checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from patchledger.app.db import (
    DatabaseError,
    current_revision,
    database_url,
    head_revision,
    metadata,
    open_engine,
    sqlite_url,
    upgrade,
)
from patchledger.app.db.migrate import SCRIPT_LOCATION


def test_upgrade_creates_the_schema_of_the_code(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path / "nested" / "app.db"))
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    upgrade(engine)  # already at head: nothing to do
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    tables = set(inspect(engine).get_table_names())
    assert {"vulnerabilities", "record_versions", "blocks", "transactions",
            "readmodel_checkpoints", "inventories", "findings", "patch_candidates",
            "ledger_submissions", "scheduler_leases"} <= tables
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_upgrade_from_the_first_revision(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path / "app.db"))
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_migrations_ship_inside_the_package() -> None:
    assert (SCRIPT_LOCATION / "env.py").is_file()
    assert sorted(p.name for p in (SCRIPT_LOCATION / "versions").glob("0*.py"))[0] == (
        "0001_initial.py")


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:p@127.0.0.1:5432/db", "postgresql+psycopg://u:p@127.0.0.1:5432/db"),
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
])
def test_database_url(url: str, expected: str) -> None:
    assert database_url(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u@h/db", "unsupported backend 'mysql'"),
    ("sqlite://", "in-memory SQLite"),
    ("sqlite:///:memory:", "in-memory SQLite"),
    ("not a url", "is not a URL"),
])
def test_bad_database_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        database_url(url)
