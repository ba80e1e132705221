"""Checkpointers: where an event consumer resumes after a restart.

State is ``(block_number, transaction_id, transaction_index)``: the next block to read, the
last transaction already processed within it ("" when none) and that transaction's position
in the block (``None`` when unknown: chaincode events carry no position, older checkpoint
files have none). The position makes block-event resume exact even when a block holds the same
transaction id twice (a DUPLICATE_TXID replay). After handling an event, record it; on restart
pass the checkpointer to the event call, which resumes exactly after it.

:class:`FileCheckpointer` persists the state as JSON ``{"blockNumber": n, "transactionId": s}``
(the format of the official clients; a string block number is accepted too), plus
``"transactionIndex": i`` when the position is known; files without it are still read. The
file is rewritten atomically: temp file in the same directory, fsync, rename, fsync of the
directory.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Protocol

from patchledger.app.fabric.blocks import ParsedTransaction
from patchledger.app.fabric.errors import CheckpointError
from patchledger.app.fabric.event_types import ChaincodeEvent
from patchledger.common.durable import write_atomic


class Checkpoint(Protocol):
    """Read side of a checkpointer, as the event calls use it."""

    @property
    def block_number(self) -> int:
        """The block to resume from."""
        ...

    @property
    def transaction_id(self) -> str:
        """The last processed transaction in that block ("" if none)."""
        ...


class InMemoryCheckpointer:
    """A checkpointer that forgets everything when the process ends."""

    def __init__(
        self, block_number: int = 0, transaction_id: str = "", transaction_index: int | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._block_number = block_number
        self._transaction_id = transaction_id
        self._transaction_index = transaction_index

    @property
    def block_number(self) -> int:
        """The block to resume from."""
        return self._block_number

    @property
    def transaction_id(self) -> str:
        """The last processed transaction in that block ("" if none)."""
        return self._transaction_id

    @property
    def transaction_index(self) -> int | None:
        """The position of that transaction in its block (``None``: unknown)."""
        return self._transaction_index

    @property
    def is_empty(self) -> bool:
        """True when nothing was ever checkpointed (block 0, no transaction)."""
        return self._block_number == 0 and not self._transaction_id

    def checkpoint_block(self, block_number: int) -> None:
        """Record that block ``block_number`` was fully processed."""
        self._set(block_number + 1, "", None)

    def checkpoint_transaction(
        self, block_number: int, transaction_id: str, transaction_index: int | None = None
    ) -> None:
        """Record that ``transaction_id`` (at ``transaction_index``, when known) of
        ``block_number`` was processed."""
        self._set(block_number, transaction_id, transaction_index)

    def checkpoint_chaincode_event(self, event: ChaincodeEvent) -> None:
        """Record that a chaincode event (hence its transaction) was processed."""
        self.checkpoint_transaction(event.block_number, event.transaction_id)

    def checkpoint_parsed_transaction(self, tx: ParsedTransaction) -> None:
        """Record a block-event transaction; the last one of its block completes the block."""
        if tx.last_in_block:
            self.checkpoint_block(tx.block_number)
        else:
            self.checkpoint_transaction(tx.block_number, tx.transaction_id, tx.index)

    def _set(self, block_number: int, transaction_id: str, transaction_index: int | None) -> None:
        with self._lock:
            self._block_number, self._transaction_id = block_number, transaction_id
            self._transaction_index = transaction_index


class FileCheckpointer(InMemoryCheckpointer):
    """A checkpointer persisted in a JSON file (created on first checkpoint).

    Raises:
        CheckpointError: on construction if the file exists but is unreadable or malformed.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        super().__init__(*self._load())

    @property
    def path(self) -> Path:
        """The checkpoint file."""
        return self._path

    def _load(self) -> tuple[int, str, int | None]:
        try:
            raw = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return 0, "", None
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint {self._path}: {exc}") from exc
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise CheckpointError(f"malformed checkpoint {self._path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise CheckpointError(f"malformed checkpoint {self._path}: not a JSON object")
        block_number = _block_number(doc.get("blockNumber", 0))
        transaction_id = doc.get("transactionId", "")
        if block_number is None:
            raise CheckpointError(
                f"malformed checkpoint {self._path}: blockNumber "
                f"{doc.get('blockNumber')!r} is not a non-negative integer"
            )
        if not isinstance(transaction_id, str):
            raise CheckpointError(
                f"malformed checkpoint {self._path}: "
                f"transactionId {transaction_id!r} is not a string"
            )
        index = doc.get("transactionIndex")
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or index < 0
        ):
            raise CheckpointError(
                f"malformed checkpoint {self._path}: "
                f"transactionIndex {index!r} is not a non-negative integer"
            )
        return block_number, transaction_id, index

    def _set(self, block_number: int, transaction_id: str, transaction_index: int | None) -> None:
        doc: dict[str, object] = {"blockNumber": block_number, "transactionId": transaction_id}
        if transaction_index is not None:
            doc["transactionIndex"] = transaction_index
        with self._lock:
            _atomic_write(self._path, json.dumps(doc).encode("utf-8"))
            self._block_number, self._transaction_id = block_number, transaction_id
            self._transaction_index = transaction_index


def _block_number(value: object) -> int | None:
    """A JSON block number: a non-negative integer, or a string of ASCII digits (as the Node
    client writes it); ``None`` for anything else (``1.9``, ``true``, ``"-1"``, ``null``...)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        return int(value)
    return None


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new content.

    Raises:
        CheckpointError: the file could not be written.
    """
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc}") from exc
