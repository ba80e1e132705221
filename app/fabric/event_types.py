"""Values delivered by the event streams."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChaincodeEvent:
    """A chaincode event emitted by a committed (VALID) transaction.

    Attributes:
        block_number: the block holding the transaction.
        transaction_id: the emitting transaction.
        chaincode_name: the chaincode that emitted the event.
        event_name: the event name set by the chaincode.
        payload: the event payload.
    """

    block_number: int
    transaction_id: str
    chaincode_name: str
    event_name: str
    payload: bytes
