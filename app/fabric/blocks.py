"""Parsing full blocks into transactions (id, creator, validation code, chaincode call, event).

Parsing is tolerant: an envelope that cannot be decoded yields a transaction with ``error``
set instead of failing the whole block, so an event consumer sees every position.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from patchledger.app.fabric._protos import (
    chaincode_event_pb2,
    chaincode_pb2,
    common_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from patchledger.app.fabric.commit import validation_code_name
from patchledger.app.fabric.errors import BlockParseError, IdentityError
from patchledger.app.fabric.event_types import ChaincodeEvent
from patchledger.app.fabric.identity import parse_serialized_identity

INVALID_OTHER_REASON = 255


@dataclass(frozen=True)
class ParsedTransaction:
    """One envelope of a block.

    Attributes:
        index: position in the block.
        transaction_id: the tx id ("" for config transactions).
        header_type: the ChannelHeader type name (ENDORSER_TRANSACTION, CONFIG, ...).
        channel_id: the channel.
        timestamp: the client timestamp (UTC), if set.
        creator_msp_id: the creator's MSP id ("" if absent).
        creator_certificate: the creator's PEM certificate.
        validation_code: the TxValidationCode from the block metadata.
        chaincode_name: the invoked chaincode (endorser transactions).
        function: the invoked function name (first chaincode argument).
        arguments: the remaining chaincode arguments.
        event: the chaincode event, if the transaction set one.
        error: why the envelope could not be fully parsed ("" when it was).
        block_number: the block holding the transaction.
        last_in_block: True for the block's last envelope (checkpointing completes the block).
    """

    index: int
    transaction_id: str
    header_type: str
    channel_id: str
    timestamp: dt.datetime | None
    creator_msp_id: str
    creator_certificate: bytes
    validation_code: int
    chaincode_name: str = ""
    function: str = ""
    arguments: tuple[bytes, ...] = ()
    event: ChaincodeEvent | None = None
    error: str = ""
    block_number: int = 0
    last_in_block: bool = False

    @property
    def valid(self) -> bool:
        """True when the transaction was committed VALID."""
        return self.validation_code == 0

    @property
    def validation_code_name(self) -> str:
        """The validation code name, e.g. ``MVCC_READ_CONFLICT``."""
        return validation_code_name(self.validation_code)


@dataclass(frozen=True)
class ParsedBlock:
    """A block with its transactions parsed; ``raw`` is the ``common.Block`` message."""

    number: int
    previous_hash: bytes
    data_hash: bytes
    transactions: tuple[ParsedTransaction, ...]
    raw: Any = field(repr=False, compare=False)


def validation_flags(block: Any) -> bytes:
    """The raw TRANSACTIONS_FILTER bytes of a block (one code per transaction)."""
    metadata = block.metadata.metadata
    index = common_pb2.TRANSACTIONS_FILTER
    return bytes(metadata[index]) if len(metadata) > index else b""


def parse_block(block: Any) -> ParsedBlock:
    """Parse a ``common.Block`` message.

    Raises:
        BlockParseError: the block has no header.
    """
    if not block.HasField("header"):
        raise BlockParseError("block has no header")
    number = int(block.header.number)
    flags = validation_flags(block)
    count = len(block.data.data)
    transactions = tuple(
        dataclasses.replace(
            parse_envelope(data, index, number, flags[index] if index < len(flags) else None),
            block_number=number,
            last_in_block=index == count - 1,
        )
        for index, data in enumerate(block.data.data)
    )
    return ParsedBlock(
        number,
        bytes(block.header.previous_hash),
        bytes(block.header.data_hash),
        transactions,
        block,
    )


def parse_envelope(
    data: bytes, index: int, block_number: int, flag: int | None
) -> ParsedTransaction:
    """Parse one envelope of block ``block_number``; never raises."""
    code = INVALID_OTHER_REASON if flag is None else flag
    try:
        envelope = common_pb2.Envelope.FromString(data)
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    except Exception as exc:
        return ParsedTransaction(index, "", "", "", None, "", b"", code, error=f"envelope: {exc}")
    msp_id, cert = "", b""
    if signature_header.creator:
        with contextlib.suppress(IdentityError):
            msp_id, cert = parse_serialized_identity(signature_header.creator)
    base = ParsedTransaction(
        index=index,
        transaction_id=str(channel_header.tx_id),
        header_type=_header_type_name(int(channel_header.type)),
        channel_id=str(channel_header.channel_id),
        timestamp=_timestamp(channel_header),
        creator_msp_id=msp_id,
        creator_certificate=cert,
        validation_code=code,
    )
    if channel_header.type != common_pb2.ENDORSER_TRANSACTION:
        return base
    try:
        return _with_chaincode_action(base, payload.data, block_number)
    except Exception as exc:
        return _replace(base, error=f"endorser transaction: {exc}")


def _with_chaincode_action(
    base: ParsedTransaction, data: bytes, block_number: int
) -> ParsedTransaction:
    transaction = transaction_pb2.Transaction.FromString(data)
    if not transaction.actions:
        return _replace(base, error="endorser transaction without actions")
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(
        transaction.actions[0].payload
    )
    proposal_payload = proposal_pb2.ChaincodeProposalPayload.FromString(
        action_payload.chaincode_proposal_payload
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(proposal_payload.input).chaincode_spec
    args = [bytes(a) for a in spec.input.args]
    response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
        action_payload.action.proposal_response_payload
    )
    action = proposal_pb2.ChaincodeAction.FromString(response_payload.extension)
    event = None
    if action.events:
        raw = chaincode_event_pb2.ChaincodeEvent.FromString(action.events)
        if raw.chaincode_id and raw.event_name and raw.tx_id:
            event = ChaincodeEvent(
                block_number,
                str(raw.tx_id),
                str(raw.chaincode_id),
                str(raw.event_name),
                bytes(raw.payload),
            )
    return _replace(
        base,
        chaincode_name=str(action.chaincode_id.name or spec.chaincode_id.name),
        function=args[0].decode("utf-8", "replace") if args else "",
        arguments=tuple(args[1:]),
        event=event,
    )


def _replace(tx: ParsedTransaction, **changes: Any) -> ParsedTransaction:

    return dataclasses.replace(tx, **changes)


def _header_type_name(value: int) -> str:
    try:
        return str(common_pb2.HeaderType.Name(value))
    except ValueError:
        return f"UNKNOWN_{value}"


def _timestamp(channel_header: Any) -> dt.datetime | None:
    if not channel_header.HasField("timestamp"):
        return None
    stamp = channel_header.timestamp
    return dt.datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, tz=dt.UTC)
