"""Alembic environment: runs migrations on the engine passed by ``patchledger.app.db.migrate``
(``config.attributes["engine"]``); no alembic.ini, no URL in a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from patchledger.app.db.metadata import metadata
from patchledger.app.ingest import tables as _ingest_tables  # noqa: F401  (registers tables)
from patchledger.app.readmodel import tables as _readmodel_tables  # noqa: F401
from patchledger.app.web import agent_store as _agent_store  # noqa: F401
from patchledger.app.web import db as _web_tables  # noqa: F401  (users, tokens: 0005)

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise TypeError("run migrations through patchledger.app.db.migrate.upgrade(engine)")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
