"""The integration test session's Fabric network: started once, always torn down.

The network runs in a temporary state directory on its own port base
(``PATCHLEDGER_TEST_PORT_BASE``, default 27000), so a developer's demo network on the default
ports is not disturbed. ``PATCHLEDGER_KEEP_TEST_NETWORK=1`` keeps its state (stopped) for
debugging.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.errors import UserError
from network.config import NetworkConfig, StateLayout, config_from_env
from network.manager import Manager
from network.topology import Org


@dataclass
class LocalNetwork:
    """Handle on the running test network."""

    manager: Manager

    @property
    def config(self) -> NetworkConfig:
        return self.manager.config

    @property
    def layout(self) -> StateLayout:
        return self.manager.layout

    def org(self, name: str) -> Org:
        return self.config.topology.org(name)

    def admin_msp(self, org: str) -> Path:
        """The organization admin's MSP directory (signcerts/, keystore/)."""
        return self.layout.user_dir(self.org(org).name, "admin") / "msp"

    def ca_cert(self, org: str) -> Path:
        """The organization's root certificate (TLS and enrollment)."""
        return self.layout.ca_cert(self.org(org).name)


def _progress(line: str) -> None:
    print(f"[test network] {line}", file=sys.stderr, flush=True)


def make_network_config(state_dir: Path) -> NetworkConfig:
    """Configuration of a test network in ``state_dir`` (factory, used by misuse tests too)."""
    env = dict(os.environ)
    env["PATCHLEDGER_STATE_DIR"] = str(state_dir)
    env["PATCHLEDGER_PORT_BASE"] = env.get("PATCHLEDGER_TEST_PORT_BASE", "27000")
    try:
        return config_from_env(env)
    except ValueError as exc:
        pytest.fail(f"cannot configure the test network: {exc}")


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    """A running network for the whole session; stopped and removed at the end."""
    state = tmp_path_factory.mktemp("fabric") / "network"
    manager = Manager(make_network_config(state), _progress)
    try:
        try:
            manager.up()
        except UserError as exc:
            pytest.fail(f"test network did not start: {exc}")
        yield LocalNetwork(manager)
    finally:
        manager.down()
        if not os.environ.get("PATCHLEDGER_KEEP_TEST_NETWORK"):
            shutil.rmtree(state, ignore_errors=True)
