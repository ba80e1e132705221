"""Fixtures for the feeds tests: the real data files of the shared feeds folder.

The folder is a setting: ``$PATCHLEDGER_FEEDS_DIR``, else ``<repo>/../shared/feeds``. Tests that
need it are skipped, with the path in the reason, when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patchledger.app.feeds.loader import ImportReport, Loader
from patchledger.app.feeds.matching import Matcher
from patchledger.app.feeds.merge import Vulnerability, merge

REPO_ROOT = Path(__file__).resolve().parents[3]


def _feeds_dir() -> Path:
    configured = os.environ.get("PATCHLEDGER_FEEDS_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "feeds"


@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    path = _feeds_dir()
    if not (path / "kev" / "known_exploited_vulnerabilities.json").is_file():
        pytest.skip(f"real feed files not found in {path} (set PATCHLEDGER_FEEDS_DIR)")
    return path


@pytest.fixture(scope="session")
def full_import(feeds_dir: Path) -> ImportReport:
    return Loader().load([feeds_dir])


@pytest.fixture(scope="session")
def vulns(full_import: ImportReport) -> dict[str, Vulnerability]:
    return merge(full_import.advisories)


@pytest.fixture(scope="session")
def matcher(vulns: dict[str, Vulnerability]) -> Matcher:
    return Matcher(vulns)
