"""Opening the dispatcher's ledger adapter: a gateway on the organization's own peer and one on
every other endorsing organization's peer, all as the same identity."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from patchledger.app.dispatch.ledger import FabricLedger
from patchledger.app.errors import UserError
from patchledger.app.fabric import EcdsaSigner, Identity, connect, create_channel
from patchledger.network.config import NetworkConfig, StateLayout

__all__ = ["PeerEndpoint", "local_peers", "open_ledger"]


@dataclass(frozen=True)
class PeerEndpoint:
    """A peer: its organization, ``host:port`` and the TLS root it is pinned to."""

    msp_id: str
    address: str
    tls_ca: bytes


def local_peers(config: NetworkConfig) -> list[PeerEndpoint]:
    """The peers of a network this machine runs (from its configuration and state).

    Raises:
        UserError: a CA certificate is missing (the network was never created).
    """
    layout = StateLayout(config.state_dir)
    out = []
    for org in config.topology.peer_orgs:
        path = layout.ca_cert(org.name)
        if not path.is_file():
            raise UserError(f"no CA certificate for {org.msp_id} at {path}: is the network at "
                            f"{config.state_dir} created?")
        out.append(PeerEndpoint(org.msp_id, org.peer.address, path.read_bytes()))
    return out


@contextmanager
def open_ledger(identity: Identity, signer: EcdsaSigner, peers: Sequence[PeerEndpoint],
                *, channel: str, chaincode: str = "patchledger") -> Iterator[FabricLedger]:
    """A :class:`FabricLedger` as ``identity`` on its organization's peer, waiting for commits
    on the others; the channels are closed on exit.

    Raises:
        UserError: no peer of the identity's organization is given.
    """
    own = [p for p in peers if p.msp_id == identity.msp_id]
    if not own:
        raise UserError(f"no peer of {identity.msp_id} among {[p.msp_id for p in peers]}")
    ordered = own + [p for p in peers if p.msp_id != identity.msp_id]
    channels = [create_channel(p.address, tls_root_certificates=p.tls_ca) for p in ordered]
    try:
        gateways = [connect(identity, signer, ch, endpoint=p.address)
                    for p, ch in zip(ordered, channels, strict=True)]
        yield FabricLedger(gateways[0], gateways[1:], channel=channel, chaincode=chaincode)
    finally:
        for ch in channels:
            ch.close()
