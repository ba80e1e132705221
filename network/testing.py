"""Helpers for tests that run against a local network: a handle on a running network and a
configuration factory for networks in temporary state directories.

The test port base comes from ``PATCHLEDGER_TEST_PORT_BASE`` (default 27000), so a developer's
demo network on the default ports is not disturbed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from network.config import NetworkConfig, StateLayout, config_from_env
from network.manager import Manager
from network.topology import Org

TEST_PORT_BASE = "27000"


@dataclass
class LocalNetwork:
    """Handle on a running network."""

    manager: Manager

    @property
    def config(self) -> NetworkConfig:
        return self.manager.config

    @property
    def layout(self) -> StateLayout:
        return self.manager.layout

    def org(self, name: str) -> Org:
        """The organization called ``name`` (short name or MSP id)."""
        return self.config.topology.org(name)

    def admin_msp(self, org: str) -> Path:
        """The organization admin's MSP directory (signcerts/, keystore/, cacerts/)."""
        return self.layout.user_dir(self.org(org).name, "admin") / "msp"

    def admin_tls(self, org: str) -> Path:
        """The organization admin's TLS client material (server.crt, server.key, ca.crt)."""
        return self.layout.user_dir(self.org(org).name, "admin") / "tls"

    def ca_cert(self, org: str) -> Path:
        """The organization's root certificate (its CA; trust anchor for TLS too)."""
        return self.layout.ca_cert(self.org(org).name)

    def ca_bootstrap_secret(self, org: str) -> str:
        """The bootstrap admin secret of the organization's CA (for registering test users)."""
        secrets: dict[str, str] = json.loads(self.layout.secrets.read_text())
        return secrets[f"{self.org(org).name}/ca-bootstrap"]


def make_network_config(state_dir: Path, env: dict[str, str] | None = None) -> NetworkConfig:
    """Configuration of a test network in ``state_dir`` on the test port base.

    Raises:
        ValueError: no Fabric install is known, or a variable is invalid.
    """
    env = dict(os.environ if env is None else env)
    env["PATCHLEDGER_STATE_DIR"] = str(state_dir)
    env["PATCHLEDGER_PORT_BASE"] = env.get("PATCHLEDGER_TEST_PORT_BASE", TEST_PORT_BASE)
    return config_from_env(env)
