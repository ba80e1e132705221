"""Fixtures of the ingestion tests: a migrated SQLite file and a simulated ledger feeding
its read model."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.unit.ingest.ingest_support import Harness
from tests.unit.readmodel.conftest import engine  # noqa: F401  (the same fixture)


@pytest.fixture
def harness(engine: Engine) -> Harness:  # noqa: F811  (the imported fixture)
    return Harness(engine)
