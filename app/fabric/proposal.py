"""A transaction proposal: evaluate it (query) or endorse it (first step of a submit), and
the options a proposal is built with."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict, Unpack

import grpc

from patchledger.app.fabric._client import GatewayClient, pick_timeout
from patchledger.app.fabric._protos import common_pb2, gateway_pb2, proposal_pb2
from patchledger.app.fabric.errors import EndorseError, GatewayError, MessageParseError
from patchledger.app.fabric.transaction import Transaction
from patchledger.app.fabric.transaction_context import Argument


class ProposalKeywords(TypedDict, total=False):
    """The fields of :class:`ProposalOptions` other than ``arguments``, as keyword arguments
    (``contract.submit("F", ["a"], endorsing_organizations=["SecOpsMSP"])``)."""

    transient_data: Mapping[str, bytes] | None
    endorsing_organizations: Sequence[str]


def _read_only(data: Mapping[str, bytes] | None) -> Mapping[str, bytes]:
    return MappingProxyType(dict(data or {}))


@dataclass(frozen=True)
class ProposalOptions:
    """What a proposal carries besides the transaction name (fabric-gateway's
    ``ProposalOptions``). Immutable: the sequences are kept as tuples, the mapping as a
    read-only copy, so one options object can be reused for many proposals.

    Attributes:
        arguments: the transaction function's arguments; ``str`` is UTF-8 encoded.
        transient_data: private inputs for the chaincode, not recorded on the ledger.
        endorsing_organizations: MSP ids whose peers must endorse, or on whose peer an
            evaluation runs (empty: the gateway chooses).
    """

    arguments: Sequence[Argument] = ()
    transient_data: Mapping[str, bytes] = field(default_factory=lambda: _read_only(None))
    endorsing_organizations: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", tuple(self.arguments))
        object.__setattr__(self, "transient_data", _read_only(self.transient_data))
        object.__setattr__(self, "endorsing_organizations", tuple(self.endorsing_organizations))

    @classmethod
    def of(
        cls,
        arguments: Sequence[Argument] | ProposalOptions = (),
        **keywords: Unpack[ProposalKeywords],
    ) -> ProposalOptions:
        """The options of a ``Contract`` call: ``arguments`` is an options object or the
        argument list; each keyword given replaces that field.

        Raises:
            TypeError: a keyword that is not a proposal option.
        """
        unknown = sorted(set(keywords) - ProposalKeywords.__optional_keys__)
        if unknown:
            raise TypeError(f"unknown proposal option(s): {', '.join(unknown)}")
        base = arguments if isinstance(arguments, ProposalOptions) else cls(arguments)
        if not keywords:
            return base
        return cls(
            base.arguments,
            _read_only(keywords.get("transient_data", base.transient_data)),
            keywords.get("endorsing_organizations", base.endorsing_organizations),
        )


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
            MessageParseError: the bytes are not a ProposedTransaction with a transaction id
                and a channel.
        """
        try:
            proposed = gateway_pb2.ProposedTransaction.FromString(data)
            proposal = proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes)
            header = common_pb2.Header.FromString(proposal.header)
            channel = common_pb2.ChannelHeader.FromString(header.channel_header).channel_id
        except Exception as exc:  # protobuf DecodeError
            raise MessageParseError(f"malformed ProposedTransaction bytes: {exc}") from exc
        if not proposed.transaction_id or not channel:
            raise MessageParseError("malformed ProposedTransaction bytes: no transaction id "
                                    "or no channel")
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
        except MessageParseError as exc:
            raise EndorseError(
                f"the gateway returned an unusable endorsed transaction: {exc}",
                code=grpc.StatusCode.INTERNAL,
                transaction_id=self.transaction_id,
                endpoint=self._client.endpoint,
            ) from exc
