"""Typed connection settings for the Fabric client (the environment is read only by the CLI)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from patchledger.app.fabric._client import Timeouts
from patchledger.app.fabric.ca_client import CAClient
from patchledger.app.fabric.channel import create_channel
from patchledger.app.fabric.errors import FabricError, IdentityError
from patchledger.app.fabric.gateway import Gateway, connect
from patchledger.app.fabric.identity import Identity
from patchledger.app.fabric.signing import EcdsaSigner
from patchledger.app.fabric.wallet import Wallet


@dataclass(frozen=True)
class PeerConfig:
    """How to reach a gateway peer.

    Attributes:
        endpoint: ``host:port``.
        tls_ca_cert: the peer's TLS CA certificate file (pinned root).
        server_name_override: TLS name to expect when it differs from the dialled host.
        tls_client_cert: client certificate for mutual TLS.
        tls_client_key: client key for mutual TLS.
        insecure: plain text (TLS-disabled development networks only).
    """

    endpoint: str
    tls_ca_cert: Path | None = None
    server_name_override: str = ""
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None
    insecure: bool = False


@dataclass(frozen=True)
class IdentitySource:
    """Where the client identity comes from: an MSP directory, or a wallet entry.

    Attributes:
        msp_id: the MSP id of the identity.
        msp_dir: an MSP directory (``signcerts/`` + ``keystore/``).
        wallet_dir: a wallet directory (used when ``msp_dir`` is not set).
        wallet_label: the wallet entry.
        wallet_passphrase: the wallet passphrase.
    """

    msp_id: str
    msp_dir: Path | None = None
    wallet_dir: Path | None = None
    wallet_label: str = ""
    wallet_passphrase: str = field(default="", repr=False)

    def load(self) -> tuple[Identity, EcdsaSigner]:
        """Load the identity and its signer.

        Raises:
            IdentityError: neither source is configured, or loading failed.
            WalletError: the wallet entry cannot be opened.
        """
        if self.msp_dir is not None:
            identity = Identity.from_msp_dir(self.msp_dir, self.msp_id)
            signer = EcdsaSigner.from_msp_dir(self.msp_dir)
        elif self.wallet_dir is not None and self.wallet_label:
            identity, signer = Wallet(self.wallet_dir, self.wallet_passphrase).get(
                self.wallet_label
            )
        else:
            raise IdentityError("no identity configured: give an MSP directory or a wallet label")
        if not signer.matches(identity.certificate):
            raise IdentityError("the private key does not match the certificate")
        return identity, signer


@dataclass(frozen=True)
class FabricConfig:
    """Everything needed to talk to one channel through one peer.

    Attributes:
        peer: the gateway peer.
        identity: the client identity.
        channel: the channel name.
        chaincode: the chaincode name.
        timeouts: per-phase default deadlines.
    """

    peer: PeerConfig
    identity: IdentitySource
    channel: str = "patchledger"
    chaincode: str = "patchledger"
    timeouts: Timeouts = field(default_factory=Timeouts)

    @contextmanager
    def connect(self) -> Iterator[Gateway]:
        """Open the gRPC channel and a gateway; both are closed on exit.

        Raises:
            FabricError: unreadable TLS files or identity.
        """
        identity, signer = self.identity.load()
        peer = self.peer
        client_cert = _read(peer.tls_client_cert) if peer.tls_client_cert else None
        channel = create_channel(
            peer.endpoint,
            tls_root_certificates=_read(peer.tls_ca_cert) if peer.tls_ca_cert else None,
            server_name_override=peer.server_name_override,
            client_key=_read(peer.tls_client_key) if peer.tls_client_key else None,
            client_certificate=client_cert,
            insecure=peer.insecure,
        )
        try:
            with connect(
                identity,
                signer,
                channel,
                endpoint=peer.endpoint,
                timeouts=self.timeouts,
                tls_client_certificate_hash=_cert_hash(client_cert) if client_cert else b"",
            ) as gateway:
                yield gateway
        finally:
            channel.close()


@dataclass(frozen=True)
class CAConfig:
    """How to reach a Fabric CA."""

    url: str
    tls_ca_cert: Path | None = None
    ca_name: str = ""
    timeout: float = 10.0

    def client(self) -> CAClient:
        """Build the client.

        Raises:
            FabricError: the TLS certificate file cannot be read.
            CAError: invalid URL or certificate.
        """
        tls = _read(self.tls_ca_cert) if self.tls_ca_cert else None
        return CAClient(
            self.url, tls_ca_certificate=tls, ca_name=self.ca_name, timeout=self.timeout
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FabricError(f"cannot read {path}: {exc}") from exc


def _cert_hash(pem: bytes) -> bytes:
    cert = x509.load_pem_x509_certificate(pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
