"""A transaction proposal: evaluate it (query) or endorse it (first step of a submit)."""

from __future__ import annotations

import builtins
from typing import Any

import grpc

from patchledger.app.fabric._client import GatewayClient, pick_timeout
from patchledger.app.fabric._protos import common_pb2, gateway_pb2, proposal_pb2
from patchledger.app.fabric.errors import BlockParseError, EndorseError, GatewayError
from patchledger.app.fabric.transaction import Transaction


class Proposal:
    """A signed-or-unsigned ``ProposedTransaction``.

    ``bytes`` serialises the ``gateway.ProposedTransaction``; ``digest`` is the hash of the
    proposal bytes, what an offline signer signs. The proposal is signed lazily, just before
    it is sent, and only if it carries no signature yet.
    """

    def __init__(self, client: GatewayClient, proposed: Any, channel: str) -> None:
        self._client = client
        self._proposed: Any = proposed
        self._channel = channel

    @classmethod
    def from_bytes(cls, client: GatewayClient, data: bytes) -> Proposal:
        """Rebuild a proposal from ``bytes``; the channel is read from its ChannelHeader.

        Raises:
            BlockParseError: the bytes are not a ProposedTransaction.
        """
        try:
            proposed = gateway_pb2.ProposedTransaction.FromString(data)
            proposal = proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes)
            header = common_pb2.Header.FromString(proposal.header)
            channel = common_pb2.ChannelHeader.FromString(header.channel_header).channel_id
        except Exception as exc:
            raise BlockParseError(f"malformed proposal bytes: {exc}") from exc
        return cls(client, proposed, str(channel))

    @property
    def transaction_id(self) -> str:
        """The transaction id."""
        return str(self._proposed.transaction_id)

    @property
    def channel(self) -> str:
        """The channel name."""
        return self._channel

    @property
    def bytes(self) -> bytes:
        """The serialised ``gateway.ProposedTransaction``."""
        return bytes(self._proposed.SerializeToString())

    @property
    def digest(self) -> builtins.bytes:
        """The hash of the proposal bytes."""
        return self._client.hash(self._proposed.proposal.proposal_bytes)

    @property
    def endorsing_organizations(self) -> tuple[str, ...]:
        """The organizations chosen to endorse (empty: the gateway decides)."""
        return tuple(self._proposed.endorsing_organizations)

    def _signed_proposal(self) -> Any:
        signed = self._proposed.proposal
        if not signed.signature:
            signed.signature = self._client.sign(signed.proposal_bytes)
        return signed

    def evaluate(self, timeout: float | None = None) -> builtins.bytes:
        """Run the transaction on one peer without updating the ledger; return its result.

        Raises:
            GatewayError: the Evaluate call failed (e.g. the chaincode returned an error).
            SigningError: the proposal is unsigned and no signer is configured.
        """
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel,
            proposed_transaction=self._signed_proposal(),
            target_organizations=self.endorsing_organizations,
        )
        try:
            response = self._client.gateway_stub.Evaluate(
                request, timeout=pick_timeout(timeout, self._client.timeouts.evaluate)
            )
        except grpc.RpcError as exc:
            raise self._client.wrap(exc, GatewayError, self.transaction_id) from exc
        return bytes(response.result.payload)

    def endorse(self, timeout: float | None = None) -> Transaction:
        """Collect endorsements for the proposal and return the prepared transaction.

        Raises:
            EndorseError: the Endorse call failed (with each failing peer in ``details``).
            SigningError: the proposal is unsigned and no signer is configured.
        """
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel,
            proposed_transaction=self._signed_proposal(),
            endorsing_organizations=self.endorsing_organizations,
        )
        try:
            response = self._client.gateway_stub.Endorse(
                request, timeout=pick_timeout(timeout, self._client.timeouts.endorse)
            )
        except grpc.RpcError as exc:
            raise self._client.wrap(exc, EndorseError, self.transaction_id) from exc
        prepared = gateway_pb2.PreparedTransaction(
            transaction_id=self.transaction_id, envelope=response.prepared_transaction
        )
        try:
            return Transaction(self._client, prepared)
        except BlockParseError as exc:
            raise EndorseError(
                f"the gateway returned an unusable endorsed transaction: {exc}",
                code=grpc.StatusCode.INTERNAL,
                transaction_id=self.transaction_id,
                endpoint=self._client.endpoint,
            ) from exc
