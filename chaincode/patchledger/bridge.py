"""The bridge between the synchronous lifecycle core and the asynchronous chaincode stub.

The core (:mod:`chaincode.lifecycle`) reads state through a synchronous
:class:`~chaincode.lifecycle.ledger.StateStore`; the runtime's stub is asynchronous. Each
transaction therefore runs its core operation in a worker thread (the contract's pool, given by
the contract-level context, so the runtime's event loop never blocks), and :class:`StubStore`
resolves every read by scheduling the stub coroutine on the runtime's loop with
:func:`asyncio.run_coroutine_threadsafe` and waiting for its result in the worker thread. Writes
are never sent from the worker: the core buffers them in its
:class:`~chaincode.lifecycle.ledger.TxLedger` until ``commit()``, which hands them to
:class:`StubStore`; after the operation returned, :meth:`StubStore.flush` sends them from the
loop (``PutState``, plus a key-level endorsement policy when the core gave ``owner_org``). A
refused operation therefore sends no write at all.

The key-level policy of an owned record (host, deployment, rollout) is "the owner
organization's peer AND a majority of the channel's peer organizations"
(:func:`owner_policy`). A key-level policy *replaces* the chaincode's MAJORITY policy for that
key, so naming the owner alone would let one organization rewrite its records with nobody
else endorsing. The channel's peer organizations are the MSP ids of the contract's
:class:`~chaincode.lifecycle.OrgTrust`; without them an owned write is refused (fail closed).

Reads are cached for the transaction (the world state a transaction sees does not change
while it runs; its own writes are overlaid by the ``TxLedger``), so a batch that touches one
host many times asks the peer once. :meth:`StubStore.prefetch` fills that cache for many keys
with one ``get_multiple_states`` call (one GET_STATE_MULTIPLE request per 1000 keys on a
Fabric v3.1 peer, one GET_STATE per key on an older one), so an operation that knows its keys
in advance (``ReportDeployments``) avoids a round trip per read.

Keys: the core's ``Key(record_type, parts)`` is the stub's composite key
``create_composite_key(record_type, parts)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.runtime import (
    ChaincodeStub,
    ContractError,
    create_composite_key,
    split_composite_key,
)
from patchledger.chaincode.runtime.endorsement import encode_policy, owner_and_majority

__all__ = [
    "POOL_SIZE",
    "STUB_CALL_TIMEOUT",
    "StubStore",
    "composite_key",
    "key_of",
    "new_pool",
    "owner_policy",
    "run_in_worker",
]

T = TypeVar("T")

#: Seconds a worker waits for one stub call; above the runtime's own 120 s request timeout,
#: so a lost peer answer surfaces as the runtime's PeerError first.
STUB_CALL_TIMEOUT = 130.0

#: Worker threads of one contract's pool (its threads start on demand).
POOL_SIZE = 32


def new_pool(size: int = POOL_SIZE) -> ThreadPoolExecutor:
    """A worker pool for one contract's core operations."""
    return ThreadPoolExecutor(size, thread_name_prefix="lifecycle")


async def run_in_worker(pool: Executor, func: Callable[[], T]) -> T:
    """Run ``func`` in ``pool`` and return its result (or raise its error)."""
    return await asyncio.get_running_loop().run_in_executor(pool, func)


def composite_key(key: Key) -> str:
    """The stub key of a core key.

    Raises:
        ValueError: a part contains U+0000 or U+10FFFF.
    """
    return create_composite_key(key.record_type, key.parts)


def key_of(stub_key: str) -> Key:
    """The core key of a composite stub key.

    Raises:
        ValueError: not a composite key.
    """
    record_type, parts = split_composite_key(stub_key)
    return Key(record_type, tuple(parts))


def owner_policy(owner_org: str, channel_orgs: Sequence[str]) -> bytes:
    """The serialized key-level policy of a record owned by ``owner_org``: its peer AND a
    majority (``len // 2 + 1``) of the peers of ``channel_orgs``.

    Raises:
        ContractError: no channel organization is configured, or ``owner_org`` is not one of
            them (fail closed: status 400, nothing is written).
    """
    if not channel_orgs:
        raise ContractError(
            f"cannot protect a record of {owner_org}: no channel organizations are configured"
            " on this chaincode server (PATCHLEDGER_ORG_ROOTS_DIR), so its key-level"
            " endorsement policy (owner AND majority) cannot be built (refused)"
        )
    if owner_org not in channel_orgs:
        raise ContractError(
            f"cannot protect a record of {owner_org}: it is not one of the channel"
            f" organizations configured on this chaincode server ({', '.join(channel_orgs)})"
            " (refused)"
        )
    return encode_policy(owner_and_majority(owner_org, channel_orgs))


class StubStore:
    """A :class:`~chaincode.lifecycle.ledger.StateStore` over one transaction's stub.

    ``get`` and ``scan`` must be called from a worker thread (never from the loop thread,
    which would deadlock); ``put`` only records the write; :meth:`flush` sends the recorded
    writes and must be awaited on the loop. ``channel_orgs`` are the channel's peer
    organizations, for the key-level policy of owned records (:func:`owner_policy`).
    """

    def __init__(
        self,
        stub: ChaincodeStub,
        loop: asyncio.AbstractEventLoop,
        *,
        channel_orgs: Sequence[str] = (),
        timeout: float = STUB_CALL_TIMEOUT,
    ) -> None:
        self._stub = stub
        self._loop = loop
        self._timeout = timeout
        self._channel_orgs = tuple(sorted(set(channel_orgs)))
        self._cache: dict[Key, bytes | None] = {}
        #: (key, value, serialized key-level policy or None), in write order.
        self.pending: list[tuple[Key, bytes, bytes | None]] = []

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the runtime's loop and wait for it in this (worker) thread.

        Raises:
            RuntimeError: called from the loop's own thread.
            TimeoutError: no result within the timeout.
            Whatever the stub call raised (PeerError, StreamClosedError, ValueError).
        """
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise RuntimeError("StubStore read from the event loop thread would deadlock")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self._timeout)

    def get(self, key: Key) -> bytes | None:
        """See :meth:`StateStore.get`: ``GetState`` of the composite key, cached."""
        if key not in self._cache:
            raw = self._call(self._stub.get_state(composite_key(key)))
            self._cache[key] = raw or None
        return self._cache[key]

    def prefetch(self, keys: Sequence[Key]) -> int:
        """Read the uncached ``keys`` with one ``get_multiple_states`` call into the cache
        (a missing key, ``b""`` from the peer, is cached as absent); return how many were read.

        Only for keys the operation will read: each one enters the transaction's read set.
        Called from a worker thread, like :meth:`get`.

        Raises:
            RuntimeError: called from the loop's own thread.
            PeerError, StreamClosedError, ValueError: as :meth:`get`.
        """
        wanted = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if not wanted:
            return 0
        values = self._call(self._stub.get_multiple_states([composite_key(k) for k in wanted]))
        for key, raw in zip(wanted, values, strict=True):
            self._cache[key] = raw or None
        return len(wanted)

    def put(self, key: Key, value: bytes, *, owner_org: str | None = None) -> None:
        """See :meth:`StateStore.put`: recorded here, sent by :meth:`flush`.

        Raises:
            ContractError: ``owner_org`` given but :func:`owner_policy` cannot be built.
        """
        policy = owner_policy(owner_org, self._channel_orgs) if owner_org else None
        self.pending.append((key, value, policy))
        self._cache[key] = value

    def scan(self, record_type: str, prefix: tuple[str, ...]) -> Iterator[tuple[Key, bytes]]:
        """See :meth:`StateStore.scan`: ``GetStateByPartialCompositeKey``, in key order."""
        entries = self._call(self._scan(record_type, prefix))
        for stub_key, value in entries:
            key = key_of(stub_key)
            self._cache.setdefault(key, value)
            yield key, value

    async def _scan(self, record_type: str, prefix: tuple[str, ...]) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        async with await self._stub.get_state_by_partial_composite_key(
            record_type, list(prefix)
        ) as results:
            async for kv in results:
                out.append((kv.key, kv.value))
        return out

    async def flush(self) -> int:
        """Send the recorded writes in order (each with its key-level policy); return how many.

        Raises:
            PeerError: the peer refused a write.
        """
        sent = 0
        for key, value, policy in self.pending:
            stub_key = composite_key(key)
            await self._stub.put_state(stub_key, value)
            if policy is not None:
                await self._stub.set_key_endorsement_policy(stub_key, policy)
            sent += 1
        self.pending = []
        return sent
