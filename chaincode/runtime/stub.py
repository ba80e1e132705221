"""The chaincode stub: what a transaction can ask of the peer.

One :class:`ChaincodeStub` exists per transaction. Its read-only properties (transaction id,
channel, timestamp, creator, transient data, arguments) come from the proposal the peer sent;
its async methods exchange messages with the peer over the connection's stream. The calls of
one transaction are serialized (the peer answers them by transaction id only), calls of
different transactions run concurrently.

An ERROR reply from the peer raises :class:`~chaincode.runtime.errors.PeerError`.

Fabric v3.1 peers advertise two optional features in READY (:class:`PeerFeatures`). With write
batching on, ``put_state``, ``delete_state`` and ``put_state_metadata`` only record the write
(validated at once, sent later): the session sends the recorded writes as WRITE_BATCH_STATE
messages when the transaction succeeded (:meth:`ChaincodeStub.finish_write_batch`), and never
when it failed. With multi-key reads on, :meth:`ChaincodeStub.get_multiple_states` reads many
keys per GET_STATE_MULTIPLE request; otherwise it reads them one GET_STATE at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from patchledger.chaincode.runtime._protos import (
    DecodeError,
    Msg,
    ProtoMessage,
    chaincode_event_pb2,
    chaincode_pb2,
    chaincode_shim_pb2,
    common_pb2,
    kv_query_result_pb2,
    proposal_pb2,
)
from patchledger.chaincode.runtime.endorsement import (
    ROLE_PEER,
    VALIDATION_PARAMETER,
    KeyEndorsementPolicy,
    Rule,
    decode_policy,
)
from patchledger.chaincode.runtime.errors import IdentityError, ProtocolError
from patchledger.chaincode.runtime.identity import ClientIdentity

__all__ = [
    "KV",
    "ChaincodeStub",
    "KeyModification",
    "PeerCaller",
    "PeerFeatures",
    "QueryIterator",
    "StatePage",
    "create_composite_key",
    "split_composite_key",
]

T = TypeVar("T")

COMPOSITE_KEY_NAMESPACE = "\x00"
_MIN_RUNE = "\x00"
_MAX_RUNE = "\U0010ffff"
# Fabric replaces an empty range start key with this (an empty key is not allowed).
_EMPTY_KEY_SUBSTITUTE = "\x01"


class PeerCaller(Protocol):
    """Sends one request for a transaction and returns the peer's RESPONSE payload."""

    async def request(self, msg_type: int, payload: bytes, channel_id: str, txid: str) -> bytes:
        """Send ``msg_type`` with ``payload``; return the RESPONSE payload.

        Raises:
            PeerError: the peer answered ERROR.
            StreamClosedError: the stream ended before the answer.
        """
        ...


#: Chunk size used when a peer enables a feature but advertises a size of 0.
DEFAULT_CHUNK_SIZE = 100


@dataclass(frozen=True)
class PeerFeatures:
    """What the peer advertised in READY (``protos.ChaincodeAdditionalParams``, Fabric v3.1).

    All off for a peer before v3.1 (empty READY payload): every write is then its own message.
    """

    use_write_batch: bool = False
    max_size_write_batch: int = 0
    use_get_multiple_keys: bool = False
    max_size_get_multiple_keys: int = 0

    @property
    def write_batch_size(self) -> int:
        """Records per WRITE_BATCH_STATE message (the advertised size, 100 if it is 0)."""
        return self.max_size_write_batch or DEFAULT_CHUNK_SIZE

    @property
    def get_multiple_size(self) -> int:
        """Keys per GET_STATE_MULTIPLE message (the advertised size, 100 if it is 0)."""
        return self.max_size_get_multiple_keys or DEFAULT_CHUNK_SIZE

    @classmethod
    def from_ready(cls, payload: bytes) -> PeerFeatures:
        """Decode the payload of a READY message (empty: a peer before v3.1, all off).

        Raises:
            ProtocolError: the payload is not a ChaincodeAdditionalParams.
        """
        if not payload:
            return cls()
        params = _parse(chaincode_pb2.ChaincodeAdditionalParams(), payload)
        return cls(
            use_write_batch=bool(params.use_write_batch),
            max_size_write_batch=int(params.max_size_write_batch),
            use_get_multiple_keys=bool(params.use_get_multiple_keys),
            max_size_get_multiple_keys=int(params.max_size_get_multiple_keys),
        )

    def to_ready(self) -> bytes:
        """The READY payload advertising these features (the fake peer's side)."""
        params = chaincode_pb2.ChaincodeAdditionalParams(
            use_write_batch=self.use_write_batch,
            max_size_write_batch=self.max_size_write_batch,
            use_get_multiple_keys=self.use_get_multiple_keys,
            max_size_get_multiple_keys=self.max_size_get_multiple_keys,
        )
        return bytes(params.SerializeToString())


#: Write-batch slots: a key's data write (put or delete: the last one wins, as in Fabric's
#: read/write set) and its metadata write (the last one wins: Fabric replaces a key's whole
#: metadata on each PUT_STATE_METADATA).
_DATA, _METADATA = 0, 1


@dataclass(frozen=True)
class KV:
    """One state entry returned by a range or partial-composite-key query."""

    key: str
    value: bytes


@dataclass(frozen=True)
class KeyModification:
    """One entry of a key's history (newest first, as the peer returns them)."""

    tx_id: str
    value: bytes
    timestamp: datetime | None
    is_delete: bool


@dataclass(frozen=True)
class StatePage:
    """A page of a paginated query: its entries, the bookmark for the next page, the count.

    ``bookmark`` is empty (or equal to the requested one) when no entries follow.
    """

    items: list[KV]
    bookmark: str
    fetched_count: int


def _validate_composite_part(part: str, what: str) -> None:
    """Raise ValueError if ``part`` contains a character reserved by composite keys."""
    if _MIN_RUNE in part or _MAX_RUNE in part:
        raise ValueError(f"{what} {part!r} contains U+0000 or U+10FFFF, reserved by composite keys")


def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
    """Build a composite key: U+0000, the type and each attribute, each followed by U+0000.

    Raises:
        ValueError: if a part contains U+0000 or U+10FFFF, or ``object_type`` is empty.
    """
    if not object_type:
        raise ValueError("composite key object type must not be empty")
    _validate_composite_part(object_type, "object type")
    for attr in attributes:
        _validate_composite_part(attr, "attribute")
    return COMPOSITE_KEY_NAMESPACE + "".join(p + _MIN_RUNE for p in (object_type, *attributes))


def split_composite_key(key: str) -> tuple[str, list[str]]:
    """Split a composite key into its object type and attributes.

    Raises:
        ValueError: if ``key`` is not a composite key.
    """
    if not key.startswith(COMPOSITE_KEY_NAMESPACE) or not key.endswith(_MIN_RUNE) or len(key) < 3:
        raise ValueError("not a composite key")
    parts = key[1:-1].split(_MIN_RUNE)
    return parts[0], parts[1:]


def _validate_simple_key(*keys: str) -> None:
    """Raise ValueError if a key of a simple range query is in the composite namespace."""
    for key in keys:
        if key.startswith(COMPOSITE_KEY_NAMESPACE):
            raise ValueError(f"key {key!r} starts with U+0000, reserved for composite keys")


def _require_key(key: str) -> None:
    """Raise ValueError for an empty key (Fabric rejects them)."""
    if not key:
        raise ValueError("key must not be an empty string")


def _decode_kv(raw: bytes) -> KV:
    kv = kv_query_result_pb2.KV()
    kv.ParseFromString(raw)
    return KV(key=kv.key, value=bytes(kv.value))


def _decode_key_modification(raw: bytes) -> KeyModification:
    km = kv_query_result_pb2.KeyModification()
    km.ParseFromString(raw)
    ts = km.timestamp.ToDatetime(tzinfo=UTC) if km.HasField("timestamp") else None
    return KeyModification(
        tx_id=km.tx_id, value=bytes(km.value), timestamp=ts, is_delete=km.is_delete
    )


class QueryIterator(Generic[T], AsyncIterator[T]):
    """Async iterator over a peer-side query, fetching further batches as it goes.

    Use ``async for``; when leaving early, call :meth:`close` (or use ``async with``) so the
    peer releases the query. Iteration raises PeerError if a QUERY_STATE_NEXT fails.
    """

    def __init__(
        self,
        stub: ChaincodeStub,
        first: ProtoMessage,
        decode: Callable[[bytes], T],
    ) -> None:
        self._stub = stub
        self._decode = decode
        self._buffer = list(first.results)
        self._pos = 0
        self._has_more = first.has_more
        self._id = first.id
        self._metadata = bytes(first.metadata)
        self._closed = False

    @property
    def response_metadata(self) -> bytes:
        """The last non-empty QueryResponseMetadata bytes the peer sent (pagination)."""
        return self._metadata

    def __aiter__(self) -> QueryIterator[T]:
        return self

    async def __anext__(self) -> T:
        while self._pos >= len(self._buffer):
            if not self._has_more or self._closed:
                self._closed = True
                raise StopAsyncIteration
            await self._fetch_next()
        item = self._buffer[self._pos]
        self._pos += 1
        return self._decode(bytes(item.resultBytes))

    async def _fetch_next(self) -> None:
        req = chaincode_shim_pb2.QueryStateNext(id=self._id)
        raw = await self._stub.call(Msg.QUERY_STATE_NEXT, req)
        resp = _parse(chaincode_shim_pb2.QueryResponse(), raw)
        self._buffer = list(resp.results)
        self._pos = 0
        self._has_more = resp.has_more
        if resp.metadata:
            self._metadata = bytes(resp.metadata)

    async def close(self) -> None:
        """Release the peer-side query if it still has results (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._has_more:
            await self._stub.call(
                Msg.QUERY_STATE_CLOSE, chaincode_shim_pb2.QueryStateClose(id=self._id)
            )

    async def __aenter__(self) -> QueryIterator[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _parse(msg: ProtoMessage, raw: bytes) -> ProtoMessage:
    """Parse ``raw`` into ``msg``, raising ProtocolError on undecodable bytes."""
    try:
        msg.ParseFromString(raw)
    except DecodeError as exc:
        raise ProtocolError(f"undecodable {type(msg).__name__} from the peer") from exc
    return msg


class ChaincodeStub:
    """The per-transaction interface to the ledger (see the module docstring)."""

    def __init__(
        self,
        caller: PeerCaller,
        channel_id: str,
        tx_id: str,
        chaincode_input: ProtoMessage,
        signed_proposal: ProtoMessage | None,
        features: PeerFeatures | None = None,
    ) -> None:
        """Build the stub of one transaction (``features``: what the peer advertised).

        Raises:
            ProtocolError: if the signed proposal cannot be decoded.
        """
        self._caller = caller
        self.features = features or PeerFeatures()
        #: Recorded writes when the peer batches them: slot → WriteRecord, first-write order.
        self._batch: dict[tuple[int, str, str], ProtoMessage] = {}
        self.channel_id = channel_id
        self.tx_id = tx_id
        self.args: list[bytes] = [bytes(a) for a in chaincode_input.args]
        self.is_init: bool = chaincode_input.is_init
        self.decorations: dict[str, bytes] = {
            k: bytes(v) for k, v in chaincode_input.decorations.items()
        }
        self.signed_proposal = signed_proposal
        #: Set by the contract layer for read-only functions; writes then raise.
        self.read_only = False
        self._lock = asyncio.Lock()
        self._event: ProtoMessage | None = None
        self.creator: bytes = b""
        self.transient: dict[str, bytes] = {}
        self.tx_timestamp: datetime | None = None
        self._identity: ClientIdentity | None = None
        if signed_proposal is not None and signed_proposal.proposal_bytes:
            self._read_proposal(bytes(signed_proposal.proposal_bytes))

    def _read_proposal(self, proposal_bytes: bytes) -> None:
        """Extract creator, timestamp and transient data from the proposal."""
        proposal = _parse(proposal_pb2.Proposal(), proposal_bytes)
        header = _parse(common_pb2.Header(), proposal.header)
        channel_header = _parse(common_pb2.ChannelHeader(), header.channel_header)
        signature_header = _parse(common_pb2.SignatureHeader(), header.signature_header)
        payload = _parse(proposal_pb2.ChaincodeProposalPayload(), proposal.payload)
        self.creator = bytes(signature_header.creator)
        if channel_header.HasField("timestamp"):
            self.tx_timestamp = channel_header.timestamp.ToDatetime(tzinfo=UTC)
        self.transient = {k: bytes(v) for k, v in payload.TransientMap.items()}

    # ----- proposal-derived information -------------------------------------------------

    @property
    def function(self) -> str:
        """The invoked function name (first argument, UTF-8), empty if there are no args."""
        return self.args[0].decode("utf-8") if self.args else ""

    @property
    def parameters(self) -> list[str]:
        """The arguments after the function name, decoded as UTF-8.

        Raises:
            UnicodeDecodeError: if an argument is not UTF-8 (use :attr:`args` for bytes).
        """
        return [a.decode("utf-8") for a in self.args[1:]]

    def get_tx_timestamp(self) -> datetime:
        """The proposal's timestamp (UTC), the only clock a transaction may use.

        Raises:
            ProtocolError: if the proposal carried no timestamp.
        """
        if self.tx_timestamp is None:
            raise ProtocolError("the proposal has no timestamp")
        return self.tx_timestamp

    @property
    def client_identity(self) -> ClientIdentity:
        """The transaction creator (MSP id, certificate, Fabric CA attributes).

        Raises:
            IdentityError: if the proposal carried no decodable creator.
        """
        if self._identity is None:
            if not self.creator:
                raise IdentityError("the proposal has no creator")
            self._identity = ClientIdentity.from_serialized(self.creator)
        return self._identity

    # ----- events ------------------------------------------------------------------------

    def _check_writable(self) -> None:
        """Raise RuntimeError if the running function was declared read-only."""
        if self.read_only:
            raise RuntimeError("a read-only transaction function tried to write")

    def set_event(self, name: str, payload: bytes = b"") -> None:
        """Set the transaction's chaincode event (one per transaction; the last call wins).

        The event travels in the COMPLETED message, so it is written into the block.

        Raises:
            ValueError: if ``name`` is empty.
        """
        if not name:
            raise ValueError("event name must not be empty")
        self._event = chaincode_event_pb2.ChaincodeEvent(event_name=name, payload=payload)

    @property
    def event(self) -> ProtoMessage | None:
        """The event set by :meth:`set_event`, if any."""
        return self._event

    # ----- peer calls --------------------------------------------------------------------

    async def call(self, msg_type: int, message: ProtoMessage) -> bytes:
        """Send one request for this transaction and return the RESPONSE payload.

        Requests of one transaction are serialized.

        Raises:
            PeerError: the peer answered ERROR.
            StreamClosedError: the connection closed first.
        """
        payload = message.SerializeToString()
        async with self._lock:
            return await self._caller.request(msg_type, payload, self.channel_id, self.tx_id)

    async def get_state(self, key: str) -> bytes:
        """Return the value of ``key`` (``b""`` when the key does not exist).

        Raises:
            ValueError: for an empty key. PeerError: the peer refused.
        """
        _require_key(key)
        return await self.call(Msg.GET_STATE, chaincode_shim_pb2.GetState(key=key))

    async def get_multiple_states(self, keys: Sequence[str]) -> list[bytes]:
        """Return the values of ``keys``, in order (``b""`` for a key that does not exist).

        One GET_STATE_MULTIPLE request per ``max_size_get_multiple_keys`` keys when the peer
        offers it, one GET_STATE per key otherwise. Like ``get_state``, it does not see this
        transaction's own writes.

        Raises:
            ValueError: for an empty key. PeerError: the peer refused.
            ProtocolError: the peer answered with a different number of values.
        """
        keys = list(keys)
        for key in keys:
            _require_key(key)
        if not self.features.use_get_multiple_keys:
            return [await self.get_state(key) for key in keys]
        size = self.features.get_multiple_size
        values: list[bytes] = []
        for start in range(0, len(keys), size):
            chunk = keys[start : start + size]
            raw = await self.call(
                Msg.GET_STATE_MULTIPLE, chaincode_shim_pb2.GetStateMultiple(keys=chunk)
            )
            result = _parse(chaincode_shim_pb2.GetStateMultipleResult(), raw)
            if len(result.values) != len(chunk):
                raise ProtocolError(
                    f"GET_STATE_MULTIPLE of {len(chunk)} keys answered {len(result.values)} values"
                )
            values.extend(bytes(v) for v in result.values)
        return values

    async def put_state(self, key: str, value: bytes | str) -> None:
        """Write ``value`` (str is UTF-8 encoded) under ``key`` (with write batching: recorded,
        sent when the transaction succeeds).

        Raises:
            ValueError: for an empty key. PeerError: the peer refused.
            RuntimeError: called from a read-only function.
        """
        _require_key(key)
        self._check_writable()
        data = value.encode("utf-8") if isinstance(value, str) else value
        if self.features.use_write_batch:
            self._record(_DATA, key, chaincode_shim_pb2.WriteRecord(
                key=key, value=data, type=chaincode_shim_pb2.WriteRecord.PUT_STATE
            ))
            return
        await self.call(Msg.PUT_STATE, chaincode_shim_pb2.PutState(key=key, value=data))

    async def delete_state(self, key: str) -> None:
        """Delete ``key`` (with write batching: recorded, sent when the transaction succeeds).

        Raises:
            ValueError: for an empty key. PeerError: the peer refused.
            RuntimeError: called from a read-only function.
        """
        _require_key(key)
        self._check_writable()
        if self.features.use_write_batch:
            self._record(_DATA, key, chaincode_shim_pb2.WriteRecord(
                key=key, type=chaincode_shim_pb2.WriteRecord.DEL_STATE
            ))
            return
        await self.call(Msg.DEL_STATE, chaincode_shim_pb2.DelState(key=key))

    async def _range(
        self, start: str, end: str, metadata: bytes = b""
    ) -> QueryIterator[KV]:
        req = chaincode_shim_pb2.GetStateByRange(startKey=start, endKey=end, metadata=metadata)
        raw = await self.call(Msg.GET_STATE_BY_RANGE, req)
        return QueryIterator(self, _parse(chaincode_shim_pb2.QueryResponse(), raw), _decode_kv)

    async def get_state_by_range(self, start_key: str, end_key: str) -> QueryIterator[KV]:
        """Iterate the keys in ``[start_key, end_key)``; empty strings mean unbounded.

        Raises:
            ValueError: if a key is in the composite-key namespace. PeerError: peer refused.
        """
        _validate_simple_key(start_key, end_key)
        return await self._range(start_key or _EMPTY_KEY_SUBSTITUTE, end_key)

    async def _paged(self, start: str, end: str, page_size: int, bookmark: str) -> StatePage:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        meta = chaincode_shim_pb2.QueryMetadata(pageSize=page_size, bookmark=bookmark)
        iterator = await self._range(start, end, meta.SerializeToString())
        items = [kv async for kv in iterator]
        resp_meta = _parse(
            chaincode_shim_pb2.QueryResponseMetadata(), iterator.response_metadata
        )
        return StatePage(
            items=items,
            bookmark=resp_meta.bookmark,
            fetched_count=resp_meta.fetched_records_count or len(items),
        )

    async def get_state_by_range_with_pagination(
        self, start_key: str, end_key: str, page_size: int, bookmark: str = ""
    ) -> StatePage:
        """Return one page (at most ``page_size`` entries) of ``[start_key, end_key)``.

        Pass the returned ``bookmark`` to get the next page.

        Raises:
            ValueError: bad key or page size. PeerError: the peer refused.
        """
        _validate_simple_key(start_key, end_key)
        return await self._paged(start_key or _EMPTY_KEY_SUBSTITUTE, end_key, page_size, bookmark)

    async def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str] = ()
    ) -> QueryIterator[KV]:
        """Iterate the composite keys that start with ``object_type`` and ``attributes``.

        Raises:
            ValueError: invalid key parts. PeerError: the peer refused.
        """
        start = create_composite_key(object_type, attributes)
        return await self._range(start, start + _MAX_RUNE)

    async def get_state_by_partial_composite_key_with_pagination(
        self, object_type: str, attributes: Sequence[str], page_size: int, bookmark: str = ""
    ) -> StatePage:
        """One page of :meth:`get_state_by_partial_composite_key`.

        Raises:
            ValueError: invalid key parts or page size. PeerError: the peer refused.
        """
        start = create_composite_key(object_type, attributes)
        return await self._paged(start, start + _MAX_RUNE, page_size, bookmark)

    async def get_history_for_key(self, key: str) -> QueryIterator[KeyModification]:
        """Iterate the committed modifications of ``key`` (needs the peer's history DB).

        Raises:
            ValueError: for an empty key. PeerError: the peer refused.
        """
        _require_key(key)
        raw = await self.call(Msg.GET_HISTORY_FOR_KEY, chaincode_shim_pb2.GetHistoryForKey(key=key))
        first = _parse(chaincode_shim_pb2.QueryResponse(), raw)
        return QueryIterator(self, first, _decode_key_modification)

    # ----- write batching (Fabric v3.1) -------------------------------------------------

    def _record(self, slot: int, key: str, record: ProtoMessage) -> None:
        """Record a batched write; a later write to the same slot replaces it in place."""
        self._batch[(slot, "", key)] = record

    @property
    def pending_writes(self) -> int:
        """How many writes are recorded for the write batch (0 without batching)."""
        return len(self._batch)

    def discard_write_batch(self) -> None:
        """Forget the recorded writes (the transaction failed: nothing is sent)."""
        self._batch.clear()

    async def finish_write_batch(self) -> int:
        """Send the recorded writes as WRITE_BATCH_STATE messages of at most
        ``max_size_write_batch`` records each; return how many messages were sent.

        Called by the session once the transaction succeeded, before COMPLETED.

        Raises:
            PeerError: the peer answered ERROR to a batch.
        """
        records = list(self._batch.values())
        self._batch.clear()
        size = self.features.write_batch_size
        sent = 0
        for start in range(0, len(records), size):
            batch = chaincode_shim_pb2.WriteBatchState(rec=records[start : start + size])
            await self.call(Msg.WRITE_BATCH_STATE, batch)
            sent += 1
        return sent

    # ----- state metadata and state-based endorsement -----------------------------------

    async def get_state_metadata(self, key: str) -> dict[str, bytes]:
        """Return every metadata entry of ``key`` (empty when it has none).

        Raises:
            ValueError: for an empty key. PeerError: the peer refused.
        """
        _require_key(key)
        raw = await self.call(Msg.GET_STATE_METADATA, chaincode_shim_pb2.GetStateMetadata(key=key))
        result = _parse(chaincode_shim_pb2.StateMetadataResult(), raw)
        return {e.metakey: bytes(e.value) for e in result.entries}

    async def put_state_metadata(self, key: str, metakey: str, value: bytes) -> None:
        """Set one metadata entry of ``key`` (with write batching: recorded, sent when the
        transaction succeeds; the last metadata write of a key wins, as in Fabric).

        Raises:
            ValueError: for an empty key. PeerError: the peer refused.
            RuntimeError: called from a read-only function.
        """
        _require_key(key)
        self._check_writable()
        entry = chaincode_shim_pb2.StateMetadata(metakey=metakey, value=value)
        if self.features.use_write_batch:
            self._record(_METADATA, key, chaincode_shim_pb2.WriteRecord(
                key=key, metadata=entry, type=chaincode_shim_pb2.WriteRecord.PUT_STATE_METADATA
            ))
            return
        req = chaincode_shim_pb2.PutStateMetadata(key=key, metadata=entry)
        await self.call(Msg.PUT_STATE_METADATA, req)

    async def get_state_validation_parameter(self, key: str) -> bytes:
        """Return the key-level endorsement policy bytes of ``key`` (``b""`` if none).

        Raises:
            ValueError: for an empty key. PeerError: the peer refused.
        """
        return (await self.get_state_metadata(key)).get(VALIDATION_PARAMETER, b"")

    async def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        """Set the key-level endorsement policy of ``key`` (a SignaturePolicyEnvelope).

        Raises:
            ValueError: for an empty key. PeerError: the peer refused.
        """
        await self.put_state_metadata(key, VALIDATION_PARAMETER, policy)

    async def get_key_endorsement_orgs(self, key: str) -> list[str]:
        """The MSP ids whose endorsement the key-level policy of ``key`` requires (sorted).

        Raises:
            ValueError: empty key, or a stored policy this helper cannot read.
            PeerError: the peer refused.
        """
        return KeyEndorsementPolicy(await self.get_state_validation_parameter(key)).list_orgs()

    async def set_key_endorsement_orgs(
        self, key: str, msp_ids: Sequence[str], role: int = ROLE_PEER
    ) -> None:
        """Require an endorsement by a ``role`` member (peer by default) of every org listed.

        Raises:
            ValueError: empty key or empty ``msp_ids``. PeerError: the peer refused.
        """
        policy = KeyEndorsementPolicy()
        policy.add_orgs(*msp_ids, role=role)
        await self.set_state_validation_parameter(key, policy.policy())

    async def get_key_endorsement_policy(self, key: str) -> Rule | None:
        """The key-level policy of ``key`` as a rule (None when it has none); reads nested
        policies too (see :mod:`chaincode.runtime.endorsement`).

        Raises:
            ValueError: empty key, or a stored policy that is not a signature policy of MSP
                role principals. PeerError: the peer refused.
        """
        raw = await self.get_state_validation_parameter(key)
        return decode_policy(raw) if raw else None

    async def set_key_endorsement_policy(self, key: str, policy: bytes) -> None:
        """Set the key-level policy of ``key`` to a serialized SignaturePolicyEnvelope, e.g.
        ``encode_policy(owner_and_majority(owner, orgs))``. It replaces the chaincode-level
        policy for writes to ``key``.

        Raises:
            ValueError: empty key, or ``policy`` does not decode as a signature policy of MSP
                role principals (checked before anything is sent). PeerError: the peer refused.
        """
        decode_policy(policy)
        await self.set_state_validation_parameter(key, policy)
