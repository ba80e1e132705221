"""Stub features against the fake peer: queries, pagination, history, metadata, proposal data."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from patchledger.chaincode.runtime import (
    KeyEndorsementPolicy,
    PeerSession,
    Response,
    create_composite_key,
    split_composite_key,
)
from patchledger.chaincode.runtime._protos import (
    Msg,
    chaincode_shim_pb2,
    msp_principal_pb2,
    policies_pb2,
)
from patchledger.chaincode.runtime.endorsement import VALIDATION_PARAMETER
from patchledger.chaincode.runtime.stub import ChaincodeStub
from tests.support.chaincode_runtime import (
    FakePeer,
    make_certificate,
    make_creator,
    parse_response,
)

Body = Callable[[ChaincodeStub], Awaitable[Any]]


class FnChaincode:
    """Runs a test-supplied coroutine as the transaction and keeps its result."""

    def __init__(self, body: Body) -> None:
        self.body = body
        self.result: Any = None

    async def invoke(self, stub: ChaincodeStub) -> Response:
        self.result = await self.body(stub)
        return Response(200)


def run_tx(body: Body, peer: FakePeer | None = None, *args: str, **kw: Any) -> Any:
    """Run ``body`` as one transaction over a fake peer and return what it returned."""
    peer = peer or FakePeer()
    cc = FnChaincode(body)

    async def scenario() -> Any:
        session = PeerSession(peer, "cc:1", cc, request_timeout=5)
        task = asyncio.create_task(session.run())
        try:
            reply = await asyncio.wait_for(peer.transact(*(args or ("Fn",)), **kw), 10)
        finally:
            peer.close()
            await task
        assert reply.type == Msg.COMPLETED, reply
        assert parse_response(reply).status == 200
        return cc.result

    return asyncio.run(scenario())


def _filled_peer(n: int, prefix: str = "key") -> FakePeer:
    peer = FakePeer(batch_size=4)
    for i in range(n):
        peer.state[f"{prefix}{i:03d}"] = str(i).encode()
    return peer


def test_get_missing_key_is_empty_and_delete_removes() -> None:
    peer = FakePeer()
    peer.state["k"] = b"v"

    async def body(stub: ChaincodeStub) -> tuple[bytes, bytes, bytes]:
        before = await stub.get_state("k")
        await stub.delete_state("k")
        return before, await stub.get_state("k"), await stub.get_state("never")

    assert run_tx(body, peer) == (b"v", b"", b"")
    assert "k" not in peer.state


def test_empty_key_is_refused_before_reaching_the_peer() -> None:
    async def body(stub: ChaincodeStub) -> str:
        with pytest.raises(ValueError, match="empty"):
            await stub.put_state("", b"x")
        return "ok"

    peer = FakePeer()
    assert run_tx(body, peer) == "ok"
    assert not any(m.type == Msg.PUT_STATE for m in peer.written)


def test_range_query_iterates_across_batches() -> None:
    peer = _filled_peer(10)

    async def body(stub: ChaincodeStub) -> list[str]:
        it = await stub.get_state_by_range("key002", "key009")
        return [kv.key async for kv in it]

    assert run_tx(body, peer) == [f"key{i:03d}" for i in range(2, 9)]
    assert sum(m.type == Msg.QUERY_STATE_NEXT for m in peer.written) == 1


def test_range_query_unbounded_and_early_close() -> None:
    peer = _filled_peer(10)

    async def body(stub: ChaincodeStub) -> list[str]:
        keys = []
        async with await stub.get_state_by_range("", "") as it:
            async for kv in it:
                keys.append(kv.key)
                if len(keys) == 2:
                    break
        return keys

    assert run_tx(body, peer) == ["key000", "key001"]
    closes = [m for m in peer.written if m.type == Msg.QUERY_STATE_CLOSE]
    assert len(closes) == 1
    start = next(m for m in peer.written if m.type == Msg.GET_STATE_BY_RANGE)
    req = chaincode_shim_pb2.GetStateByRange()
    req.ParseFromString(start.payload)
    assert req.startKey == "\x01"  # Fabric's substitute for an empty start key


def test_pagination_walks_all_keys_with_bookmarks() -> None:
    peer = _filled_peer(23)

    async def body(stub: ChaincodeStub) -> list[tuple[list[str], str, int]]:
        pages = []
        bookmark = ""
        while True:
            page = await stub.get_state_by_range_with_pagination("", "", 10, bookmark)
            pages.append(([kv.key for kv in page.items], page.bookmark, page.fetched_count))
            if not page.bookmark:
                return pages
            bookmark = page.bookmark

    pages = run_tx(body, peer)
    assert [len(p[0]) for p in pages] == [10, 10, 3]
    assert [p[2] for p in pages] == [10, 10, 3]
    assert pages[0][1] == "key010"
    assert pages[1][1] == "key020"
    assert pages[2][1] == ""
    assert [k for p in pages for k in p[0]] == sorted(peer.state)


def test_page_size_must_be_positive() -> None:
    async def body(stub: ChaincodeStub) -> bool:
        with pytest.raises(ValueError):
            await stub.get_state_by_range_with_pagination("", "", 0)
        return True

    assert run_tx(body)


def test_composite_keys_round_trip_and_partial_query() -> None:
    key = create_composite_key("deployment", ["rollout-1", "host-7"])
    assert key == "\x00deployment\x00rollout-1\x00host-7\x00"
    assert split_composite_key(key) == ("deployment", ["rollout-1", "host-7"])
    with pytest.raises(ValueError):
        create_composite_key("deployment", ["bad\x00part"])
    with pytest.raises(ValueError):
        split_composite_key("plain")

    peer = FakePeer(batch_size=2)
    for rollout, host in [("r1", "h1"), ("r1", "h2"), ("r1", "h3"), ("r2", "h1")]:
        peer.state[create_composite_key("deployment", [rollout, host])] = b"x"
    peer.state["plain"] = b"y"

    async def body(stub: ChaincodeStub) -> tuple[list[list[str]], list[int]]:
        it = await stub.get_state_by_partial_composite_key("deployment", ["r1"])
        found = [split_composite_key(kv.key)[1] async for kv in it]
        page = await stub.get_state_by_partial_composite_key_with_pagination(
            "deployment", [], 3
        )
        with pytest.raises(ValueError):
            await stub.get_state_by_range("\x00deployment", "")
        return found, [len(page.items), int(bool(page.bookmark))]

    found, page = run_tx(body, peer)
    assert found == [["r1", "h1"], ["r1", "h2"], ["r1", "h3"]]
    assert page == [3, 1]


def test_history_lists_modifications_newest_first() -> None:
    peer = FakePeer()
    peer.state["k"] = b"0"

    def write(value: str) -> Body:
        async def body(stub: ChaincodeStub) -> None:
            await stub.put_state("k", value)

        return body

    async def scenario() -> list[Any]:
        cc_bodies: list[Body] = []

        class Seq:
            async def invoke(self, stub: ChaincodeStub) -> Response:
                result = await cc_bodies.pop(0)(stub)
                results.append(result)
                return Response(200)

        results: list[Any] = []
        session = PeerSession(peer, "cc:1", Seq())
        task = asyncio.create_task(session.run())
        t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        for i in range(3):
            cc_bodies.append(write(f"v{i}"))
            await peer.transact("W", tx_id=f"w{i}", timestamp=t0 + dt.timedelta(minutes=i))

        async def read(stub: ChaincodeStub) -> list[Any]:
            return [m async for m in await stub.get_history_for_key("k")]

        cc_bodies.append(read)
        await peer.transact("R")
        peer.close()
        await task
        return list(results[-1])

    history = asyncio.run(scenario())
    assert [m.tx_id for m in history] == ["w2", "w1", "w0"]
    assert [m.value for m in history] == [b"v2", b"v1", b"v0"]
    assert history[0].timestamp == dt.datetime(2026, 3, 1, 0, 2, tzinfo=dt.UTC)
    assert not any(m.is_delete for m in history)


def test_key_endorsement_policy_is_written_as_validation_parameter() -> None:
    peer = FakePeer()

    async def body(stub: ChaincodeStub) -> tuple[list[str], list[str]]:
        before = await stub.get_key_endorsement_orgs("host:h1")
        await stub.set_key_endorsement_orgs("host:h1", ["ITOpsMSP", "ComplianceMSP"])
        return before, await stub.get_key_endorsement_orgs("host:h1")

    before, after = run_tx(body, peer)
    assert before == []
    assert after == ["ComplianceMSP", "ITOpsMSP"]
    raw = peer.metadata["host:h1"][VALIDATION_PARAMETER]
    env = policies_pb2.SignaturePolicyEnvelope()
    env.ParseFromString(raw)
    assert env.rule.n_out_of.n == 2
    assert [r.signed_by for r in env.rule.n_out_of.rules] == [0, 1]
    roles = []
    for principal in env.identities:
        assert principal.principal_classification == msp_principal_pb2.MSPPrincipal.ROLE
        role = msp_principal_pb2.MSPRole()
        role.ParseFromString(principal.principal)
        roles.append((role.msp_identifier, role.role))
    assert roles == [
        ("ComplianceMSP", msp_principal_pb2.MSPRole.PEER),
        ("ITOpsMSP", msp_principal_pb2.MSPRole.PEER),
    ]


def test_key_endorsement_policy_helper() -> None:
    policy = KeyEndorsementPolicy()
    with pytest.raises(ValueError):
        policy.policy()
    policy.add_orgs("B", "A")
    policy.del_orgs("B", "missing")
    assert KeyEndorsementPolicy(policy.policy()).list_orgs() == ["A"]
    with pytest.raises(ValueError):
        policy.add_orgs("")
    with pytest.raises(ValueError):
        KeyEndorsementPolicy(b"\xff\xff\xff")


def test_proposal_data_creator_transient_and_timestamp() -> None:
    cert = make_certificate("alice", attrs={"role": "approver", "hf.EnrollmentID": "alice"})
    creator = make_creator("SecOpsMSP", cert.cert_pem)
    when = dt.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)

    async def body(stub: ChaincodeStub) -> dict[str, Any]:
        ident = stub.client_identity
        return {
            "tx": stub.tx_id, "channel": stub.channel_id, "fn": stub.function,
            "params": stub.parameters, "ts": stub.get_tx_timestamp(),
            "transient": stub.transient, "msp": ident.msp_id, "role": ident.attributes["role"],
            "pem": ident.cert_pem,
        }

    got = run_tx(
        body, None, "Fn", "a", "b",
        creator=creator, transient={"secret": b"\x00\x01"}, tx_id="txABC", timestamp=when,
    )
    assert got["tx"] == "txABC"
    assert got["channel"] == "testchannel"
    assert got["fn"] == "Fn"
    assert got["params"] == ["a", "b"]
    assert got["ts"] == when
    assert got["transient"] == {"secret": b"\x00\x01"}
    assert got["msp"] == "SecOpsMSP"
    assert got["role"] == "approver"
    assert got["pem"] == cert.cert_pem.decode()


def test_event_name_required() -> None:
    async def body(stub: ChaincodeStub) -> bool:
        with pytest.raises(ValueError):
            stub.set_event("")
        stub.set_event("A", b"1")
        stub.set_event("B", b"2")  # last one wins: one event per transaction
        return stub.event is not None and stub.event.event_name == "B"

    assert run_tx(body)
