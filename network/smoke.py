"""A smoke transaction: write through two organizations' peers, read back from the third.

Uses the ``peer`` CLI (the reference client) so that it checks the network independently of our
own Python client.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from network.config import NetworkConfig, StateLayout
from network.peercli import run_peer
from network.topology import Node, Org


class SmokeError(RuntimeError):
    """The value read back differs from the value written."""


@dataclass(frozen=True)
class SmokeResult:
    """What the smoke transaction did and how long it took."""

    key: str
    value: str
    endorsers: tuple[str, ...]
    reader: str
    read_back: str
    submit_seconds: float


def invoke(config: NetworkConfig, endorsers: tuple[Org, ...], function: str,
           args: list[str], orderer: Node | None = None) -> None:
    """Submit ``function(args)`` endorsed by ``endorsers``' peers through ``orderer`` (default
    the first) and wait for its commit.

    Raises:
        SmokeError: the peer CLI reported a failure.
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
          str(layout.ca_cert(config.topology.orderer_org.name)), "-C", config.topology.channel,
          "-n", config.chaincode.name, "-c", ctor, "--waitForEvent", *targets],
         f"invoke {function}")


def query(config: NetworkConfig, org: Org, function: str, args: list[str]) -> str:
    """Evaluate ``function(args)`` on ``org``'s peer; return its output."""
    ctor = json.dumps({"function": function, "Args": args})
    return run_peer(config, org, ["chaincode", "query", "-C", config.topology.channel,
                              "-n", config.chaincode.name, "-c", ctor], f"query {function}")


def run_smoke(config: NetworkConfig, orderer: Node | None = None) -> SmokeResult:
    """Ping with a fresh nonce as SecOps' admin, endorsed by SecOps and ITOps; read the health
    record back (``GetPing``, keyed by the writer's MSP id) from Compliance.

    Raises:
        SmokeError: the write or the read failed, or the value read differs.
    """
    orgs = config.topology.peer_orgs
    writers, reader = (orgs[0], orgs[1]), orgs[2]
    key = writers[0].msp_id
    value = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.monotonic()
    invoke(config, writers, "Ping", [value], orderer)
    elapsed = time.monotonic() - t0
    read = query(config, reader, "GetPing", [key])
    if value not in read:
        raise SmokeError(f"read back {read!r} from {reader.peer.name}, expected {value!r}")
    return SmokeResult(key, value, tuple(o.msp_id for o in writers), reader.msp_id, read,
                       elapsed)
