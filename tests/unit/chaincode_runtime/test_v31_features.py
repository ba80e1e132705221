"""Fabric v3.1 peer features: write batching (WRITE_BATCH_STATE) and multi-key reads
(GET_STATE_MULTIPLE), advertised in READY, with the single-message fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from patchledger.chaincode.runtime import PeerError, PeerSession, Response
from patchledger.chaincode.runtime._protos import Msg, chaincode_pb2, chaincode_shim_pb2
from patchledger.chaincode.runtime.stub import ChaincodeStub, PeerFeatures
from tests.support.chaincode_runtime import FakePeer, parse_response

Body = Callable[[ChaincodeStub], Awaitable[Response | None]]
WR = chaincode_shim_pb2.WriteRecord

BATCHING = PeerFeatures(
    use_write_batch=True, max_size_write_batch=1000,
    use_get_multiple_keys=True, max_size_get_multiple_keys=1000,
)


class FnChaincode:
    def __init__(self, body: Body) -> None:
        self.body = body
        self.result: Any = None

    async def invoke(self, stub: ChaincodeStub) -> Response:
        return await self.body(stub) or Response(200)


def run(peer: FakePeer, body: Body) -> tuple[Any, PeerSession]:
    """Run ``body`` as one transaction; return the reply message and the session."""
    session = PeerSession(peer, "cc:1", FnChaincode(body), request_timeout=5)

    async def scenario() -> Any:
        task = asyncio.create_task(session.run())
        try:
            return await asyncio.wait_for(peer.transact("Fn"), 10)
        finally:
            peer.close()
            await task

    return asyncio.run(scenario()), session


def sent(peer: FakePeer, msg_type: int) -> list[Any]:
    return [m for m in peer.written if m.type == msg_type]


def batches(peer: FakePeer) -> list[list[Any]]:
    out = []
    for m in sent(peer, Msg.WRITE_BATCH_STATE):
        batch = chaincode_shim_pb2.WriteBatchState()
        batch.ParseFromString(m.payload)
        out.append(list(batch.rec))
    return out


async def three_writes(stub: ChaincodeStub) -> None:
    await stub.put_state("a", b"1")
    await stub.put_state("b", b"2")
    await stub.delete_state("gone")
    await stub.put_state_metadata("a", "VALIDATION_PARAMETER", b"policy")


def test_ready_payload_round_trips_and_an_empty_one_means_all_off() -> None:
    assert PeerFeatures.from_ready(b"") == PeerFeatures()
    raw = chaincode_pb2.ChaincodeAdditionalParams(
        use_write_batch=True, max_size_write_batch=7, use_get_multiple_keys=True,
        max_size_get_multiple_keys=9,
    ).SerializeToString()
    features = PeerFeatures.from_ready(raw)
    assert features == PeerFeatures(True, 7, True, 9)
    assert PeerFeatures.from_ready(features.to_ready()) == features
    assert PeerFeatures(use_write_batch=True).write_batch_size == 100


def test_the_session_takes_the_features_from_ready() -> None:
    _, session = run(FakePeer(features=BATCHING), lambda stub: asyncio.sleep(0))
    assert session.features == BATCHING
    _, session = run(FakePeer(), lambda stub: asyncio.sleep(0))
    assert session.features == PeerFeatures()


def test_without_batching_every_write_is_its_own_message() -> None:
    peer = FakePeer(state={"gone": b"x"})
    reply, _ = run(peer, three_writes)
    assert reply.type == Msg.COMPLETED
    assert sent(peer, Msg.WRITE_BATCH_STATE) == []
    assert len(sent(peer, Msg.PUT_STATE)) == 2
    assert len(sent(peer, Msg.DEL_STATE)) == 1
    assert len(sent(peer, Msg.PUT_STATE_METADATA)) == 1
    assert peer.state == {"a": b"1", "b": b"2"}


def test_with_batching_the_writes_go_in_one_batch_before_completed() -> None:
    peer = FakePeer(features=BATCHING, state={"gone": b"x"})
    reply, _ = run(peer, three_writes)
    assert reply.type == Msg.COMPLETED
    assert parse_response(reply).status == 200
    types = [m.type for m in peer.written if m.type != Msg.REGISTER]
    assert types == [Msg.WRITE_BATCH_STATE, Msg.COMPLETED]
    (records,) = batches(peer)
    assert [(r.type, r.key) for r in records] == [
        (WR.PUT_STATE, "a"), (WR.PUT_STATE, "b"), (WR.DEL_STATE, "gone"),
        (WR.PUT_STATE_METADATA, "a"),
    ]
    assert records[3].metadata.metakey == "VALIDATION_PARAMETER"
    assert records[3].metadata.value == b"policy"
    assert peer.state == {"a": b"1", "b": b"2"}
    assert peer.metadata["a"] == {"VALIDATION_PARAMETER": b"policy"}


def test_the_last_write_to_a_key_wins() -> None:
    async def body(stub: ChaincodeStub) -> None:
        await stub.put_state("k", b"first")
        await stub.put_state("other", b"o")
        await stub.put_state("k", b"second")
        await stub.put_state("d", b"soon deleted")
        await stub.delete_state("d")
        await stub.delete_state("p")
        await stub.put_state("p", b"put after delete")
        await stub.put_state_metadata("k", "m", b"1")
        await stub.put_state_metadata("k", "m", b"2")

    peer = FakePeer(features=BATCHING, state={"d": b"old", "p": b"old"})
    run(peer, body)
    (records,) = batches(peer)
    assert [(r.type, r.key, bytes(r.value)) for r in records] == [
        (WR.PUT_STATE, "k", b"second"),
        (WR.PUT_STATE, "other", b"o"),
        (WR.DEL_STATE, "d", b""),
        (WR.PUT_STATE, "p", b"put after delete"),
        (WR.PUT_STATE_METADATA, "k", b""),
    ]
    assert records[4].metadata.value == b"2"
    assert peer.state == {"k": b"second", "other": b"o", "p": b"put after delete"}


def test_batches_are_chunked_by_the_advertised_size() -> None:
    async def body(stub: ChaincodeStub) -> None:
        for i in range(7):
            await stub.put_state(f"k{i}", b"v")

    peer = FakePeer(features=PeerFeatures(use_write_batch=True, max_size_write_batch=3))
    reply, _ = run(peer, body)
    assert reply.type == Msg.COMPLETED
    assert [[r.key for r in b] for b in batches(peer)] == [
        ["k0", "k1", "k2"], ["k3", "k4", "k5"], ["k6"],
    ]
    assert len(peer.state) == 7


def test_a_failed_transaction_sends_no_batch() -> None:
    async def refused(stub: ChaincodeStub) -> Response:
        await stub.put_state("k", b"v")
        return Response(403, "no")

    async def raising(stub: ChaincodeStub) -> None:
        await stub.put_state("k", b"v")
        raise RuntimeError("boom")

    for body, status in ((refused, 403), (raising, 500)):
        peer = FakePeer(features=BATCHING)
        reply, _ = run(peer, body)
        assert parse_response(reply).status == status
        assert sent(peer, Msg.WRITE_BATCH_STATE) == []
        assert sent(peer, Msg.PUT_STATE) == []
        assert peer.state == {}


def test_a_refused_batch_fails_the_transaction() -> None:
    peer = FakePeer(features=BATCHING)
    peer.fail_next[Msg.WRITE_BATCH_STATE] = "key too long"
    reply, _ = run(peer, three_writes)
    assert reply.type == Msg.COMPLETED
    response = parse_response(reply)
    assert response.status == 500
    assert response.message == "internal error"


def test_finish_write_batch_raises_peer_error_on_error() -> None:
    seen: dict[str, Any] = {}

    async def body(stub: ChaincodeStub) -> None:
        await stub.put_state("k", b"v")
        with pytest.raises(PeerError, match="nope"):
            await stub.finish_write_batch()
        seen["pending"] = stub.pending_writes

    peer = FakePeer(features=BATCHING)
    peer.fail_next[Msg.WRITE_BATCH_STATE] = "nope"
    reply, _ = run(peer, body)
    assert seen["pending"] == 0
    assert parse_response(reply).status == 200
    assert len(sent(peer, Msg.WRITE_BATCH_STATE)) == 1  # the refused one; nothing after


def test_a_read_only_function_still_cannot_write_with_batching() -> None:
    async def body(stub: ChaincodeStub) -> None:
        stub.read_only = True
        with pytest.raises(RuntimeError):
            await stub.put_state("k", b"v")

    peer = FakePeer(features=BATCHING)
    run(peer, body)
    assert sent(peer, Msg.WRITE_BATCH_STATE) == []


def test_get_multiple_states_in_chunks_with_absent_keys_empty() -> None:
    seen: dict[str, Any] = {}

    async def body(stub: ChaincodeStub) -> None:
        seen["values"] = await stub.get_multiple_states(["a", "x", "b", "c", "y"])
        seen["empty"] = await stub.get_multiple_states([])

    features = PeerFeatures(use_get_multiple_keys=True, max_size_get_multiple_keys=2)
    peer = FakePeer(features=features, state={"a": b"1", "b": b"2", "c": b"3"})
    run(peer, body)
    assert seen == {"values": [b"1", b"", b"2", b"3", b""], "empty": []}
    requests = []
    for m in sent(peer, Msg.GET_STATE_MULTIPLE):
        req = chaincode_shim_pb2.GetStateMultiple()
        req.ParseFromString(m.payload)
        requests.append(list(req.keys))
    assert requests == [["a", "x"], ["b", "c"], ["y"]]
    assert sent(peer, Msg.GET_STATE) == []


def test_get_multiple_states_falls_back_to_get_state() -> None:
    seen: dict[str, Any] = {}

    async def body(stub: ChaincodeStub) -> None:
        seen["values"] = await stub.get_multiple_states(["a", "x"])

    peer = FakePeer(state={"a": b"1"})
    run(peer, body)
    assert seen["values"] == [b"1", b""]
    assert len(sent(peer, Msg.GET_STATE)) == 2
    assert sent(peer, Msg.GET_STATE_MULTIPLE) == []


def test_get_multiple_states_errors() -> None:
    seen: dict[str, Any] = {}

    async def body(stub: ChaincodeStub) -> None:
        with pytest.raises(PeerError, match="ledger closed"):
            await stub.get_multiple_states(["a"])
        with pytest.raises(ValueError):
            await stub.get_multiple_states(["a", ""])
        seen["ok"] = True

    peer = FakePeer(features=BATCHING)
    peer.fail_next[Msg.GET_STATE_MULTIPLE] = "ledger closed"
    run(peer, body)
    assert seen["ok"]
