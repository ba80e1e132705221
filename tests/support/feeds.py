"""Where the real shared feed files are: the setting ``$PATCHLEDGER_FEEDS_DIR``, else
``<repo>/../shared/feeds`` (read at the test edge; the feeds and reliability tests use it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: A file every copy of the shared folder has; its absence means the folder is missing.
MARKER = Path("kev") / "known_exploited_vulnerabilities.json"


def shared_feeds_dir() -> Path:
    """The configured shared feeds folder (it may not exist: check :data:`MARKER`)."""
    configured = os.environ.get("PATCHLEDGER_FEEDS_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "feeds"


def required_feeds_dir() -> Path:
    """The shared feeds folder, or skip the test naming the path when it is missing."""
    path = shared_feeds_dir()
    if not (path / MARKER).is_file():
        pytest.skip(f"real feed files not found in {path} (set PATCHLEDGER_FEEDS_DIR)")
    return path
