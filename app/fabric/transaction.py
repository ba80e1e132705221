"""An endorsed transaction, ready to be signed and submitted to the orderers."""

from __future__ import annotations

import builtins
from typing import Any

import grpc

from patchledger.app.fabric._client import GatewayClient, pick_timeout
from patchledger.app.fabric._protos import (
    common_pb2,
    gateway_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from patchledger.app.fabric.commit import SubmittedTransaction, new_commit_request
from patchledger.app.fabric.errors import MessageParseError, SubmitError


def parse_prepared_envelope(envelope: Any) -> tuple[str, bytes]:
    """Return ``(channel, result)`` of an endorsed envelope without any network call.

    Raises:
        MessageParseError: the envelope holds no parsable proposal response.
    """
    try:
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        transaction = transaction_pb2.Transaction.FromString(payload.data)
    except Exception as exc:  # protobuf DecodeError
        raise MessageParseError(f"malformed prepared transaction: {exc}") from exc
    for action in transaction.actions:
        try:
            action_payload = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
            response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
                action_payload.action.proposal_response_payload
            )
            chaincode_action = proposal_pb2.ChaincodeAction.FromString(response_payload.extension)
        except Exception:  # noqa: S112 - try the next action, as the official clients do
            continue
        return str(channel_header.channel_id), bytes(chaincode_action.response.payload)
    raise MessageParseError("no proposal response found in the prepared transaction")


class Transaction:
    """An endorsed transaction (``PreparedTransaction``).

    ``bytes`` serialises the ``gateway.PreparedTransaction``; ``digest`` is the hash of the
    envelope payload, what an offline signer signs.
    """

    def __init__(self, client: GatewayClient, prepared: Any) -> None:
        self._client = client
        self._prepared: Any = prepared
        self._channel, self._result = parse_prepared_envelope(prepared.envelope)

    @property
    def transaction_id(self) -> str:
        """The transaction id."""
        return str(self._prepared.transaction_id)

    @property
    def result(self) -> bytes:
        """The chaincode function's return value, as endorsed."""
        return self._result

    @property
    def bytes(self) -> bytes:
        """The serialised ``gateway.PreparedTransaction``."""
        return bytes(self._prepared.SerializeToString())

    @property
    def digest(self) -> builtins.bytes:
        """The hash of the envelope payload."""
        return self._client.hash(self._prepared.envelope.payload)

    def submit(self, timeout: float | None = None) -> SubmittedTransaction:
        """Sign (if unsigned) and send the transaction to the ordering service.

        Returns once the orderers accepted it; use ``get_status()`` on the result to wait
        for the commit.

        Raises:
            SubmitError: the Submit call failed.
            SigningError: the envelope is unsigned and no signer is configured.
        """
        envelope = self._prepared.envelope
        if not envelope.signature:
            envelope.signature = self._client.sign(envelope.payload)
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel,
            prepared_transaction=envelope,
        )
        try:
            self._client.gateway_stub.Submit(
                request, timeout=pick_timeout(timeout, self._client.timeouts.submit)
            )
        except grpc.RpcError as exc:
            raise self._client.wrap(exc, SubmitError, self.transaction_id) from exc
        signed = new_commit_request(self._client, self.transaction_id, self._channel)
        return SubmittedTransaction(self._client, signed, self.transaction_id, self._result)
