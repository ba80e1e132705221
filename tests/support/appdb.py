"""The app database's schema check, shared by the SQLite unit test
(tests/unit/readmodel/test_migrations.py) and the PostgreSQL integration test
(tests/integration/test_app_db.py)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from patchledger.app.db import current_revision, head_revision, metadata, upgrade
from patchledger.app.web.db import create_schema


def assert_upgrade_from_empty_equals_the_models(engine: Engine) -> None:
    """An empty database upgraded to head has exactly the tables, columns, indexes and
    constraints of the code's models (every area's, the web app's users and tokens too), and a
    second upgrade changes nothing."""
    assert current_revision(engine) is None
    create_schema(engine)  # what app init and the app at start run: Alembic only
    assert current_revision(engine) == head_revision()
    upgrade(engine)  # already at head: nothing to do
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    tables = set(inspect(engine).get_table_names())
    assert {"vulnerabilities", "record_versions", "blocks", "transactions",
            "readmodel_checkpoints", "inventories", "findings", "patch_candidates",
            "ledger_submissions", "scheduler_leases", "app_users", "app_api_tokens",
            "app_enrollment_tokens"} <= tables
    assert set(metadata.tables) | {"alembic_version"} == tables
