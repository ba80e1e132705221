"""The app database: migrations shipped in the package create exactly the tables the code
defines, upgrading is idempotent, and database URLs are checked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, insert, select

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
from patchledger.app.web.db import User, create_schema
from tests.support.appdb import assert_upgrade_from_empty_equals_the_models


def test_upgrade_creates_the_schema_of_the_code(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path / "nested" / "app.db"))
    assert_upgrade_from_empty_equals_the_models(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_users_tables_made_by_create_all_before_0005_are_adopted(tmp_path: Path) -> None:
    """A database of the code before revision 0005 (migrations to 0004, then ``create_all``
    of the users and tokens tables without the naming convention) upgrades to head keeping
    its users."""
    engine = open_engine(sqlite_url(tmp_path / "app.db"))
    upgrade(engine, "0004")
    old = MetaData()
    for name in ("app_users", "app_api_tokens", "app_enrollment_tokens"):
        metadata.tables[name].to_metadata(old)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(old.tables["app_users"]), [{
            "id": 1, "username": "admin", "role": "admin", "password_hash": "x",
            "totp_last_step": 0, "failed_logins": 0, "session_version": 1, "disabled": False,
            "created_at": datetime.now(UTC)}])
    create_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(select(User.username)).scalars().all() == ["admin"]


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
