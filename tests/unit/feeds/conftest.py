"""Fixtures for the feeds tests: the real data files of the shared feeds folder.

The folder is a setting: ``$PATCHLEDGER_FEEDS_DIR``, else ``<repo>/../shared/feeds``. Tests that
need it are skipped, with the path in the reason, when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchledger.app.feeds.loader import ImportReport, Loader
from patchledger.app.feeds.matching import Matcher
from patchledger.app.feeds.merge import Vulnerability, merge
from tests.support.feeds import required_feeds_dir


@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    return required_feeds_dir()


@pytest.fixture(scope="session")
def full_import(feeds_dir: Path) -> ImportReport:
    return Loader().load([feeds_dir])


@pytest.fixture(scope="session")
def vulns(full_import: ImportReport) -> dict[str, Vulnerability]:
    return merge(full_import.advisories)


@pytest.fixture(scope="session")
def matcher(vulns: dict[str, Vulnerability]) -> Matcher:
    return Matcher(vulns)
