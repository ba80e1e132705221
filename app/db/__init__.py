"""The org app's database: engine creation (SQLite by default, PostgreSQL by URL), the one
``MetaData`` every area's tables are defined on, and the Alembic migrations that create and
upgrade the schema (run programmatically by :func:`upgrade`)."""

from __future__ import annotations

from patchledger.app.db.engine import (
    DatabaseError,
    database_url,
    for_writes,
    open_engine,
    sqlite_url,
)
from patchledger.app.db.metadata import metadata
from patchledger.app.db.migrate import current_revision, head_revision, upgrade

__all__ = [
    "DatabaseError",
    "current_revision",
    "database_url",
    "for_writes",
    "head_revision",
    "metadata",
    "open_engine",
    "sqlite_url",
    "upgrade",
]
