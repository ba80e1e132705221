"""Full blocks through the peer ``Deliver`` service, parsed into transactions."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any

from patchledger.app.fabric._client import GatewayClient
from patchledger.app.fabric._protos import ab_pb2, common_pb2
from patchledger.app.fabric.blocks import ParsedBlock, ParsedTransaction, parse_block
from patchledger.app.fabric.checkpoint import Checkpoint
from patchledger.app.fabric.errors import CheckpointError, EventsError
from patchledger.app.fabric.event_stream import EventStream
from patchledger.app.fabric.transaction_context import now_timestamp

MAX_BLOCK = 2**64 - 1


def _specified(number: int) -> Any:
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=number))


class BlockEventsRequest:
    """A signable Deliver request (an ``Envelope`` wrapping a ``SeekInfo``).

    Args:
        start_block: first block (``None``: the next block committed).
        stop_block: last block (``None``: never stop; ``-1``: the newest block at seek time).
    """

    def __init__(
        self,
        client: GatewayClient,
        channel: str,
        *,
        start_block: int | None = None,
        stop_block: int | None = None,
    ) -> None:
        self._client = client
        self._channel = channel
        if start_block is None:
            start = ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
        else:
            start = _specified(start_block)
        if stop_block is None:
            stop = _specified(MAX_BLOCK)
        elif stop_block < 0:
            stop = ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest())
        else:
            stop = _specified(stop_block)
        channel_header = common_pb2.ChannelHeader(
            type=common_pb2.DELIVER_SEEK_INFO,
            channel_id=channel,
            timestamp=now_timestamp(),
            epoch=0,
            tls_cert_hash=client.tls_client_certificate_hash,
        )
        signature_header = common_pb2.SignatureHeader(creator=client.identity.creator)
        seek = ab_pb2.SeekInfo(start=start, stop=stop, behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY)
        payload = common_pb2.Payload(
            header=common_pb2.Header(
                channel_header=channel_header.SerializeToString(),
                signature_header=signature_header.SerializeToString(),
            ),
            data=seek.SerializeToString(),
        )
        self._envelope = common_pb2.Envelope(payload=payload.SerializeToString())

    @property
    def bytes(self) -> builtins.bytes:
        """The serialised ``common.Envelope``."""
        return builtins.bytes(self._envelope.SerializeToString())

    @property
    def digest(self) -> builtins.bytes:
        """The hash of the envelope payload."""
        return self._client.hash(self._envelope.payload)

    def sign_with(self, signature: builtins.bytes) -> None:
        """Attach an offline-made signature (normalised to low S).

        Raises:
            SigningError: the signature is not a DER ECDSA signature.
        """
        self._envelope.signature = self._client.normalise(signature)

    def get_raw_blocks(self) -> EventStream[Any]:
        """Open the stream of ``common.Block`` messages.

        Iteration raises :class:`EventsError` on a non-SUCCESS Deliver status or a gRPC
        failure; a SUCCESS status (bounded range done) ends it.

        Raises:
            SigningError: the request is unsigned and no signer is configured.
        """
        if not self._envelope.signature:
            self._envelope.signature = self._client.sign(self._envelope.payload)
        call = self._client.deliver_stub.Deliver(iter([self._envelope]))
        return EventStream(call, self._blocks, f"block delivery on {self._channel}")

    def get_blocks(self) -> EventStream[ParsedBlock]:
        """Open the stream of parsed blocks. See :meth:`get_raw_blocks`."""
        raw = self.get_raw_blocks()
        return EventStream(raw, _parse_all, f"block delivery on {self._channel}")

    def _blocks(self, responses: Iterator[Any]) -> Iterator[Any]:
        for response in responses:
            kind = response.WhichOneof("Type")
            if kind == "block":
                yield response.block
            elif kind == "status":
                if response.status == common_pb2.SUCCESS:
                    return
                name = common_pb2.Status.Name(response.status)
                raise EventsError(
                    f"block delivery on {self._channel} ended with status {name}", status=name
                )


def _parse_all(blocks: Iterator[Any]) -> Iterator[ParsedBlock]:
    for block in blocks:
        yield parse_block(block)


def transactions_after(
    blocks: Iterator[ParsedBlock], checkpoint: Checkpoint | None
) -> Iterator[ParsedTransaction]:
    """Flatten blocks into transactions, skipping those up to the checkpoint's transaction.

    Only the checkpoint's own block is filtered (Deliver itself ignores transaction ids): its
    transactions up to and including the checkpointed one are dropped. The checkpointed one is
    found by its position when the checkpoint records it (``transaction_index``), which stays
    exact when the block holds the same id twice (DUPLICATE_TXID); a checkpoint without a
    position (older files) resumes after the id's first occurrence, so nothing is lost.

    Raises:
        CheckpointError: (on iteration) the checkpointed transaction is not in its block, or
            not at the recorded position: the checkpoint does not belong to this ledger.
    """
    if checkpoint is None:
        for block in blocks:
            yield from block.transactions
        return
    skip_until = checkpoint.transaction_id
    index = getattr(checkpoint, "transaction_index", None)
    if not isinstance(index, int) or isinstance(index, bool):
        index = None
    skip_block = checkpoint.block_number if skip_until or index is not None else None
    for block in blocks:
        transactions: tuple[ParsedTransaction, ...] = block.transactions
        if block.number == skip_block:
            transactions = transactions[_resume_position(block, skip_until, index) :]
        yield from transactions


def _resume_position(block: ParsedBlock, transaction_id: str, index: int | None) -> int:
    """The position just after the checkpointed transaction of ``block``."""
    ids = [tx.transaction_id for tx in block.transactions]
    if index is not None:
        if index < len(ids) and ids[index] == transaction_id:
            return index + 1
        found = ids[index] if index < len(ids) else f"nothing ({len(ids)} transactions)"
        raise CheckpointError(
            f"checkpoint names transaction {transaction_id or '(no id)'} at index {index} of "
            f"block {block.number}, but the block has {found} there"
        )
    if transaction_id not in ids:
        raise CheckpointError(
            f"checkpoint names transaction {transaction_id} in block {block.number}, "
            "which does not contain it (a checkpoint of another channel or ledger?)"
        )
    return ids.index(transaction_id) + 1
