"""The integration-test contract works against the fake peer (the real network tests it too)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from patchledger.chaincode.runtime import PeerSession
from patchledger.chaincode.runtime._protos import Msg
from patchledger.chaincode.testkit import contract
from tests.support.chaincode_runtime import (
    FakePeer,
    make_certificate,
    make_creator,
    parse_response,
)


def run(peer: FakePeer, *calls: tuple[str, ...], creator: bytes = b"") -> list[Any]:
    async def scenario() -> list[Any]:
        session = PeerSession(peer, "testkit:1", contract, request_timeout=5)
        task = asyncio.create_task(session.run())
        try:
            return [await peer.transact(*c, creator=creator) for c in calls]
        finally:
            peer.close()
            await task

    return asyncio.run(scenario())


def payloads(replies: list[Any]) -> list[Any]:
    out = []
    for reply in replies:
        resp = parse_response(reply)
        out.append(json.loads(resp.payload) if resp.payload else (resp.status, resp.message))
    return out


def test_testkit_functions() -> None:
    peer = FakePeer(batch_size=5)
    cert = make_certificate("auditor1", attrs={"role": "auditor"})
    replies = run(
        peer,
        ("SetEvent", "Ev", "hello"),
        ("SetKeyPolicy", "h1", '["SecOpsMSP"]', "v"),
        ("GetKeyPolicy", "h1"),
        ("Refuse", "no way"),
        ("Crash",),
        ("Write", "k", "1"),
        ("Write", "k", "2"),
        ("History", "k"),
        ("PutMany", "r", "12"),
        ("RangePage", "r", "s", "5", ""),
        ("RangeAll", "r", "s"),
        ("PutComposite", "dep", '["r1","h1"]', "x"),
        ("QueryComposite", "dep", '["r1"]'),
        ("PutLarge", "big", "y" * 100_000),
        ("GetLarge", "big"),
        ("WhoAmI",),
        ("TxInfo",),
        creator=make_creator("ComplianceMSP", cert.cert_pem),
    )
    assert replies[0].chaincode_event.event_name == "Ev"
    out = payloads(replies)
    assert out[1] == out[2] == ["SecOpsMSP"]
    assert out[3] == (400, "no way")
    assert out[4][0] == 500
    assert [h["value"] for h in out[7]] == ["2", "1"]
    assert out[8] == 12
    assert out[9] == {"keys": [f"r{i:05d}" for i in range(5)], "bookmark": "r00005", "count": 5}
    assert len(out[10]) == 12
    assert out[11] == "dep/r1/h1"
    assert out[12] == [["r1", "h1"]]
    assert out[13] == 100_000
    assert out[14] == "y" * 100_000
    assert out[15]["msp_id"] == "ComplianceMSP"
    assert out[15]["attributes"] == {"role": "auditor"}
    assert out[16]["transient_keys"] == []
    assert all(r.type == Msg.COMPLETED for r in replies)
