"""Fixtures of the browser tests: Debian's chromium through Playwright, and the integration
session's real Fabric network (tests/conftest.py) for the three-organization
test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "tmp" / "test-artifacts"



@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium (``executable_path``; never ``playwright install``)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (scripts/install.sh installs it)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox"])
        yield chromium
        chromium.close()


def shot(page: Any, name: str) -> None:
    """A full-page screenshot into tmp/test-artifacts/ (not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """``app`` served by waitress on 127.0.0.1:``port`` in a thread; its base URL."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        thread.join(timeout=5)
