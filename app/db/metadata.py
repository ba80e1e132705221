"""The single SQLAlchemy ``MetaData`` of the app database.

Every area defines its tables on it (``patchledger.app.readmodel.tables``,
``patchledger.app.ingest.tables``, ...), so one Alembic history covers the whole database.
Constraint names follow a fixed convention, so migrations can name them on every backend.
"""

from __future__ import annotations

from sqlalchemy import MetaData

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
