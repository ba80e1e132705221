"""The sync-core/async-stub bridge: reads from a worker thread through the runtime's loop,
cached per transaction; writes only on flush, with a key-level endorsement policy for
owner_org: the owner's peer AND a majority of the channel's peer organizations."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.patchledger.bridge import (
    StubStore,
    composite_key,
    key_of,
    new_pool,
    owner_policy,
    run_in_worker,
)
from patchledger.chaincode.runtime import Context, Contract, ContractError, PeerSession
from patchledger.chaincode.runtime._protos import Msg
from patchledger.chaincode.runtime.endorsement import (
    ROLE_PEER,
    VALIDATION_PARAMETER,
    OutOf,
    SignedBy,
    decode_policy,
    is_satisfied_by,
)
from tests.support.chaincode_runtime import FakePeer, parse_response

probe = Contract("probe")
seen: dict[str, Any] = {}
POOL = new_pool(2)
CHANNEL = ("SecOpsMSP", "ITOpsMSP", "ComplianceMSP")


@probe.transaction
async def Probe(ctx: Context) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    store = StubStore(ctx.stub, loop, channel_orgs=CHANNEL)
    loop_thread = threading.get_ident()

    def work() -> dict[str, Any]:
        assert threading.get_ident() != loop_thread
        first = store.get(Key("Host", ("h1",)))
        again = store.get(Key("Host", ("h1",)))
        missing = store.get(Key("Host", ("nope",)))
        scanned = [(k.parts, v) for k, v in store.scan("Deployment", ("R-1",))]
        store.put(Key("Host", ("h2",)), b'{"h":2}', owner_org="ITOpsMSP")
        store.put(Key("Note", ("n",)), b"plain")
        return {
            "first": first.decode() if first else None,
            "same": first == again,
            "missing": missing,
            "scanned": [[list(p), v.decode()] for p, v in scanned],
            "after_put": (store.get(Key("Host", ("h2",))) or b"").decode(),
        }

    result = await run_in_worker(POOL, work)
    seen["pending_before_flush"] = len(store.pending)
    seen["written_before_flush"] = composite_key(Key("Host", ("h2",))) in seen["peer"].state
    result["flushed"] = await store.flush()
    return result


@probe.transaction
async def Unconfigured(ctx: Context) -> None:
    """An owned write with no channel organizations: refused before anything is sent."""
    store = StubStore(ctx.stub, asyncio.get_running_loop())

    def work() -> None:
        store.put(Key("Note", ("n",)), b"plain")
        store.put(Key("Host", ("h2",)), b'{"h":2}', owner_org="ITOpsMSP")

    await run_in_worker(POOL, work)
    await store.flush()


@probe.transaction
async def FromLoop(ctx: Context) -> None:
    StubStore(ctx.stub, asyncio.get_running_loop()).get(Key("Host", ("h1",)))


def run(peer: FakePeer, *function: str) -> list[Any]:
    seen["peer"] = peer

    async def main() -> list[Any]:
        session = PeerSession(peer, "probe:1", probe, request_timeout=5)
        task = asyncio.create_task(session.run())
        try:
            return [parse_response(await peer.transact(f)) for f in function]
        finally:
            peer.close()
            await task

    return asyncio.run(main())


def test_worker_reads_are_resolved_on_the_loop_cached_and_writes_wait_for_flush() -> None:
    peer = FakePeer(batch_size=1)
    peer.state[composite_key(Key("Host", ("h1",)))] = b'{"h":1}'
    for host in ("h2", "h1"):
        peer.state[composite_key(Key("Deployment", ("R-1", host)))] = host.encode()
    peer.state[composite_key(Key("Deployment", ("R-2", "h1")))] = b"other rollout"
    (reply,) = run(peer, "Probe")
    assert reply.status == 200, reply.message
    result = json.loads(reply.payload)
    assert result == {
        "first": '{"h":1}',
        "same": True,
        "missing": None,
        "scanned": [[["R-1", "h1"], "h1"], [["R-1", "h2"], "h2"]],
        "after_put": '{"h":2}',
        "flushed": 2,
    }
    assert seen["pending_before_flush"] == 2 and not seen["written_before_flush"]
    gets = [m for m in peer.written if m.type == Msg.GET_STATE]
    assert len(gets) == 2  # h1 once (cached), "nope" once
    h2 = composite_key(Key("Host", ("h2",)))
    assert peer.state[h2] == b'{"h":2}'
    # Not ITOps alone (a key-level policy replaces the chaincode's MAJORITY): ITOps' peer AND
    # one more of the three organizations (a majority of three including ITOps).
    policy = decode_policy(peer.metadata[h2][VALIDATION_PARAMETER])
    assert policy == OutOf(
        2, (SignedBy("ITOpsMSP"), OutOf(1, (SignedBy("ComplianceMSP"), SignedBy("SecOpsMSP"))))
    )
    assert not is_satisfied_by(policy, [("ITOpsMSP", ROLE_PEER)])
    assert not is_satisfied_by(policy, [("SecOpsMSP", ROLE_PEER), ("ComplianceMSP", ROLE_PEER)])
    assert is_satisfied_by(policy, [("ITOpsMSP", ROLE_PEER), ("SecOpsMSP", ROLE_PEER)])
    note = composite_key(Key("Note", ("n",)))
    assert peer.state[note] == b"plain" and note not in peer.metadata


def test_an_owned_write_without_channel_organizations_is_refused_and_nothing_is_sent() -> None:
    peer = FakePeer()
    (reply,) = run(peer, "Unconfigured")
    assert reply.status == 400
    assert "cannot protect a record of ITOpsMSP: no channel organizations are configured" in (
        reply.message
    )
    assert not peer.state and not peer.metadata


def test_owner_policy_refuses_an_owner_outside_the_channel() -> None:
    with pytest.raises(ContractError, match="RogueMSP: it is not one of the channel"):
        owner_policy("RogueMSP", CHANNEL)
    with pytest.raises(ContractError, match="no channel organizations"):
        owner_policy("ITOpsMSP", ())


def test_a_read_from_the_loop_thread_is_refused_instead_of_deadlocking() -> None:
    (reply,) = run(FakePeer(), "FromLoop")
    assert reply.status == 500  # an internal failure, answered at once


def test_composite_keys_round_trip() -> None:
    key = Key("Deployment", ("R-1", "h/1"))
    assert key_of(composite_key(key)) == key
    with pytest.raises(ValueError, match="not a composite key"):
        key_of("plain")
