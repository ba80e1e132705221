"""Test helpers: an in-process fake peer and proposal/certificate builders.

:class:`FakePeer` implements the chaincode side's :class:`~chaincode.runtime.handler.MessageStream`
and plays the peer: it answers REGISTER, sends READY, sends transactions, and answers stub
requests from an in-memory world state (applied immediately, no read/write sets, no
validation). Its ``features`` are what it advertises in READY (Fabric v3.1 write batching and
multi-key reads; all off by default, like a peer before v3.1); it serves WRITE_BATCH_STATE and
GET_STATE_MULTIPLE either way. It records every message the chaincode wrote and fails loudly
when two writes overlap, as a gRPC stream would. It is meant for unit tests of the runtime and
of contracts; it is not a model of endorsement or commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchledger.chaincode.runtime._protos import (
    ChaincodeMessage,
    Msg,
    ProtoMessage,
    chaincode_pb2,
    chaincode_shim_pb2,
    common_pb2,
    identities_pb2,
    kv_query_result_pb2,
    proposal_pb2,
    proposal_response_pb2,
    timestamp_pb2,
)
from patchledger.chaincode.runtime.identity import FABRIC_CA_ATTRS_OID
from patchledger.chaincode.runtime.stub import PeerFeatures

__all__ = [
    "FakePeer",
    "IssuedCertificate",
    "make_certificate",
    "make_creator",
    "make_signed_proposal",
    "parse_response",
]

DEFAULT_CHANNEL = "testchannel"
DEFAULT_TIME = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def make_certificate(
    common_name: str,
    *,
    attrs: Mapping[str, str] | None = None,
    issuer: IssuedCertificate | None = None,
    is_ca: bool = False,
    sans: Sequence[str] = (),
    ou: str = "client",
) -> IssuedCertificate:
    """Create an ECDSA P-256 certificate, self-signed unless ``issuer`` is given.

    ``attrs`` are written into the Fabric CA attribute extension (OID 1.2.3.4.5.6.7.8.1) as
    raw JSON ``{"attrs": {...}}``, as Fabric CA does. ``sans`` are DNS names or IP literals.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "patchledger"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_cert = x509.load_pem_x509_certificate(issuer.cert_pem)
        issuer_name = issuer_cert.subject
        loaded = serialization.load_pem_private_key(issuer.key_pem, password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        signing_key = loaded
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_sans(sans)), critical=False)
    if attrs is not None:
        raw = json.dumps({"attrs": dict(attrs)}).encode()
        builder = builder.add_extension(
            x509.UnrecognizedExtension(FABRIC_CA_ATTRS_OID, raw), critical=False
        )
    cert = builder.sign(signing_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return IssuedCertificate(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def _sans(names: Sequence[str]) -> list[x509.GeneralName]:
    import ipaddress

    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def make_creator(msp_id: str, cert_pem: bytes) -> bytes:
    """A serialized ``msp.SerializedIdentity``."""
    ident = identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=cert_pem)
    return bytes(ident.SerializeToString())


def make_signed_proposal(
    *,
    channel_id: str,
    tx_id: str,
    args: Sequence[bytes],
    creator: bytes,
    transient: Mapping[str, bytes] | None = None,
    timestamp: dt.datetime = DEFAULT_TIME,
) -> ProtoMessage:
    """An (unsigned) SignedProposal carrying what the stub reads."""
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(timestamp)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel_id, tx_id=tx_id, timestamp=ts
    )
    signature_header = common_pb2.SignatureHeader(creator=creator, nonce=b"nonce")
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=signature_header.SerializeToString(),
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(input=chaincode_pb2.ChaincodeInput(args=args))
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=spec.SerializeToString(), TransientMap=dict(transient or {})
    )
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
    return proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString())


def parse_response(message: ChaincodeMessage) -> ProtoMessage:
    """The ``protos.Response`` inside a COMPLETED message."""
    response = proposal_response_pb2.Response()
    response.ParseFromString(message.payload)
    return response


@dataclass
class _History:
    tx_id: str
    value: bytes
    is_delete: bool
    timestamp: dt.datetime


@dataclass
class _Query:
    results: list[bytes]
    metadata: bytes = b""


@dataclass
class FakePeer:
    """An in-process peer speaking the shim protocol (see the module docstring).

    Attributes:
        state, metadata: the world state and per-key metadata.
        written: every message the chaincode wrote, in order.
        overlapping_writes: how many writes started while another was in progress.
        fail_next: message type → error text; the next request of that type gets ERROR.
        batch_size: results per QueryResponse (small, to exercise QUERY_STATE_NEXT).
        write_delay: seconds each write takes (0 yields once), to expose overlaps.
        features: what READY advertises (``PeerFeatures(use_write_batch=True, ...)``).
    """

    channel_id: str = DEFAULT_CHANNEL
    batch_size: int = 3
    write_delay: float = 0.0
    state: dict[str, bytes] = field(default_factory=dict)
    metadata: dict[str, dict[str, bytes]] = field(default_factory=dict)
    history: dict[str, list[_History]] = field(default_factory=dict)
    written: list[ChaincodeMessage] = field(default_factory=list)
    overlapping_writes: int = 0
    fail_next: dict[int, str] = field(default_factory=dict)
    auto_answer: bool = True
    features: PeerFeatures = field(default_factory=PeerFeatures)
    _inbox: asyncio.Queue[ChaincodeMessage | None] = field(default_factory=asyncio.Queue)
    _replies: dict[str, asyncio.Future[ChaincodeMessage]] = field(default_factory=dict)
    _queries: dict[str, _Query] = field(default_factory=dict)
    _writing: bool = False
    _registered: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _tx_time: dict[str, dt.datetime] = field(default_factory=dict)

    # ----- MessageStream (the chaincode's side) ------------------------------------------

    async def read(self) -> ChaincodeMessage | None:
        """Next message for the chaincode; None once :meth:`close` was called."""
        return await self._inbox.get()

    async def write(self, message: ChaincodeMessage) -> None:
        """Receive one message from the chaincode and answer it like a peer would.

        Raises:
            RuntimeError: another write is in progress (gRPC would refuse it too).
        """
        if self._writing:
            self.overlapping_writes += 1
            raise RuntimeError("overlapping writes on one stream")
        self._writing = True
        try:
            await asyncio.sleep(self.write_delay)
        finally:
            self._writing = False
        self.written.append(message)
        self._answer(message)

    # ----- driving it (the test's side) --------------------------------------------------

    def deliver(self, message: ChaincodeMessage | None) -> None:
        """Queue a message (or end of stream, None) for the chaincode to read."""
        self._inbox.put_nowait(message)

    def close(self) -> None:
        """End the stream."""
        self.deliver(None)

    async def transact(
        self,
        *args: str | bytes,
        creator: bytes = b"",
        transient: Mapping[str, bytes] | None = None,
        tx_id: str | None = None,
        timestamp: dt.datetime = DEFAULT_TIME,
        msg_type: int = Msg.TRANSACTION,
    ) -> ChaincodeMessage:
        """Send a TRANSACTION and return the chaincode's COMPLETED or ERROR message.

        Waits for the chaincode to have registered first, as a real peer does.
        """
        await self._registered.wait()
        tx_id = tx_id or f"tx{next(self._ids):06d}"
        raw = [a.encode() if isinstance(a, str) else a for a in args]
        proposal = make_signed_proposal(
            channel_id=self.channel_id, tx_id=tx_id, args=raw, creator=creator,
            transient=transient, timestamp=timestamp,
        )
        future: asyncio.Future[ChaincodeMessage] = asyncio.get_running_loop().create_future()
        self._replies[tx_id] = future
        self._tx_time[tx_id] = timestamp
        self.deliver(Msg(
            type=msg_type, txid=tx_id, channel_id=self.channel_id, proposal=proposal,
            payload=chaincode_pb2.ChaincodeInput(args=raw).SerializeToString(),
        ))
        return await future

    # ----- the peer's answers ------------------------------------------------------------

    def _answer(self, message: ChaincodeMessage) -> None:
        if message.type == Msg.REGISTER:
            self.deliver(Msg(type=Msg.REGISTERED))
            self.deliver(Msg(type=Msg.READY, payload=self.features.to_ready()))
            self._registered.set()
            return
        if message.type in (Msg.COMPLETED, Msg.ERROR):
            future = self._replies.pop(message.txid, None)
            if future is not None and not future.done():
                future.set_result(message)
            return
        if not self.auto_answer:
            return
        failure = self.fail_next.pop(message.type, None)
        if failure is not None:
            self._reply(message, Msg.ERROR, failure.encode())
            return
        try:
            payload = self._serve(message)
        except (KeyError, ValueError) as exc:
            self._reply(message, Msg.ERROR, str(exc).encode())
            return
        self._reply(message, Msg.RESPONSE, payload)

    def _reply(self, request: ChaincodeMessage, msg_type: int, payload: bytes) -> None:
        self.deliver(Msg(
            type=msg_type, payload=payload, txid=request.txid, channel_id=request.channel_id
        ))

    def _serve(self, m: ChaincodeMessage) -> bytes:
        """Compute the RESPONSE payload of one request.

        Raises:
            KeyError, ValueError: the request cannot be served (answered with ERROR).
        """
        t = m.type
        if t == Msg.GET_STATE:
            return self.state.get(_parse(chaincode_shim_pb2.GetState(), m.payload).key, b"")
        if t == Msg.PUT_STATE:
            req = _parse(chaincode_shim_pb2.PutState(), m.payload)
            self._write(m.txid, req.key, bytes(req.value), is_delete=False)
            return b""
        if t == Msg.DEL_STATE:
            self._write(m.txid, _parse(chaincode_shim_pb2.DelState(), m.payload).key, b"", True)
            return b""
        if t == Msg.GET_STATE_BY_RANGE:
            return self._range(_parse(chaincode_shim_pb2.GetStateByRange(), m.payload))
        if t == Msg.QUERY_STATE_NEXT:
            return self._next(_parse(chaincode_shim_pb2.QueryStateNext(), m.payload).id)
        if t == Msg.QUERY_STATE_CLOSE:
            query_id = _parse(chaincode_shim_pb2.QueryStateClose(), m.payload).id
            self._queries.pop(query_id, None)
            return bytes(chaincode_shim_pb2.QueryResponse(id=query_id).SerializeToString())
        if t == Msg.GET_HISTORY_FOR_KEY:
            return self._history(_parse(chaincode_shim_pb2.GetHistoryForKey(), m.payload).key)
        if t == Msg.GET_STATE_METADATA:
            key = _parse(chaincode_shim_pb2.GetStateMetadata(), m.payload).key
            result = chaincode_shim_pb2.StateMetadataResult(entries=[
                chaincode_shim_pb2.StateMetadata(metakey=k, value=v)
                for k, v in sorted(self.metadata.get(key, {}).items())
            ])
            return bytes(result.SerializeToString())
        if t == Msg.PUT_STATE_METADATA:
            req = _parse(chaincode_shim_pb2.PutStateMetadata(), m.payload)
            entry = req.metadata
            self.metadata.setdefault(req.key, {})[entry.metakey] = bytes(entry.value)
            return b""
        if t == Msg.GET_STATE_MULTIPLE:
            keys = _parse(chaincode_shim_pb2.GetStateMultiple(), m.payload).keys
            result = chaincode_shim_pb2.GetStateMultipleResult(
                values=[self.state.get(k, b"") for k in keys]
            )
            return bytes(result.SerializeToString())
        if t == Msg.WRITE_BATCH_STATE:
            for rec in _parse(chaincode_shim_pb2.WriteBatchState(), m.payload).rec:
                self._apply(m.txid, rec)
            return b""
        raise ValueError(f"fake peer does not serve {Msg.Type.Name(t)}")

    def _apply(self, tx_id: str, rec: ProtoMessage) -> None:
        """Apply one WriteRecord of a WRITE_BATCH_STATE.

        Raises:
            ValueError: a record type the fake peer does not serve.
        """
        kind = chaincode_shim_pb2.WriteRecord
        if rec.type == kind.PUT_STATE:
            self._write(tx_id, rec.key, bytes(rec.value), is_delete=False)
        elif rec.type == kind.DEL_STATE:
            self._write(tx_id, rec.key, b"", is_delete=True)
        elif rec.type == kind.PUT_STATE_METADATA:
            self.metadata.setdefault(rec.key, {})[rec.metadata.metakey] = bytes(rec.metadata.value)
        else:
            raise ValueError(f"fake peer does not apply write record type {rec.type}")

    def _write(self, tx_id: str, key: str, value: bytes, is_delete: bool) -> None:
        if is_delete:
            self.state.pop(key, None)
        else:
            self.state[key] = value
        when = self._tx_time.get(tx_id, DEFAULT_TIME)
        self.history.setdefault(key, []).append(_History(tx_id, value, is_delete, when))

    def _range(self, req: ProtoMessage) -> bytes:
        start = max(req.startKey, _bookmark(req.metadata))
        keys = sorted(k for k in self.state if k >= start and (not req.endKey or k < req.endKey))
        meta = b""
        if req.metadata:
            page_size = _page_size(req.metadata)
            following = keys[page_size:]
            keys = keys[:page_size]
            meta = chaincode_shim_pb2.QueryResponseMetadata(
                fetched_records_count=len(keys), bookmark=following[0] if following else ""
            ).SerializeToString()
        results = [
            kv_query_result_pb2.KV(namespace="cc", key=k, value=self.state[k]).SerializeToString()
            for k in keys
        ]
        return self._start_query(results, meta)

    def _history(self, key: str) -> bytes:
        results = []
        for entry in reversed(self.history.get(key, [])):
            ts = timestamp_pb2.Timestamp()
            ts.FromDatetime(entry.timestamp)
            mod = kv_query_result_pb2.KeyModification(
                tx_id=entry.tx_id, value=entry.value, timestamp=ts, is_delete=entry.is_delete
            )
            results.append(mod.SerializeToString())
        return self._start_query(results, b"")

    def _start_query(self, results: list[bytes], metadata: bytes) -> bytes:
        query_id = f"q{next(self._ids)}"
        self._queries[query_id] = _Query(results, metadata)
        return self._next(query_id)

    def _next(self, query_id: str) -> bytes:
        query = self._queries[query_id]
        batch, query.results = query.results[: self.batch_size], query.results[self.batch_size :]
        has_more = bool(query.results)
        resp = chaincode_shim_pb2.QueryResponse(
            results=[chaincode_shim_pb2.QueryResultBytes(resultBytes=r) for r in batch],
            has_more=has_more, id=query_id, metadata=b"" if has_more else query.metadata,
        )
        if not has_more:
            del self._queries[query_id]
        return bytes(resp.SerializeToString())


def _parse(message: ProtoMessage, raw: bytes) -> ProtoMessage:
    message.ParseFromString(raw)
    return message


def _bookmark(metadata: bytes) -> str:
    if not metadata:
        return ""
    return str(_parse(chaincode_shim_pb2.QueryMetadata(), metadata).bookmark)


def _page_size(metadata: bytes) -> int:
    return int(_parse(chaincode_shim_pb2.QueryMetadata(), metadata).pageSize)
