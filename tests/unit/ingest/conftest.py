"""Fixtures of the ingestion tests: a migrated SQLite file and a simulated ledger feeding
its read model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.unit.ingest.ingest_support import Harness
from tests.unit.readmodel.readmodel_support import migrated_sqlite


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_sqlite(tmp_path / "app.db")
    yield engine
    engine.dispose()


@pytest.fixture
def harness(engine: Engine) -> Harness:
    return Harness(engine)
