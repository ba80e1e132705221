"""An in-process fake peer: the Gateway and Deliver gRPC services on 127.0.0.1.

It checks requests as a Fabric peer does (transaction id = SHA-256(nonce + creator), creator
signature, low S) and keeps a real hash-chained ledger: each Submit cuts one block signed by
the fake orderer, which Deliver and ChaincodeEvents then serve. Every request is captured for
assertions. Failures can be scripted per phase with :meth:`FakeGateway.fail_next`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc

from patchledger.app.fabric._protos import (
    ab_pb2,
    chaincode_event_pb2,
    chaincode_pb2,
    common_pb2,
    events_pb2,
    events_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    proposal_pb2,
)
from patchledger.app.fabric._rpcstatus import STATUS_DETAILS_KEY, encode_status
from patchledger.app.fabric.blocks import parse_block
from patchledger.app.fabric.errors import ErrorDetail
from patchledger.app.fabric.identity import load_certificate, parse_serialized_identity
from patchledger.app.fabric.signing import verify_signature
from patchledger.app.fabric.transaction_context import compute_transaction_id
from tests.support.fabric.blocks import ChainBuilder, endorse_proposal
from tests.support.fabric.pki import TestIdentity

#: The chaincode: ``(function, args, transient) -> (result, optional (event name, payload))``.
Chaincode = Callable[[str, list[bytes], dict[str, bytes]], tuple[bytes, tuple[str, bytes] | None]]


def echo_chaincode(
    function: str, args: list[bytes], transient: dict[str, bytes]
) -> tuple[bytes, tuple[str, bytes] | None]:
    """Default chaincode: returns ``function:arg1,arg2`` and emits event ``function``."""
    del transient
    result = function.encode() + b":" + b",".join(args)
    return result, (function, result)


@dataclass
class ScriptedFailure:
    """A failure to return from the next call of one phase."""

    code: grpc.StatusCode
    message: str
    details: Sequence[ErrorDetail] = ()


@dataclass
class Captured:
    """Requests received, per RPC."""

    evaluate: list[Any] = field(default_factory=list)
    endorse: list[Any] = field(default_factory=list)
    submit: list[Any] = field(default_factory=list)
    commit_status: list[Any] = field(default_factory=list)
    chaincode_events: list[Any] = field(default_factory=list)
    deliver: list[Any] = field(default_factory=list)


class FakeGateway:
    """The fake peer. Use as a context manager; ``address`` is ``127.0.0.1:<port>``.

    With ``tls`` (a server identity whose certificate names ``127.0.0.1``/``localhost``) it
    serves TLS; with ``client_ca_pem`` too it requires client certificates (mutual TLS).
    """

    def __init__(
        self,
        *,
        channel: str,
        peer: TestIdentity,
        orderer: TestIdentity,
        chaincode: Chaincode = echo_chaincode,
        tls: TestIdentity | None = None,
        client_ca_pem: bytes | None = None,
    ) -> None:
        self.channel = channel
        self.peer = peer
        self.chaincode = chaincode
        self.chain = ChainBuilder(channel, [orderer])
        self.chain.genesis()
        self.captured = Captured()
        self.commit_codes: dict[str, int] = {}  # tx id -> validation code to commit with
        self.default_commit_code = 0  # for transactions not in commit_codes
        self.hold_commits = False  # accept submissions but never commit them (a lost tx)
        self._failures: dict[str, list[ScriptedFailure]] = {}
        self._tx_blocks: dict[str, int] = {}
        self._lock = threading.Condition()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        gateway_pb2_grpc.add_GatewayServicer_to_server(_GatewayServicer(self), self._server)
        events_pb2_grpc.add_DeliverServicer_to_server(_DeliverServicer(self), self._server)
        if tls is None:
            port = self._server.add_insecure_port("127.0.0.1:0")
        else:  # TLS server identity; mutual TLS when client_ca_pem is given
            credentials = grpc.ssl_server_credentials(
                [(tls.signer.private_key_pem(), tls.identity.credentials)],
                root_certificates=client_ca_pem,
                require_client_auth=client_ca_pem is not None,
            )
            port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self.address = f"127.0.0.1:{port}"

    def __enter__(self) -> FakeGateway:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._lock.notify_all()
        self._server.stop(grace=None)

    def fail_next(self, phase: str, failure: ScriptedFailure) -> None:
        """Make the next call of ``phase`` fail (evaluate, endorse, submit, commit_status,
        chaincode_events, deliver)."""
        self._failures.setdefault(phase, []).append(failure)

    def add_block(self, envelopes: Sequence[bytes], codes: Sequence[int] | None = None) -> Any:
        """Append a block directly (as if another client had submitted) and wake streams."""
        with self._lock:
            block = self.chain.add(envelopes, codes)
            self._lock.notify_all()
            return block

    @property
    def height(self) -> int:
        """Number of blocks in the fake ledger."""
        return len(self.chain.blocks)

    def wait_for_block(self, number: int, context: grpc.ServicerContext) -> Any | None:
        """Block until ``number`` exists or the call ends; ``None`` if it ended."""
        with self._lock:
            while number >= len(self.chain.blocks):
                if not context.is_active():
                    return None
                self._lock.wait(0.05)
            return self.chain.blocks[number]

    def abort_if_scripted(self, phase: str, context: grpc.ServicerContext) -> None:
        """Abort the call with the next scripted failure of ``phase``, if any."""
        pending = self._failures.get(phase)
        if pending:
            failure = pending.pop(0)
            status = encode_status(failure.code, failure.message, failure.details)
            context.set_trailing_metadata(((STATUS_DETAILS_KEY, status),))
            context.abort(failure.code, failure.message)

    def check_signed(
        self, data: bytes, signature: bytes, creator: bytes, context: grpc.ServicerContext
    ) -> None:
        """Abort with PERMISSION_DENIED unless ``signature`` is the creator's over ``data``."""
        _, pem = parse_serialized_identity(creator)
        if not verify_signature(load_certificate(pem), data, signature):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "signature is not valid")

    def check_proposal(self, signed: Any, context: grpc.ServicerContext) -> tuple[Any, Any]:
        """Validate a SignedProposal as the endorser does; return (channel header, proposal)."""
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
        if not signature_header.nonce:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "nonce is empty")
        expected = compute_transaction_id(signature_header.nonce, signature_header.creator)
        if channel_header.tx_id != expected:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "incorrectly computed txid")
        if channel_header.type != common_pb2.ENDORSER_TRANSACTION:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid header type")
        self.check_signed(
            signed.proposal_bytes, signed.signature, signature_header.creator, context
        )
        return channel_header, proposal

    def run_chaincode(self, proposal: Any) -> tuple[bytes, tuple[str, bytes] | None]:
        """Invoke the fake chaincode with the proposal's input."""
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
        spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input).chaincode_spec
        args = list(spec.input.args)
        return self.chaincode(args[0].decode(), args[1:], dict(payload.TransientMap))

    def commit(self, tx_id: str, envelope: Any) -> None:
        """Cut a block holding one submitted envelope."""
        code = self.commit_codes.get(tx_id, self.default_commit_code)
        block = self.add_block([envelope.SerializeToString()], [code])
        with self._lock:
            self._tx_blocks[tx_id] = int(block.header.number)
            self._lock.notify_all()

    def wait_committed(self, tx_id: str, context: grpc.ServicerContext) -> int | None:
        """Block until ``tx_id`` is committed; return its block number."""
        with self._lock:
            while tx_id not in self._tx_blocks:
                if not context.is_active():
                    return None
                self._lock.wait(0.05)
            return self._tx_blocks[tx_id]


class _GatewayServicer(gateway_pb2_grpc.GatewayServicer):  # type: ignore[misc]
    def __init__(self, fake: FakeGateway) -> None:
        self.fake = fake

    def Evaluate(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.fake.captured.evaluate.append(request)
        self.fake.abort_if_scripted("evaluate", context)
        _, proposal = self.fake.check_proposal(request.proposed_transaction, context)
        result, _ = self.fake.run_chaincode(proposal)
        return gateway_pb2.EvaluateResponse(result={"status": 200, "payload": result})

    def Endorse(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.fake.captured.endorse.append(request)
        self.fake.abort_if_scripted("endorse", context)
        signed = request.proposed_transaction
        self.fake.check_proposal(signed, context)
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        result, event = self.fake.run_chaincode(proposal)
        envelope = endorse_proposal(
            signed.proposal_bytes, response_payload=result, event=event, endorsers=[self.fake.peer]
        )
        return gateway_pb2.EndorseResponse(prepared_transaction=envelope)

    def Submit(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.fake.captured.submit.append(request)
        self.fake.abort_if_scripted("submit", context)
        envelope = request.prepared_transaction
        if not envelope.signature:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "prepared transaction must be signed")
        payload = common_pb2.Payload.FromString(envelope.payload)
        creator = common_pb2.SignatureHeader.FromString(payload.header.signature_header).creator
        self.fake.check_signed(envelope.payload, envelope.signature, creator, context)
        if not self.fake.hold_commits:
            self.fake.commit(request.transaction_id, envelope)
        return gateway_pb2.SubmitResponse()

    def CommitStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.fake.captured.commit_status.append(request)
        self.fake.abort_if_scripted("commit_status", context)
        inner = gateway_pb2.CommitStatusRequest.FromString(request.request)
        self.fake.check_signed(request.request, request.signature, inner.identity, context)
        number = self.fake.wait_committed(inner.transaction_id, context)
        code = self.fake.commit_codes.get(inner.transaction_id, self.fake.default_commit_code)
        return gateway_pb2.CommitStatusResponse(result=code, block_number=number or 0)

    def ChaincodeEvents(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self.fake.captured.chaincode_events.append(request)
        self.fake.abort_if_scripted("chaincode_events", context)
        inner = gateway_pb2.ChaincodeEventsRequest.FromString(request.request)
        self.fake.check_signed(request.request, request.signature, inner.identity, context)
        position = inner.start_position
        kind = position.WhichOneof("Type")
        if kind == "specified":
            number = int(position.specified.number)
        elif kind in (None, "next_commit"):
            number = self.fake.height
        else:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid start position {kind}")
        skipping = bool(inner.after_transaction_id)
        while True:
            block = self.fake.wait_for_block(number, context)
            if block is None:
                return
            events = []
            for tx in _transactions(block):
                if skipping:
                    skipping = tx["tx_id"] != inner.after_transaction_id
                    continue
                if (
                    tx["code"] == 0
                    and tx["event"] is not None
                    and (tx["event"].chaincode_id == inner.chaincode_id)
                ):
                    events.append(tx["event"])
            if events:
                yield gateway_pb2.ChaincodeEventsResponse(events=events, block_number=number)
            number += 1


class _DeliverServicer(events_pb2_grpc.DeliverServicer):  # type: ignore[misc]
    def __init__(self, fake: FakeGateway) -> None:
        self.fake = fake

    def Deliver(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        envelope = next(request_iterator)
        self.fake.captured.deliver.append(envelope)
        self.fake.abort_if_scripted("deliver", context)
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        creator = common_pb2.SignatureHeader.FromString(payload.header.signature_header).creator
        _, pem = parse_serialized_identity(creator)
        if channel_header.type != common_pb2.DELIVER_SEEK_INFO or not verify_signature(
            load_certificate(pem), envelope.payload, envelope.signature
        ):
            yield events_pb2.DeliverResponse(status=common_pb2.BAD_REQUEST)
            return
        if channel_header.channel_id != self.fake.channel:
            yield events_pb2.DeliverResponse(status=common_pb2.NOT_FOUND)
            return
        seek = ab_pb2.SeekInfo.FromString(payload.data)
        number = self._position(seek.start, oldest=True)
        stop = self._position(seek.stop, oldest=False)
        while number <= stop:
            block = self.fake.wait_for_block(number, context)
            if block is None:
                return
            yield events_pb2.DeliverResponse(block=block)
            number += 1
        yield events_pb2.DeliverResponse(status=common_pb2.SUCCESS)

    def _position(self, position: Any, *, oldest: bool) -> int:
        kind = position.WhichOneof("Type")
        if kind == "specified":
            return int(position.specified.number)
        if kind == "oldest":
            return 0
        if kind == "newest":
            return self.fake.height - 1
        return self.fake.height if oldest else 2**64 - 1


def _transactions(block: Any) -> Iterator[dict[str, Any]]:
    for tx in parse_block(block).transactions:
        event = None
        if tx.event is not None:
            event = chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=tx.event.chaincode_name,
                tx_id=tx.event.transaction_id,
                event_name=tx.event.event_name,
                payload=tx.event.payload,
            )
        yield {"tx_id": tx.transaction_id, "code": tx.validation_code, "event": event}
