"""The ledger view: the only interface between the core and world state.

The contract layer implements :class:`StateStore` over the chaincode stub (``GetState``,
``PutState``, ``GetStateByPartialCompositeKey`` with ``CreateCompositeKey(record_type, parts)``,
and ``SetStateValidationParameter`` for ``owner_org``). Because Fabric's ``GetState`` does not
see the transaction's own writes, operations run over a :class:`TxLedger`, which overlays the
writes of the current transaction on the store (read-your-writes) and records the changes that
form the transaction's single chaincode event. Writes reach the store only on
:meth:`TxLedger.commit`, after the operation returned.

The view is also where the state machines are enforced: :meth:`TxLedger.save` checks every
write of a record whose type has a machine (``Record.MACHINE``) against it, from the state the
view itself last saw for that key (read or written in this transaction; read from the store
when the operation never read it), never from what the operation claims. So no operation can
write an illegal transition, whatever it computes: the write is refused with a
:class:`~chaincode.lifecycle.errors.TransitionError` naming the record, its state and the
attempted state, before anything is buffered. :class:`MemoryStore` is the in-memory
store used by tests, benchmarks and simulations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from patchledger.chaincode.lifecycle.canonical import canonical_json
from patchledger.chaincode.lifecycle.errors import NotFoundError
from patchledger.chaincode.lifecycle.identity import Caller
from patchledger.chaincode.lifecycle.record import Key, Record

R = TypeVar("R", bound=Record)


class StateStore(Protocol):
    """World state as the core needs it (implemented by the contract over the stub)."""

    def get(self, key: Key) -> bytes | None:
        """The value at ``key``, or ``None`` when absent."""

    def put(self, key: Key, value: bytes, *, owner_org: str | None = None) -> None:
        """Write ``value``; when ``owner_org`` is given, the key's endorsement policy must
        require that organization's peer AND a majority of the channel's peer organizations
        (a key-level policy replaces the chaincode-level one, so it must keep the majority)."""

    def scan(self, record_type: str, prefix: tuple[str, ...]) -> Iterator[tuple[Key, bytes]]:
        """Every ``(key, value)`` of ``record_type`` whose parts start with ``prefix``,
        in key order."""


@dataclass
class MemoryStore:
    """A dict-backed :class:`StateStore`; ``owners`` records key-level endorsement owners."""

    data: dict[Key, bytes] = field(default_factory=dict)
    owners: dict[Key, str] = field(default_factory=dict)

    def get(self, key: Key) -> bytes | None:
        """See :meth:`StateStore.get`."""
        return self.data.get(key)

    def put(self, key: Key, value: bytes, *, owner_org: str | None = None) -> None:
        """See :meth:`StateStore.put`."""
        self.data[key] = value
        if owner_org:
            self.owners[key] = owner_org

    def scan(self, record_type: str, prefix: tuple[str, ...]) -> Iterator[tuple[Key, bytes]]:
        """See :meth:`StateStore.scan`."""
        n = len(prefix)
        for key in sorted(self.data, key=lambda k: k.parts):
            if key.record_type == record_type and key.parts[:n] == prefix:
                yield key, self.data[key]


@dataclass(frozen=True)
class Change:
    """One record change of a transaction, as listed in its chaincode event (``reason``, when
    the core gives one, says why a record moved as a consequence of another decision)."""

    record_type: str
    record_id: str
    from_state: str
    to_state: str
    reason: str = ""

    def to_dict(self) -> dict[str, str]:
        """The JSON object of this change (``reason`` only when there is one)."""
        out = {
            "record_type": self.record_type,
            "record_id": self.record_id,
            "from": self.from_state,
            "to": self.to_state,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


def event_payload(changes: list[Change]) -> bytes:
    """Canonical JSON of the transaction's single event: ``{"changes": [...]}``."""
    return canonical_json({"changes": [c.to_dict() for c in changes]})


@dataclass
class TxLedger:
    """One transaction's view: store + own writes, caller, time, and the change list.

    Attributes:
        store: the world state.
        caller: the transaction creator.
        now: the transaction timestamp, seconds since the epoch (UTC).
        tx_id: the transaction id (recorded nowhere by the core; for the contract's use).
    """

    store: StateStore
    caller: Caller
    now: int
    tx_id: str = ""
    writes: dict[Key, bytes] = field(default_factory=dict)
    owners: dict[Key, str] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    seen: dict[Key, str | None] = field(default_factory=dict)
    #: The last record parsed per key, with the exact bytes it was parsed from: a batch that
    #: loads one rollout (which names every host of its waves) once per report parses it once.
    parsed: dict[Key, tuple[bytes, Record]] = field(default_factory=dict, repr=False)

    def _raw(self, key: Key) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.store.get(key)

    def commit(self) -> list[Change]:
        """Write the transaction's writes to the store (each key once) and return the changes.

        Operations never write to the store themselves: a refused operation leaves the store
        untouched, exactly as a failed Fabric transaction does.
        """
        for key, value in self.writes.items():
            self.store.put(key, value, owner_org=self.owners.get(key))
        self.writes = {}
        self.owners = {}
        return list(self.changes)

    def find(self, cls: type[R], *parts: str) -> R | None:
        """The record of type ``cls`` at ``parts``, or ``None``.

        Raises:
            ValidationError: a part is not an identifier (naming the key field), or the
                stored value is not a valid record of that type.
        """
        key = cls.key_for(*parts)
        raw = self._raw(key)
        found = None if raw is None else self.parse(cls, key, raw)
        if cls.MACHINE is not None:
            self.seen[key] = None if found is None else found.state
        return found

    def parse(self, cls: type[R], key: Key, raw: bytes) -> R:
        """``cls.from_json(raw)`` for the value ``raw`` of ``key``, reused while the key's bytes
        are unchanged (records are immutable, so sharing one parsed record is safe). Only
        parses: the state machines' view (:meth:`find`) is not touched.

        Raises:
            ValidationError: as :meth:`Record.from_json`.
        """
        cached = self.parsed.get(key)
        if cached is not None and cached[0] == raw and isinstance(cached[1], cls):
            return cached[1]
        record = cls.from_json(raw)
        self.parsed[key] = (raw, record)
        return record

    def load(self, cls: type[R], *parts: str) -> R:
        """The record of type ``cls`` at ``parts``.

        Raises:
            ValidationError: as :meth:`find`.
            NotFoundError: there is none.
        """
        found = self.find(cls, *parts)
        if found is None:
            raise NotFoundError(cls.RECORD_TYPE, "/".join(parts))
        return found

    def scan(self, cls: type[R], *prefix: str) -> list[R]:
        """All records of type ``cls`` whose key starts with ``prefix`` (own writes included).

        Raises:
            ValidationError: a prefix part is not an identifier, or a stored value is not a
                valid record of that type.
        """
        prefix = cls.key_for(*prefix).parts
        keys: dict[Key, bytes] = dict(self.store.scan(cls.RECORD_TYPE, prefix))
        n = len(prefix)
        for key, value in self.writes.items():
            if key.record_type == cls.RECORD_TYPE and key.parts[:n] == prefix:
                keys[key] = value
        found = [cls.from_json(keys[k]) for k in sorted(keys, key=lambda k: k.parts)]
        if cls.MACHINE is not None:
            self.seen.update((r.key, r.state) for r in found)
        return found

    def save(self, record: R, *, owner_org: str | None = None, reason: str = "") -> R:
        """Check the move against the record type's machine, stamp ``record`` with time and
        caller, write it and list the change.

        The state the record moves from is the one this view last saw for its key (see the
        module docstring); absent, the record is created and must start in the machine's
        initial state or one move away from it.

        Args:
            record: the new version.
            owner_org: organization whose peer must endorse changes of this key (together
                with a majority of the channel's organizations).
            reason: why the record moves, listed in the change (for consequences of another
                record's decision, such as rollouts halted by a revocation).

        Returns:
            The stamped record as written.

        Raises:
            TransitionError: the record type's machine does not allow the move (nothing is
                written).
        """
        key = record.key
        machine = record.MACHINE
        before = ""
        if machine is not None:
            if key not in self.seen:
                self.find(type(record), *key.parts)
            current = self.seen[key]
            if current is None:
                machine.check_creation(str(key), record.state)
            else:
                machine.check(str(key), current, record.state)
                before = current
            self.seen[key] = record.state
        stamped = record.evolve(updated_at=self.now, updated_by=self.caller.msp_id)
        self.writes[key] = stamped.to_json()
        if owner_org:
            self.owners[key] = owner_org
        self.changes.append(Change(stamped.RECORD_TYPE, str(key), before, stamped.state, reason))
        return stamped
