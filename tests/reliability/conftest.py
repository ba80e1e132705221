"""The reliability suite: a short form (the default, run by CI) and a long form run on purpose.

The long form is chosen with ``--long`` (an option of the whole suite, tests/conftest.py) or with
``PATCHLEDGER_RELIABILITY_LONG=1``; see docs/reliability.md. The short form draws a few
examples per property with a fixed seed (the same examples every CI run); the long form draws
many, from a fresh random seed each run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.budget import Budget
from tests.support.feeds import required_feeds_dir

LONG_ENV = "PATCHLEDGER_RELIABILITY_LONG"


@pytest.fixture(scope="session")
def budget(request: pytest.FixtureRequest) -> Budget:
    """How much the fuzzers do: the short form unless the long form was asked for."""
    option = request.config.getoption("--long", default=False)
    long_form = bool(option) or os.environ.get(LONG_ENV, "") not in ("", "0")
    return Budget.long() if long_form else Budget.short()


@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    """The real shared feed files (skipped, naming the path, when they are missing)."""
    return required_feeds_dir()
