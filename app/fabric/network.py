"""A channel (Fabric "network") seen through a gateway: contracts and event streams."""

from __future__ import annotations

from patchledger.app.fabric._client import GatewayClient
from patchledger.app.fabric.block_events import BlockEventsRequest, transactions_after
from patchledger.app.fabric.blocks import ParsedBlock, ParsedTransaction
from patchledger.app.fabric.chaincode_events import ChaincodeEventsRequest
from patchledger.app.fabric.checkpoint import Checkpoint
from patchledger.app.fabric.contract import Contract
from patchledger.app.fabric.event_stream import EventStream
from patchledger.app.fabric.event_types import ChaincodeEvent


def _resume_block(start_block: int | None, checkpoint: Checkpoint | None) -> int | None:
    if checkpoint is not None and (checkpoint.block_number or checkpoint.transaction_id):
        return checkpoint.block_number
    return start_block


class Network:
    """A Fabric channel: gives access to its contracts and its event streams.

    Event methods return an :class:`EventStream` (iterate; ``close()`` or ``with`` to stop).
    With a checkpoint that is not empty, streams resume exactly after the last checkpointed
    transaction, whatever ``start_block`` says; otherwise they start at ``start_block``, or
    at the next block committed when it is ``None``.
    """

    def __init__(self, client: GatewayClient, name: str) -> None:
        if not name:
            raise ValueError("a channel name must be non-empty")
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The channel name."""
        return self._name

    def get_contract(self, chaincode_name: str, contract_name: str = "") -> Contract:
        """Return the contract ``contract_name`` of chaincode ``chaincode_name``."""
        if not chaincode_name:
            raise ValueError("a chaincode name must be non-empty")
        return Contract(self._client, self._name, chaincode_name, contract_name)

    def new_chaincode_events_request(
        self,
        chaincode_name: str,
        *,
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> ChaincodeEventsRequest:
        """Build a signable chaincode-events request (offline signing or deferred start)."""
        return ChaincodeEventsRequest.new(
            self._client,
            self._name,
            chaincode_name,
            start_block=start_block,
            checkpoint=checkpoint,
        )

    def get_chaincode_events(
        self,
        chaincode_name: str,
        *,
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> EventStream[ChaincodeEvent]:
        """Stream events of VALID transactions of ``chaincode_name``.

        Raises:
            SigningError: no signer is configured.
        """
        request = self.new_chaincode_events_request(
            chaincode_name, start_block=start_block, checkpoint=checkpoint
        )
        return request.get_events()

    def new_block_events_request(
        self, *, start_block: int | None = None, stop_block: int | None = None
    ) -> BlockEventsRequest:
        """Build a signable Deliver request (``stop_block=-1``: up to the newest block)."""
        return BlockEventsRequest(
            self._client, self._name, start_block=start_block, stop_block=stop_block
        )

    def get_block_events(
        self, *, start_block: int | None = None, checkpoint: Checkpoint | None = None
    ) -> EventStream[ParsedBlock]:
        """Stream full blocks, parsed, as they are committed (never ends by itself).

        With a checkpoint, streaming restarts at its block; the transactions of that block
        already processed are still in it (see :meth:`get_transaction_events`).

        Raises:
            SigningError: no signer is configured.
        """
        start = _resume_block(start_block, checkpoint)
        return self.new_block_events_request(start_block=start).get_blocks()

    def get_transaction_events(
        self, *, start_block: int | None = None, checkpoint: Checkpoint | None = None
    ) -> EventStream[ParsedTransaction]:
        """Stream every transaction of every block (valid or not), resuming after the
        checkpoint's transaction. Record progress with
        ``checkpointer.checkpoint_parsed_transaction(tx)``.

        Raises:
            SigningError: no signer is configured.
        """
        blocks = self.get_block_events(start_block=start_block, checkpoint=checkpoint)
        description = f"transaction events on {self._name}"
        return EventStream(blocks, lambda it: transactions_after(it, checkpoint), description)

    def read_blocks(
        self, start_block: int = 0, stop_block: int | None = None
    ) -> EventStream[ParsedBlock]:
        """Read a bounded range of blocks (default: from genesis to the newest block).

        Raises:
            SigningError: no signer is configured.
        """
        stop = -1 if stop_block is None else stop_block
        return self.new_block_events_request(start_block=start_block, stop_block=stop).get_blocks()
