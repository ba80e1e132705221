"""Running the ``peer`` CLI as an organization's admin (channel joins, chaincode lifecycle,
ledger initialisation, smoke transactions)."""

from __future__ import annotations

import json
import subprocess

from patchledger.network.config import NetworkConfig, StateLayout
from patchledger.network.errors import NetworkError
from patchledger.network.nodes import admin_env
from patchledger.network.topology import Node, Org


class PeerCommandError(NetworkError):
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


def invoke(config: NetworkConfig, endorsers: tuple[Org, ...], function: str,
           args: list[str], orderer: Node | None = None) -> None:
    """Submit ``function(args)`` endorsed by ``endorsers``' peers through ``orderer`` (default
    the first) and wait for its commit.

    Raises:
        PeerCommandError: the peer CLI reported a failure (endorsement, ordering, commit).
    """
    layout = StateLayout(config.state_dir)
    targets: list[str] = []
    for org in endorsers:
        targets += ["--peerAddresses", org.peer.address,
                    "--tlsRootCertFiles", str(layout.ca_cert(org.name))]
    orderer = orderer or config.topology.orderers[0]
    ctor = json.dumps({"function": function, "Args": args})
    run_peer(config, endorsers[0],
             ["chaincode", "invoke", "-o", orderer.address, "--tls", "--cafile",
              str(layout.ca_cert(config.topology.orderer_org.name)),
              "-C", config.topology.channel, "-n", config.chaincode.name, "-c", ctor,
              "--waitForEvent", *targets],
             f"invoke {function}")


def query(config: NetworkConfig, org: Org, function: str, args: list[str]) -> str:
    """Evaluate ``function(args)`` on ``org``'s peer; return its output.

    Raises:
        PeerCommandError: the peer CLI reported a failure.
    """
    ctor = json.dumps({"function": function, "Args": args})
    return run_peer(config, org, ["chaincode", "query", "-C", config.topology.channel,
                                  "-n", config.chaincode.name, "-c", ctor],
                    f"query {function}")
