"""Opening the app database: SQLite (a file, the default) or PostgreSQL (psycopg 3) by URL.

SQLite connections run in WAL mode with foreign keys on and a busy timeout, so the projector,
the ingestion loop and web workers can share one file: readers never block the single writer.
``synchronous=FULL`` makes every commit durable (the read model's checkpoint is in the same
transaction as its rows, so a lost commit would only be re-projected, but ingestion's
off-ledger data has no other copy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from patchledger.app.errors import UserError

#: The schemes accepted by :func:`database_url` (``postgresql://`` is mapped to psycopg 3).
SUPPORTED = ("sqlite", "postgresql", "postgresql+psycopg")


class DatabaseError(UserError):
    """The database URL is malformed or names an unsupported backend, or the schema is not
    at the version this code needs."""


def sqlite_url(path: str | Path) -> str:
    """The SQLAlchemy URL of the SQLite file ``path`` (made absolute)."""
    return f"sqlite:///{Path(path).resolve()}"


def database_url(url: str) -> str:
    """Normalise a configured database URL: ``postgresql://`` and ``postgres://`` use
    psycopg 3 (``postgresql+psycopg://``); SQLite URLs are kept.

    Raises:
        DatabaseError: not a URL, or a backend other than SQLite and PostgreSQL.
    """
    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://"):]
    try:
        parsed = make_url(text)
    except ArgumentError as exc:
        raise DatabaseError(f"database URL {url!r} is not a URL: {exc}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in SUPPORTED:
        raise DatabaseError(
            f"database URL {parsed.render_as_string(hide_password=True)!r}: unsupported "
            f"backend {parsed.drivername!r} (use sqlite:///FILE or postgresql://...)"
        )
    if parsed.drivername == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise DatabaseError(
            f"database URL {url!r}: an in-memory SQLite database cannot be shared between "
            "connections; name a file (sqlite:///path/app.db)"
        )
    return parsed.render_as_string(hide_password=False)


def open_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url`` (see :func:`database_url`), SQLite tuned as the module says.

    The SQLite file's directory is created if missing. ``options`` go to
    ``sqlalchemy.create_engine``.

    Raises:
        DatabaseError: a malformed or unsupported URL.
    """
    normalised = database_url(url)
    parsed = make_url(normalised)
    if parsed.drivername == "sqlite":
        assert parsed.database is not None
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(normalised, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that a
        # transaction's first read already holds a consistent snapshot.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(normalised, pool_pre_ping=True, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


#: The execution option that marks a write transaction (see :func:`for_writes`).
WRITE_OPTION = "patchledger_write"


def for_writes(engine: Engine) -> Engine:
    """``engine`` for write transactions: ``with for_writes(engine).begin() as conn``.

    On SQLite such a transaction begins with ``BEGIN IMMEDIATE``: it takes the database's
    write lock at once, waiting up to the busy timeout while another connection writes. A
    plain (deferred) ``BEGIN`` takes a snapshot at its first read; when another connection
    commits before the transaction's first write, SQLite refuses to turn that stale snapshot
    into a writer at once, without waiting ("database is locked", SQLITE_BUSY_SNAPSHOT), so
    a read-then-write transaction failed under concurrent writers. Readers are never blocked
    (WAL). On PostgreSQL the option changes nothing. The returned engine shares ``engine``'s
    pool and settings (``Engine.execution_options``).
    """
    return engine.execution_options(**{WRITE_OPTION: True})


def _sqlite_begin(connection: Any) -> None:
    # the pysqlite recipe of SQLAlchemy's documentation ("Serializable isolation /
    # Savepoints / Transactional DDL"), with IMMEDIATE for the transactions of for_writes()
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    """True when ``engine`` is a SQLite database."""
    return engine.dialect.name == "sqlite"
