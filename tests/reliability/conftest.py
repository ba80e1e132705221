"""The reliability suite: a short form (the default, run by CI) and a long form run on purpose.

The long form is chosen with ``--long`` (when ``tests/reliability`` is on the pytest command line)
or with ``PATCHLEDGER_RELIABILITY_LONG=1``; see docs/reliability.md. The short form draws a few
examples per property with a fixed seed (the same examples every CI run); the long form draws
many, from a fresh random seed each run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.budget import Budget
from tests.support.feeds import MARKER, shared_feeds_dir

LONG_ENV = "PATCHLEDGER_RELIABILITY_LONG"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help=f"run the reliability suite's long form (as {LONG_ENV}=1)",
    )


@pytest.fixture(scope="session")
def budget(request: pytest.FixtureRequest) -> Budget:
    """How much the fuzzers do: the short form unless the long form was asked for."""
    option = request.config.getoption("--long", default=False)
    long_form = bool(option) or os.environ.get(LONG_ENV, "") not in ("", "0")
    return Budget.long() if long_form else Budget.short()


@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    """The real shared feed files (skipped, naming the path, when they are missing)."""
    path = shared_feeds_dir()
    if not (path / MARKER).is_file():
        pytest.skip(f"real feed files not found in {path} (set PATCHLEDGER_FEEDS_DIR)")
    return path
