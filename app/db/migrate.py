"""Schema migrations of the app database with Alembic, run from code (no alembic.ini).

The migration scripts ship inside the package (``migrations/versions``). ``patchledger app
init`` and the app at start call :func:`upgrade`; an area that adds tables adds a revision
whose ``down_revision`` is the current head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


def _config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database's schema to ``revision`` (default: the newest), in a transaction
    per migration; a database already there is left unchanged.

    Raises:
        alembic.util.CommandError: an unknown revision.
        sqlalchemy.exc.SQLAlchemyError: the database refused a migration.
    """
    command.upgrade(_config(engine), revision)


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision (``None`` for a database never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
