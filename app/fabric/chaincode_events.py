"""Chaincode events through the Gateway ``ChaincodeEvents`` service."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any

from patchledger.app.fabric._client import GatewayClient
from patchledger.app.fabric._protos import ab_pb2, gateway_pb2
from patchledger.app.fabric.checkpoint import Checkpoint
from patchledger.app.fabric.event_stream import EventStream
from patchledger.app.fabric.event_types import ChaincodeEvent


def start_position(start_block: int | None, checkpoint: Checkpoint | None) -> tuple[Any, str]:
    """Return ``(SeekPosition, after_transaction_id)`` for a chaincode-events request.

    A non-empty checkpoint wins over ``start_block``; without either the stream starts at
    the next block committed.
    """
    if checkpoint is not None and (checkpoint.block_number or checkpoint.transaction_id):
        position = ab_pb2.SeekPosition(
            specified=ab_pb2.SeekSpecified(number=checkpoint.block_number)
        )
        return position, checkpoint.transaction_id
    if start_block is not None:
        return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block)), ""
    return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit()), ""


class ChaincodeEventsRequest:
    """A signable request for the chaincode events of one chaincode.

    ``bytes`` serialises the ``SignedChaincodeEventsRequest``; ``digest`` is the hash of the
    inner request, what an offline signer signs.
    """

    def __init__(self, client: GatewayClient, signed: Any, chaincode_name: str) -> None:
        self._client = client
        self._signed = signed
        self._chaincode_name = chaincode_name

    @classmethod
    def new(
        cls,
        client: GatewayClient,
        channel: str,
        chaincode_name: str,
        *,
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> ChaincodeEventsRequest:
        """Build an unsigned request (see :func:`start_position`)."""
        position, after = start_position(start_block, checkpoint)
        request = gateway_pb2.ChaincodeEventsRequest(
            channel_id=channel,
            chaincode_id=chaincode_name,
            identity=client.identity.creator,
            start_position=position,
            after_transaction_id=after,
        )
        signed = gateway_pb2.SignedChaincodeEventsRequest(request=request.SerializeToString())
        return cls(client, signed, chaincode_name)

    @property
    def bytes(self) -> builtins.bytes:
        """The serialised ``gateway.SignedChaincodeEventsRequest``."""
        return builtins.bytes(self._signed.SerializeToString())

    @property
    def digest(self) -> builtins.bytes:
        """The hash of the inner request bytes."""
        return self._client.hash(self._signed.request)

    def get_events(self) -> EventStream[ChaincodeEvent]:
        """Open the stream. Iterating raises :class:`EventsError` if it fails.

        Raises:
            SigningError: the request is unsigned and no signer is configured.
        """
        if not self._signed.signature:
            self._signed.signature = self._client.sign(self._signed.request)
        call = self._client.gateway_stub.ChaincodeEvents(self._signed)
        return EventStream(call, _flatten, f"chaincode events of {self._chaincode_name}")


def _flatten(responses: Iterator[Any]) -> Iterator[ChaincodeEvent]:
    for response in responses:
        number = int(response.block_number)
        for event in response.events:
            yield ChaincodeEvent(
                number,
                str(event.tx_id),
                str(event.chaincode_id),
                str(event.event_name),
                builtins.bytes(event.payload),
            )
