"""Connecting to a Fabric Gateway peer.

Example::

    channel = create_channel("127.0.0.1:7051", tls_root_certificates=tls_ca_pem)
    identity = Identity.from_msp_dir(msp_dir, "SecOpsMSP")
    signer = EcdsaSigner.from_msp_dir(msp_dir)
    with connect(identity, signer, channel, endpoint="127.0.0.1:7051") as gateway:
        contract = gateway.get_network("patches").get_contract("patchledger")
        result = contract.submit_transaction("ProposePatch", "P-1", "{...}")
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import grpc

from patchledger.app.fabric._client import GatewayClient, Timeouts
from patchledger.app.fabric._protos import gateway_pb2
from patchledger.app.fabric.commit import Commit
from patchledger.app.fabric.errors import MessageParseError
from patchledger.app.fabric.identity import Identity
from patchledger.app.fabric.network import Network
from patchledger.app.fabric.proposal import Proposal
from patchledger.app.fabric.signing import HashFn, Signer, sha256
from patchledger.app.fabric.transaction import Transaction


class Gateway:
    """A connection, for one identity, to the Gateway service of a peer.

    The gRPC channel belongs to the caller: :meth:`close` leaves it open, so one channel can
    serve many gateways (one per user identity, for instance).
    """

    def __init__(self, client: GatewayClient) -> None:
        self._client = client

    @property
    def identity(self) -> Identity:
        """The client identity."""
        return self._client.identity

    @property
    def timeouts(self) -> Timeouts:
        """The default per-phase timeouts."""
        return self._client.timeouts

    def get_network(self, channel: str) -> Network:
        """Return the network (channel) named ``channel``."""
        return Network(self._client, channel)

    def new_proposal(self, data: bytes) -> Proposal:
        """Rebuild an unsigned proposal from its ``bytes``.

        Raises:
            MessageParseError: malformed bytes.
        """
        return Proposal.from_bytes(self._client, data)

    def new_signed_proposal(self, data: bytes, signature: bytes) -> Proposal:
        """Rebuild a proposal from its ``bytes`` and attach an offline-made signature.

        The signature is normalised to low S (with the identity certificate's curve order).

        Raises:
            MessageParseError: malformed bytes.
            SigningError: the signature is not a DER ECDSA signature.
        """
        proposed = gateway_pb2.ProposedTransaction.FromString(self.new_proposal(data).bytes)
        proposed.proposal.signature = self._client.normalise(signature)
        return Proposal.from_bytes(self._client, proposed.SerializeToString())

    def new_transaction(self, data: bytes) -> Transaction:
        """Rebuild an endorsed transaction from its ``bytes``.

        Raises:
            MessageParseError: malformed bytes.
        """
        return Transaction(self._client, _parse(gateway_pb2.PreparedTransaction, data))

    def new_signed_transaction(self, data: bytes, signature: bytes) -> Transaction:
        """Rebuild an endorsed transaction and attach an offline-made signature (made low S).

        Raises:
            MessageParseError: malformed bytes.
            SigningError: the signature is not a DER ECDSA signature.
        """
        prepared = _parse(gateway_pb2.PreparedTransaction, data)
        prepared.envelope.signature = self._client.normalise(signature)
        return Transaction(self._client, prepared)

    def new_commit(self, data: bytes) -> Commit:
        """Rebuild a commit-status request from its ``bytes``.

        Raises:
            MessageParseError: malformed bytes.
        """
        signed = _parse(gateway_pb2.SignedCommitStatusRequest, data)
        request = _parse(gateway_pb2.CommitStatusRequest, signed.request)
        return Commit(self._client, signed, str(request.transaction_id))

    def new_signed_commit(self, data: bytes, signature: bytes) -> Commit:
        """Rebuild a commit-status request and attach an offline-made signature (made low S).

        Raises:
            MessageParseError: malformed bytes.
            SigningError: the signature is not a DER ECDSA signature.
        """
        signed = _parse(gateway_pb2.SignedCommitStatusRequest, data)
        signed.signature = self._client.normalise(signature)
        return self.new_commit(signed.SerializeToString())

    def close(self) -> None:
        """Release the gateway. The gRPC channel is left open (the caller owns it)."""

    def __enter__(self) -> Gateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _parse(message_class: Any, data: bytes) -> Any:
    """``data`` parsed as a ``message_class``.

    Raises:
        MessageParseError: ``data`` is not such a message (protobuf parses many byte strings,
            the empty one included, as messages with every field unset: those are refused too).
    """
    try:
        message = message_class.FromString(data)
    except Exception as exc:  # protobuf DecodeError
        raise MessageParseError(f"malformed {message_class.__name__} bytes: {exc}") from exc
    if not message.ListFields():
        raise MessageParseError(f"malformed {message_class.__name__} bytes: no field is set")
    return message


def connect(
    identity: Identity,
    signer: Signer | None,
    channel: grpc.Channel,
    *,
    endpoint: str = "",
    hash_fn: HashFn = sha256,
    timeouts: Timeouts | None = None,
    tls_client_certificate_hash: bytes = b"",
) -> Gateway:
    """Create a :class:`Gateway` for ``identity`` over an existing gRPC channel.

    Args:
        identity: the client identity (MSP id and certificate).
        signer: signs digests; ``None`` for the offline-signing flow only.
        channel: a gRPC channel to the peer (see :func:`app.fabric.channel.create_channel`).
        endpoint: the peer's address, used only to name it in error messages.
        hash_fn: the message hash (SHA-256 for every SHA2-family MSP).
        timeouts: per-phase default deadlines.
        tls_client_certificate_hash: SHA-256 of the client TLS certificate (DER) when the
            peer requires mutual TLS; bound into block-event requests.
    """
    client = GatewayClient(
        channel,
        identity,
        signer,
        hash_fn=hash_fn,
        timeouts=timeouts or Timeouts(),
        endpoint=endpoint,
        tls_client_certificate_hash=tls_client_certificate_hash,
    )
    return Gateway(client)
