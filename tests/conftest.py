"""Options of the whole test suite (a root conftest, so they are known in every invocation)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the reliability suite's long form (as PATCHLEDGER_RELIABILITY_LONG=1; "
        "docs/reliability.md)",
    )
