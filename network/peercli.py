"""Running the ``peer`` CLI as an organization's admin (channel joins, chaincode lifecycle,
smoke transactions)."""

from __future__ import annotations

import subprocess

from network.config import NetworkConfig
from network.nodes import admin_env
from network.topology import Org


class PeerCommandError(RuntimeError):
    """A ``peer`` command failed; the message names the organization, the step and the peer
    CLI's last error line."""


def run_peer(config: NetworkConfig, org: Org, args: list[str], step: str,
             timeout: float = 120) -> str:
    """Run ``peer ARGS`` as ``org``'s admin against its own peer; return its standard output.

    Raises:
        PeerCommandError: the command exited non-zero or timed out.
    """
    argv = [str(config.binary("peer")), *args]
    try:
        result = subprocess.run(argv, env=admin_env(config, org), capture_output=True,
                                text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise PeerCommandError(f"{org.name} ({org.msp_id}): {step} timed out after "
                               f"{timeout:.0f} s") from exc
    if result.returncode != 0:
        lines = [ln.strip() for ln in result.stderr.strip().splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise PeerCommandError(f"{org.name} ({org.msp_id}): {step} failed: {reason}")
    return result.stdout.strip()
