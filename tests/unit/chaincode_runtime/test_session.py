"""The shim protocol over a fake peer stream: handshake, transactions, errors, concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from patchledger.chaincode.runtime import (
    Context,
    Contract,
    ContractError,
    PeerError,
    PeerSession,
    Response,
)
from patchledger.chaincode.runtime._protos import Msg, chaincode_pb2
from patchledger.chaincode.runtime.stub import ChaincodeStub
from tests.support.chaincode_runtime import FakePeer, parse_response

T = TypeVar("T")
CC_ID = "testcc_1.0:abc"


async def _with_session(
    chaincode: Any, body: Callable[[FakePeer, PeerSession], Awaitable[T]], peer: FakePeer | None
) -> T:
    peer = peer or FakePeer()
    session = PeerSession(peer, CC_ID, chaincode, request_timeout=5)
    task = asyncio.create_task(session.run())
    try:
        return await asyncio.wait_for(body(peer, session), 10)
    finally:
        peer.close()
        await task


def drive(
    chaincode: Any,
    body: Callable[[FakePeer, PeerSession], Awaitable[T]],
    peer: FakePeer | None = None,
) -> T:
    return asyncio.run(_with_session(chaincode, body, peer))


def _kv_contract() -> Contract:
    c = Contract("kv")

    @c.transaction
    async def Put(ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value)

    @c.transaction(read_only=True)
    async def Get(ctx: Context, key: str) -> str:
        return (await ctx.stub.get_state(key)).decode()

    @c.transaction
    async def Swap(ctx: Context, a: str, b: str) -> list[str]:
        va, vb = await ctx.stub.get_state(a), await ctx.stub.get_state(b)
        await ctx.stub.put_state(a, vb)
        await ctx.stub.put_state(b, va)
        return [va.decode(), vb.decode()]

    @c.transaction
    async def Refuse(ctx: Context) -> None:
        raise ContractError("patch P-1 is REJECTED, cannot move to RELEASED")

    @c.transaction
    async def Crash(ctx: Context) -> None:
        raise KeyError("secret internal detail")

    @c.transaction
    async def Emit(ctx: Context, name: str) -> None:
        ctx.stub.set_event(name, b'{"n":1}')

    return c


def test_registration_handshake() -> None:
    async def body(peer: FakePeer, session: PeerSession) -> None:
        while session.state != "ready":
            await asyncio.sleep(0)
        first = peer.written[0]
        assert first.type == Msg.REGISTER
        cc_id = chaincode_pb2.ChaincodeID()
        cc_id.ParseFromString(first.payload)
        assert cc_id.name == CC_ID

    drive(_kv_contract(), body)


class ScriptedStream:
    """A stream that delivers a fixed list of messages and records what is written."""

    def __init__(self, incoming: list[Any]) -> None:
        self.incoming = list(incoming)
        self.written: list[Any] = []

    async def read(self) -> Any:
        await asyncio.sleep(0)
        return self.incoming.pop(0) if self.incoming else None

    async def write(self, message: Any) -> None:
        self.written.append(message)


def test_transaction_before_registered_is_a_protocol_error() -> None:
    stream = ScriptedStream([Msg(type=Msg.TRANSACTION, txid="t1", channel_id="ch")])
    session = PeerSession(stream, CC_ID, _kv_contract())
    asyncio.run(asyncio.wait_for(session.run(), 5))
    assert [m.type for m in stream.written] == [Msg.REGISTER, Msg.ERROR]
    assert b"expected REGISTERED" in stream.written[1].payload
    assert stream.written[1].txid == "t1"
    assert session.state == "closed"


def test_unexpected_message_when_ready_closes_the_connection() -> None:
    stream = ScriptedStream([
        Msg(type=Msg.REGISTERED), Msg(type=Msg.READY), Msg(type=Msg.GET_STATE, txid="t"),
    ])
    session = PeerSession(stream, CC_ID, _kv_contract())
    asyncio.run(asyncio.wait_for(session.run(), 5))
    assert [m.type for m in stream.written] == [Msg.REGISTER, Msg.ERROR]


def test_keepalive_is_echoed() -> None:
    """Each KEEPALIVE comes back as the same message (type, txid, channel, payload), once."""
    sent = [
        Msg(type=Msg.KEEPALIVE, txid="ka-1", channel_id="ch", payload=b"one"),
        Msg(type=Msg.KEEPALIVE, txid="ka-2"),
    ]

    async def body(peer: FakePeer, session: PeerSession) -> list[Any]:
        before = len(peer.written)
        for message in sent:
            peer.deliver(message)

        async def echoes() -> list[Any]:
            while True:
                found = [m for m in peer.written[before:] if m.type == Msg.KEEPALIVE]
                if len(found) >= len(sent):
                    return found
                await asyncio.sleep(0)

        found = await asyncio.wait_for(echoes(), 5)
        await asyncio.sleep(0.05)  # nothing else is echoed afterwards
        return found + [m for m in peer.written[before:] if m.type == Msg.KEEPALIVE][len(found):]

    echoed = drive(_kv_contract(), body)
    assert [(m.txid, m.channel_id, m.payload) for m in echoed] == [
        ("ka-1", "ch", b"one"),
        ("ka-2", "", b""),
    ]
    assert echoed == sent


def test_transaction_reads_and_writes() -> None:
    async def body(peer: FakePeer, session: PeerSession) -> tuple[Any, Any]:
        r1 = await peer.transact("Put", "a", "1")
        await peer.transact("Put", "b", "2")
        r2 = await peer.transact("Swap", "a", "b")
        return r1, r2

    peer = FakePeer()
    r1, r2 = drive(_kv_contract(), body, peer)
    assert r1.type == Msg.COMPLETED
    assert parse_response(r1).status == 200
    assert parse_response(r1).payload == b""
    assert parse_response(r2).payload == b'["1","2"]'
    assert peer.state == {"a": b"2", "b": b"1"}
    assert r2.txid == "tx000003"
    assert r2.channel_id == peer.channel_id


def test_error_reply_from_peer_raises_peer_error() -> None:
    seen: list[BaseException] = []

    class Probe:
        async def invoke(self, stub: ChaincodeStub) -> Response:
            try:
                await stub.get_state("k")
            except PeerError as exc:
                seen.append(exc)
                return Response(500, "peer refused")
            return Response(200)

    async def body(peer: FakePeer, session: PeerSession) -> Any:
        peer.fail_next[Msg.GET_STATE] = "access denied for key k"
        return await peer.transact("Anything")

    reply = drive(Probe(), body)
    assert len(seen) == 1
    assert str(seen[0]) == "access denied for key k"
    assert parse_response(reply).status == 500


def test_error_reply_in_contract_is_internal_failure() -> None:
    async def body(peer: FakePeer, session: PeerSession) -> Any:
        peer.fail_next[Msg.PUT_STATE] = "bad"
        return await peer.transact("Put", "k", "v")

    resp = parse_response(drive(_kv_contract(), body))
    assert resp.status == 500
    assert resp.message.startswith("internal error")


def test_business_refusal_and_internal_failure_are_distinguishable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(peer: FakePeer, session: PeerSession) -> tuple[Any, Any]:
        return await peer.transact("Refuse"), await peer.transact("Crash")

    with caplog.at_level("ERROR"):
        refused, crashed = drive(_kv_contract(), body)
    refused_resp, crashed_resp = parse_response(refused), parse_response(crashed)
    assert refused.type == crashed.type == Msg.COMPLETED
    assert refused_resp.status == 400
    assert refused_resp.message == "patch P-1 is REJECTED, cannot move to RELEASED"
    assert crashed_resp.status == 500
    assert "secret internal detail" not in crashed_resp.message
    assert crashed_resp.message == f"internal error (tx {crashed.txid[:8]})"
    assert "secret internal detail" in caplog.text  # the traceback is logged


def test_exception_in_raw_chaincode_answers_promptly() -> None:
    class Raising:
        async def invoke(self, stub: ChaincodeStub) -> Response:
            raise RuntimeError("boom")

    async def body(peer: FakePeer, session: PeerSession) -> tuple[Any, float]:
        start = time.monotonic()
        reply = await peer.transact("X")
        return reply, time.monotonic() - start

    reply, elapsed = drive(Raising(), body)
    assert elapsed < 1.0
    assert reply.type == Msg.COMPLETED
    assert parse_response(reply).status == 500


def test_init_failure_answers_error_message() -> None:
    class Raising:
        async def invoke(self, stub: ChaincodeStub) -> Response:
            assert stub.function == "Init"
            return Response(500, "cannot init")

    async def body(peer: FakePeer, session: PeerSession) -> Any:
        return await peer.transact("Init", msg_type=Msg.INIT)

    reply = drive(Raising(), body)
    assert reply.type == Msg.ERROR
    assert reply.payload == b"cannot init"


def test_event_is_carried_in_completed() -> None:
    async def body(peer: FakePeer, session: PeerSession) -> Any:
        return await peer.transact("Emit", "PatchApproved")

    reply = drive(_kv_contract(), body)
    assert reply.type == Msg.COMPLETED
    assert reply.HasField("chaincode_event")
    assert reply.chaincode_event.event_name == "PatchApproved"
    assert reply.chaincode_event.payload == b'{"n":1}'


def test_no_event_when_none_set() -> None:
    async def body(peer: FakePeer, session: PeerSession) -> Any:
        return await peer.transact("Put", "k", "v")

    assert not drive(_kv_contract(), body).HasField("chaincode_event")


def test_concurrent_transactions_serialize_writes() -> None:
    n = 40

    async def body(peer: FakePeer, session: PeerSession) -> list[Any]:
        puts = [peer.transact("Put", f"k{i:02d}", str(i)) for i in range(n)]
        return await asyncio.gather(*puts)

    # Each write takes a little while, so overlapping writes would be detected.
    peer = FakePeer(write_delay=0.001)
    replies = drive(_kv_contract(), body, peer)
    assert peer.overlapping_writes == 0
    assert [parse_response(r).status for r in replies] == [200] * n
    assert len(peer.state) == n
    assert len({r.txid for r in replies}) == n


def test_fake_peer_detects_overlapping_writes() -> None:
    """The fake is able to see the bug the lock prevents (guards the test above)."""

    async def scenario() -> int:
        peer = FakePeer(write_delay=0.001)
        msgs = [Msg(type=Msg.KEEPALIVE) for _ in range(3)]
        await asyncio.gather(*(peer.write(m) for m in msgs), return_exceptions=True)
        return peer.overlapping_writes

    assert asyncio.run(scenario()) == 2


def test_stream_end_fails_pending_requests_and_cancels() -> None:
    class Waiting:
        def __init__(self) -> None:
            self.error: BaseException | None = None

        async def invoke(self, stub: ChaincodeStub) -> Response:
            try:
                await stub.get_state("k")
            except BaseException as exc:
                self.error = exc
                raise
            return Response(200)

    async def scenario(cc: Waiting) -> None:
        peer = FakePeer(auto_answer=False)
        session = PeerSession(peer, CC_ID, cc)
        task = asyncio.create_task(session.run())
        pending = asyncio.create_task(peer.transact("X"))
        while not any(m.type == Msg.GET_STATE for m in peer.written):
            await asyncio.sleep(0)
        peer.close()
        await asyncio.wait_for(task, 5)
        pending.cancel()
        assert session.in_flight == 0

    cc = Waiting()
    asyncio.run(scenario(cc))
    assert cc.error is not None


def test_unanswered_request_times_out_as_peer_error() -> None:
    errors: list[BaseException] = []

    class Probe:
        async def invoke(self, stub: ChaincodeStub) -> Response:
            try:
                await stub.get_state("k")
            except PeerError as exc:
                errors.append(exc)
            return Response(200)

    async def scenario() -> Any:
        peer = FakePeer(auto_answer=False)
        session = PeerSession(peer, CC_ID, Probe(), request_timeout=0.05)
        task = asyncio.create_task(session.run())
        reply = await asyncio.wait_for(peer.transact("X"), 5)
        peer.close()
        await task
        return reply

    reply = asyncio.run(scenario())
    assert parse_response(reply).status == 200
    assert len(errors) == 1
    assert "no answer from the peer to GET_STATE" in str(errors[0])
