"""One peer connection: the shim protocol over a bidirectional message stream.

The chaincode sends REGISTER with its package id; the peer answers REGISTERED, then READY.
From then on the peer sends TRANSACTION (or INIT) messages; each runs as its own asyncio task,
which may send requests (GET_STATE, PUT_STATE, ...) answered by RESPONSE or ERROR, and ends
with COMPLETED (carrying the response and the chaincode event) or ERROR.

READY carries the features a Fabric v3.1 peer offers (``ChaincodeAdditionalParams``, see
:class:`~chaincode.runtime.stub.PeerFeatures`); every stub of the connection uses them. With
write batching, a successful transaction's writes go out as WRITE_BATCH_STATE messages just
before COMPLETED; a failed one (status 400 or more, or an exception) sends none.

All writes to the stream go through one lock, so at most one write is outstanding on the
stream at a time (gRPC refuses overlapping writes on one call).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from patchledger.chaincode.runtime._protos import (
    ChaincodeMessage,
    DecodeError,
    Msg,
    ProtoMessage,
    chaincode_pb2,
    proposal_response_pb2,
)
from patchledger.chaincode.runtime.errors import PeerError, ProtocolError, StreamClosedError
from patchledger.chaincode.runtime.stub import ChaincodeStub, PeerFeatures

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "Chaincode",
    "MessageStream",
    "PeerSession",
    "Response",
]

log = logging.getLogger("patchledger.chaincode.runtime")

#: Seconds a stub request waits for the peer's answer. The peer gives up on a transaction
#: after its chaincode.executetimeout (30 s by default) and then never answers.
DEFAULT_REQUEST_TIMEOUT = 120.0

#: Responses with a status at or above this are errors for the peer.
_ERROR_THRESHOLD = 400
_INTERNAL = 500


@dataclass(frozen=True)
class Response:
    """A chaincode response: status (200 OK, 4xx refusal, 5xx failure), message, payload."""

    status: int
    message: str = ""
    payload: bytes = b""

    def to_proto(self) -> ProtoMessage:
        """The ``protos.Response`` sent to the peer."""
        return proposal_response_pb2.Response(
            status=self.status, message=self.message, payload=self.payload
        )


class Chaincode(Protocol):
    """What a connection serves: one coroutine handling every transaction.

    ``invoke`` should return a :class:`Response`; an exception it lets escape is logged and
    answered with a generic status-500 response.
    """

    async def invoke(self, stub: ChaincodeStub) -> Response:
        """Handle one transaction."""
        ...


class MessageStream(Protocol):
    """A bidirectional stream of shim messages (a gRPC call, or a fake in tests)."""

    async def read(self) -> ChaincodeMessage | None:
        """Return the next message from the peer, or None once the stream has ended."""
        ...

    async def write(self, message: ChaincodeMessage) -> None:
        """Send one message to the peer (never called concurrently by the session)."""
        ...


def _type_name(msg_type: int) -> str:
    return str(Msg.Type.Name(msg_type)) if msg_type in Msg.Type.values() else str(msg_type)


class PeerSession:
    """Runs the shim protocol for one peer connection (see the module docstring)."""

    def __init__(
        self,
        stream: MessageStream,
        chaincode_id: str,
        chaincode: Chaincode,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self._stream = stream
        self._chaincode_id = chaincode_id
        self._chaincode = chaincode
        self._request_timeout = request_timeout
        self._write_lock = asyncio.Lock()
        self._pending: dict[tuple[str, str], asyncio.Future[ChaincodeMessage]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._state = "created"
        self._closed = False
        self._features = PeerFeatures()

    @property
    def features(self) -> PeerFeatures:
        """What the peer advertised in READY (all off before READY or for older peers)."""
        return self._features

    @property
    def in_flight(self) -> int:
        """Transactions of this connection that have not replied yet."""
        return len(self._tasks)

    @property
    def state(self) -> str:
        """``created`` → ``established`` (REGISTERED) → ``ready`` (READY); ``closed`` at end."""
        return self._state

    async def send(self, message: ChaincodeMessage) -> None:
        """Write one message; writes are serialized by a lock.

        Raises:
            StreamClosedError: the session has ended.
            Exception: whatever the stream's ``write`` raises.
        """
        if self._closed:
            raise StreamClosedError("the peer stream is closed")
        async with self._write_lock:
            await self._stream.write(message)

    async def run(self) -> None:
        """Register, then handle messages until the stream ends or breaks the protocol.

        On return every pending request has failed with StreamClosedError and every
        transaction task has been cancelled.

        Raises:
            Exception: an error reading from or writing to the stream.
        """
        try:
            register = chaincode_pb2.ChaincodeID(name=self._chaincode_id)
            await self.send(Msg(type=Msg.REGISTER, payload=register.SerializeToString()))
            while (message := await self._stream.read()) is not None:
                try:
                    await self._handle(message)
                except ProtocolError as exc:
                    log.warning("protocol error, closing the connection: %s", exc)
                    error = Msg(
                        type=Msg.ERROR, payload=str(exc).encode(), txid=message.txid,
                        channel_id=message.channel_id,
                    )
                    await self.send(error)
                    return
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._closed = True
        self._state = "closed"
        for future in self._pending.values():
            if not future.done():
                future.set_exception(StreamClosedError("the peer stream closed"))
        self._pending.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, message: ChaincodeMessage) -> None:
        """Dispatch one incoming message according to the session state.

        Raises:
            ProtocolError: the message is not allowed in the current state.
        """
        if message.type == Msg.KEEPALIVE:
            await self.send(message)
            return
        if self._state == "created":
            self._expect(message, Msg.REGISTERED)
            self._state = "established"
            log.info("registered with the peer as %s", self._chaincode_id)
        elif self._state == "established":
            self._expect(message, Msg.READY)
            self._features = PeerFeatures.from_ready(bytes(message.payload))
            self._state = "ready"
            log.info("peer ready: %s", self._features)
        elif message.type in (Msg.RESPONSE, Msg.ERROR):
            self._resolve(message)
        elif message.type in (Msg.TRANSACTION, Msg.INIT):
            task = asyncio.create_task(self._run_transaction(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            raise ProtocolError(
                f"unexpected {_type_name(message.type)} message in state {self._state}"
            )

    def _expect(self, message: ChaincodeMessage, msg_type: int) -> None:
        if message.type != msg_type:
            raise ProtocolError(
                f"expected {_type_name(msg_type)}, got {_type_name(message.type)} "
                f"in state {self._state}"
            )

    def _resolve(self, message: ChaincodeMessage) -> None:
        future = self._pending.pop((message.channel_id, message.txid), None)
        if future is None or future.done():
            log.debug("dropping an answer for no pending request (tx %.8s)", message.txid)
            return
        future.set_result(message)

    async def request(self, msg_type: int, payload: bytes, channel_id: str, txid: str) -> bytes:
        """Send a request for transaction ``txid`` and wait for the peer's answer.

        The caller must not have another request of the same transaction outstanding (the
        stub serializes them).

        Raises:
            PeerError: the peer answered ERROR, or did not answer in time.
            StreamClosedError: the stream closed before the answer.
            ProtocolError: a request for this transaction is already outstanding.
        """
        key = (channel_id, txid)
        if key in self._pending:
            raise ProtocolError(f"a request for tx {txid:.8} is already outstanding")
        future: asyncio.Future[ChaincodeMessage] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            await self.send(Msg(type=msg_type, payload=payload, txid=txid, channel_id=channel_id))
            async with asyncio.timeout(self._request_timeout):
                answer = await future
        except TimeoutError as exc:
            raise PeerError(f"no answer from the peer to {_type_name(msg_type)}") from exc
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]
        if answer.type == Msg.ERROR:
            raise PeerError(answer.payload.decode("utf-8", errors="replace"))
        if answer.type != Msg.RESPONSE:
            raise ProtocolError(f"expected RESPONSE or ERROR, got {_type_name(answer.type)}")
        return bytes(answer.payload)

    async def _run_transaction(self, message: ChaincodeMessage) -> None:
        """Run one transaction and send COMPLETED or ERROR (never raises)."""
        try:
            reply = await self._execute(message)
        except asyncio.CancelledError:
            raise
        except ProtocolError as exc:
            log.warning("transaction %.8s refused: %s", message.txid, exc)
            reply = Msg(
                type=Msg.ERROR, payload=str(exc).encode(), txid=message.txid,
                channel_id=message.channel_id,
            )
        except Exception:
            log.exception("transaction %.8s could not be set up", message.txid)
            reply = Msg(
                type=Msg.ERROR, payload=b"internal error", txid=message.txid,
                channel_id=message.channel_id,
            )
        try:
            await self.send(reply)
        except StreamClosedError:
            log.debug("stream closed before the reply of tx %.8s", message.txid)
        except Exception as exc:
            log.warning("could not send the reply of tx %.8s: %s", message.txid, exc)

    async def _finish_writes(self, stub: ChaincodeStub, response: Response) -> Response:
        """Send the batched writes of a successful transaction (none for a failed one).

        A refused batch turns the response into an internal failure (status 500).
        """
        if response.status >= _ERROR_THRESHOLD:
            stub.discard_write_batch()
            return response
        try:
            await stub.finish_write_batch()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("transaction %.8s: the peer refused its write batch", stub.tx_id)
            return Response(_INTERNAL, "internal error")
        return response

    async def _execute(self, message: ChaincodeMessage) -> ChaincodeMessage:
        """Build the stub, invoke the chaincode, and build the reply message.

        Raises:
            ProtocolError: the transaction's input or proposal cannot be decoded.
        """
        chaincode_input = chaincode_pb2.ChaincodeInput()
        try:
            chaincode_input.ParseFromString(message.payload)
        except DecodeError as exc:
            raise ProtocolError("undecodable ChaincodeInput") from exc
        proposal = message.proposal if message.HasField("proposal") else None
        stub = ChaincodeStub(
            self, message.channel_id, message.txid, chaincode_input, proposal, self._features
        )
        try:
            response = await self._chaincode.invoke(stub)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("transaction %.8s failed", message.txid)
            response = Response(_INTERNAL, "internal error")
        response = await self._finish_writes(stub, response)
        reply = Msg(txid=message.txid, channel_id=message.channel_id)
        if stub.event is not None:
            reply.chaincode_event.CopyFrom(stub.event)
        if message.type == Msg.INIT and response.status >= _INTERNAL:
            reply.type = Msg.ERROR
            reply.payload = response.message.encode("utf-8")
        else:
            reply.type = Msg.COMPLETED
            reply.payload = response.to_proto().SerializeToString()
        if response.status >= _ERROR_THRESHOLD:
            log.info("tx %.8s answered status %d", message.txid, response.status)
        return reply
