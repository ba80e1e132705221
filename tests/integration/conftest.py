"""The integration test session's Fabric network: started once, always torn down.

The network runs in a temporary state directory on its own port base (see network.testing).
``PATCHLEDGER_KEEP_TEST_NETWORK=1`` keeps its state (stopped) for debugging.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator

import pytest

from app.errors import UserError
from network.manager import Manager
from network.testing import LocalNetwork, make_network_config


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _progress(line: str) -> None:
    print(f"[test network] {line}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    """A running network for the whole session; stopped and removed at the end."""
    state = tmp_path_factory.mktemp("fabric") / "network"
    try:
        config = make_network_config(state)
    except ValueError as exc:
        pytest.fail(f"cannot configure the test network: {exc}")
    manager = Manager(config, _progress)
    # A SIGTERM (CI timeout) unwinds through the finally below instead of leaving the network.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        try:
            manager.up()
        except UserError as exc:
            pytest.fail(f"test network did not start: {exc}")
        yield LocalNetwork(manager)
    finally:
        signal.signal(signal.SIGTERM, previous)
        manager.down()
        if not os.environ.get("PATCHLEDGER_KEEP_TEST_NETWORK"):
            shutil.rmtree(state, ignore_errors=True)
