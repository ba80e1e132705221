"""Decoding committed blocks into what the read model stores: transactions and the chaincode's
writes (the write set of each valid transaction, the authoritative source).

Why the write set and not the chaincode event: the event (``{"changes": [...]}``) names the
records a transaction changed and their states, but not their content, and a transaction the
contract treats as "no change" sets none; the write set in the block is exactly what the
peers applied to world state, for valid transactions only (the block's validation flags say
which), and it carries every record's full canonical JSON. Writes of other namespaces (other
chaincodes, ``_lifecycle``) and key-level endorsement metadata are ignored. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from patchledger.app.fabric._protos import (
    common_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from patchledger.app.fabric.blockhash import block_header_hash
from patchledger.app.fabric.blocks import ParsedBlock, ParsedTransaction, parse_block
from patchledger.app.fabric.identity import load_certificate

rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.rwset_pb2")
kv_rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.kvrwset.kv_rwset_pb2")

_NS = "\x00"


@dataclass(frozen=True, slots=True)
class Write:
    """One key written by a valid transaction in the chaincode's namespace.

    ``record_type`` and ``record_id`` come from the composite key (object type; attributes
    joined by ``/``); a simple (non-composite) key has ``record_type`` ``""`` and the key as
    its id. ``value`` is ``None`` for a delete.
    """

    record_type: str
    record_id: str
    write_index: int
    value: bytes | None

    @property
    def is_delete(self) -> bool:
        """True for a delete."""
        return self.value is None


@dataclass(frozen=True, slots=True)
class DecodedTransaction:
    """A transaction of a block, with its creator's certificate subject and, when valid, its
    writes in the chaincode's namespace."""

    tx: ParsedTransaction
    creator_subject: str
    time: str
    writes: tuple[Write, ...]


@dataclass(frozen=True, slots=True)
class DecodedBlock:
    """A block: its header hashes and its decoded transactions."""

    number: int
    header_hash: str
    previous_hash: str
    data_hash: str
    transactions: tuple[DecodedTransaction, ...]

    @property
    def write_count(self) -> int:
        """How many writes its valid transactions made in the chaincode's namespace."""
        return sum(len(t.writes) for t in self.transactions)


def split_key(key: str) -> tuple[str, str]:
    """``(record_type, record_id)`` of a state key: a composite key's object type and its
    attributes joined by ``/``; ``("", key)`` for a simple key."""
    if len(key) >= 3 and key.startswith(_NS) and key.endswith(_NS):
        parts = key[1:-1].split(_NS)
        return parts[0], "/".join(parts[1:])
    return "", key


def iso_time(moment: dt.datetime | None) -> str:
    """ISO 8601 UTC with microseconds and ``Z`` ("" for no time)."""
    if moment is None:
        return ""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=1024)
def certificate_subject(pem: bytes) -> str:
    """The RFC 4514 subject of a PEM certificate ("" when it cannot be read)."""
    if not pem:
        return ""
    try:
        return load_certificate(pem).subject.rfc4514_string()
    except Exception:
        return ""


def decode_block(block: Any, chaincode: str) -> DecodedBlock:
    """Decode a ``common.Block`` (or an already parsed :class:`ParsedBlock`): every
    transaction, and the writes of ``chaincode``'s valid transactions.

    Raises:
        BlockParseError: the block has no header.
    """
    parsed = block if isinstance(block, ParsedBlock) else parse_block(block)
    raw = parsed.raw
    txs = []
    for tx in parsed.transactions:
        writes: tuple[Write, ...] = ()
        if tx.valid and tx.header_type == "ENDORSER_TRANSACTION" and not tx.error:
            writes = tuple(_writes(raw.data.data[tx.index], chaincode))
        txs.append(
            DecodedTransaction(
                tx, certificate_subject(tx.creator_certificate), iso_time(tx.timestamp), writes
            )
        )
    return DecodedBlock(
        number=parsed.number,
        header_hash=block_header_hash(raw.header).hex(),
        previous_hash=parsed.previous_hash.hex(),
        data_hash=parsed.data_hash.hex(),
        transactions=tuple(txs),
    )


def _writes(envelope_bytes: bytes, chaincode: str) -> Iterator[Write]:
    """The writes in namespace ``chaincode`` of every action of an endorser transaction."""
    envelope = common_pb2.Envelope.FromString(envelope_bytes)
    payload = common_pb2.Payload.FromString(envelope.payload)
    transaction = transaction_pb2.Transaction.FromString(payload.data)
    index = 0
    for action in transaction.actions:
        action_payload = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
        response = proposal_response_pb2.ProposalResponsePayload.FromString(
            action_payload.action.proposal_response_payload
        )
        chaincode_action = proposal_pb2.ChaincodeAction.FromString(response.extension)
        rwset = rwset_pb2.TxReadWriteSet.FromString(chaincode_action.results)
        for ns in rwset.ns_rwset:
            if ns.namespace != chaincode:
                continue
            kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
            for write in kv.writes:
                record_type, record_id = split_key(str(write.key))
                value = None if write.is_delete else bytes(write.value)
                yield Write(record_type, record_id, index, value)
                index += 1
