"""A smoke transaction: write through two organizations' peers, read back from the third.

Uses the ``peer`` CLI (the reference client) so that it checks the network independently of our
own Python client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from patchledger.network.config import NetworkConfig
from patchledger.network.errors import NetworkError
from patchledger.network.peercli import invoke, query
from patchledger.network.topology import Node

#: Seconds the third organization's peer gets to commit the block before the smoke fails.
READ_BACK_TIMEOUT = 15.0


class SmokeError(NetworkError):
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
    # The invoke returns once the endorsing peers committed; the reader's peer receives the
    # block a moment later, so poll it briefly before calling the value missing.
    deadline = time.monotonic() + READ_BACK_TIMEOUT
    while value not in (read := query(config, reader, "GetPing", [key])):
        if time.monotonic() > deadline:
            raise SmokeError(f"read back {read!r} from {reader.peer.name} after "
                             f"{READ_BACK_TIMEOUT:.0f} s, expected {value!r}")
        time.sleep(0.2)
    return SmokeResult(key, value, tuple(o.msp_id for o in writers), reader.msp_id, read,
                       elapsed)
