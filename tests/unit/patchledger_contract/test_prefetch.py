"""Prefetching with Fabric v3.1 multi-key reads: StubStore.prefetch fills the read cache with
one call, and ReportDeployments reads exactly the keys the core reads, in a few requests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.patchledger.bridge import (
    StubStore,
    composite_key,
    new_pool,
    run_in_worker,
)
from patchledger.chaincode.runtime import Context, Contract, PeerFeatures, PeerSession
from patchledger.chaincode.runtime._protos import Msg, chaincode_shim_pb2
from tests.support.chaincode_runtime import FakePeer, parse_response
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    ITOPS,
    SECOPS,
    host_identity,
    report,
    statement,
    who,
)
from tests.unit.patchledger_contract.contract_support import Ledger, scenario
from tests.unit.patchledger_contract.test_contract_lifecycle import seed_tested_patch

V31 = PeerFeatures(
    use_write_batch=True, max_size_write_batch=1000,
    use_get_multiple_keys=True, max_size_get_multiple_keys=1000,
)

probe = Contract("prefetch-probe")


@probe.transaction
async def Prefetch(ctx: Context) -> dict[str, Any]:
    store = StubStore(ctx.stub, asyncio.get_running_loop())
    h1, h2, gone = Key("Host", ("h1",)), Key("Host", ("h2",)), Key("Host", ("gone",))

    def work() -> dict[str, Any]:
        first = store.prefetch([h1, gone, h1, h2])
        again = store.prefetch([h1, gone])
        return {
            "first": first,
            "again": again,
            "h1": (store.get(h1) or b"").decode(),
            "h2": (store.get(h2) or b"").decode(),
            "gone": store.get(gone),
        }

    return await run_in_worker(new_pool(1), work)


def run_probe(peer: FakePeer) -> dict[str, Any]:
    async def main() -> Any:
        session = PeerSession(peer, "probe:1", probe, request_timeout=5)
        task = asyncio.create_task(session.run())
        try:
            return parse_response(await peer.transact("Prefetch"))
        finally:
            peer.close()
            await task

    reply = asyncio.run(main())
    assert reply.status == 200, reply.message
    return dict(json.loads(reply.payload))


def keys_of(message: Any) -> list[str]:
    if message.type == Msg.GET_STATE:
        req = chaincode_shim_pb2.GetState()
        req.ParseFromString(message.payload)
        return [req.key]
    req = chaincode_shim_pb2.GetStateMultiple()
    req.ParseFromString(message.payload)
    return list(req.keys)


def filled(features: PeerFeatures) -> FakePeer:
    peer = FakePeer(features=features)
    peer.state[composite_key(Key("Host", ("h1",)))] = b'{"h":1}'
    peer.state[composite_key(Key("Host", ("h2",)))] = b'{"h":2}'
    return peer


def test_prefetch_fills_the_cache_with_one_request_and_caches_absent_keys() -> None:
    peer = filled(V31)
    out = run_probe(peer)
    assert out == {"first": 3, "again": 0, "h1": '{"h":1}', "h2": '{"h":2}', "gone": None}
    multi = [m for m in peer.written if m.type == Msg.GET_STATE_MULTIPLE]
    assert [keys_of(m) for m in multi] == [
        [composite_key(Key("Host", (h,))) for h in ("h1", "gone", "h2")]
    ]
    assert not [m for m in peer.written if m.type == Msg.GET_STATE]


def test_prefetch_falls_back_to_one_get_state_per_key() -> None:
    peer = filled(PeerFeatures())
    out = run_probe(peer)
    assert out["first"] == 3 and out["gone"] is None
    assert len([m for m in peer.written if m.type == Msg.GET_STATE]) == 3
    assert not [m for m in peer.written if m.type == Msg.GET_STATE_MULTIPLE]


async def report_batch(ledger: Ledger) -> Any:
    """A rollout of h1 and h2; then one batch mixing accepted and refused reports."""
    await seed_tested_patch(ledger)
    for org in (SECOPS, COMPLIANCE):
        await ledger.ok(who(org, "approver"), "Approve", statement(who(org, "approver")))
    for h in ("h1", "h2", "h3"):
        host = {"host_id": h, "cert_pem": host_identity(ITOPS, h).cert_pem.decode()}
        await ledger.ok(who(ITOPS, "operator"), "EnrollHost", host)
    host = {"host_id": "s1", "cert_pem": host_identity(SECOPS, "s1").cert_pem.decode()}
    await ledger.ok(who(SECOPS, "operator"), "EnrollHost", host)
    plan = {"rollout_id": "R-1", "patch_id": "P-1", "waves": [{"hosts": ["h1", "h2"]}]}
    await ledger.ok(who(ITOPS, "operator"), "CreateRollout", plan)
    await ledger.ok(who(ITOPS, "operator"), "AdvanceRollout", "R-1")
    batch = [
        report(host_identity(ITOPS, "h1"), 1, "APPLIED"),
        report(host_identity(ITOPS, "h2"), 1, "APPLIED"),
        report(host_identity(ITOPS, "h3"), 1, "APPLIED"),  # enrolled, not in the rollout
        report(host_identity(ITOPS, "ghost"), 1, "APPLIED"),  # never enrolled
        report(host_identity(SECOPS, "s1"), 1, "APPLIED"),  # another organization's host
        report(host_identity(ITOPS, "h2"), 1, "APPLIED", rollout_id="R-9"),  # no such rollout
        {"report": {"record_type": "nonsense"}},
        report(host_identity(ITOPS, "h1"), 2, "VERIFIED"),
    ]
    return await ledger.ok(who(ITOPS, "operator"), "ReportDeployments", batch)


def reads_of_last_tx(peer: FakePeer) -> tuple[list[str], list[Any]]:
    txid = [m for m in peer.written if m.type == Msg.COMPLETED][-1].txid
    reads = [
        m for m in peer.written
        if m.txid == txid and m.type in (Msg.GET_STATE, Msg.GET_STATE_MULTIPLE)
    ]
    return [k for m in reads for k in keys_of(m)], reads


def test_report_deployments_prefetches_exactly_the_keys_the_core_reads() -> None:
    plain, v31 = FakePeer(batch_size=3), FakePeer(batch_size=3, features=V31)
    out_plain = scenario(report_batch, plain)
    out_v31 = scenario(report_batch, v31)
    assert out_v31["results"] == out_plain["results"]
    assert [r["accepted"] for r in out_v31["results"]] == [
        True, True, False, False, False, False, False, True,
    ]
    keys_plain, _ = reads_of_last_tx(plain)
    keys_v31, messages = reads_of_last_tx(v31)
    assert len(keys_v31) == len(set(keys_v31))  # each key read once
    assert sorted(keys_v31) == sorted(set(keys_plain))  # the same read set
    expected = {
        composite_key(k) for k in (
            Key("Host", ("h1",)), Key("Host", ("h2",)), Key("Host", ("h3",)),
            Key("Host", ("ghost",)), Key("Host", ("s1",)),
            Key("Deployment", ("R-1", "h1")), Key("Deployment", ("R-1", "h2")),
            Key("Deployment", ("R-1", "h3")), Key("Deployment", ("R-9", "h2")),
            Key("Rollout", ("R-1",)), Key("Patch", ("P-1",)),
        )
    }
    assert set(keys_v31) == expected
    # hosts, deployments, rollouts, patches: four requests, no single reads
    assert [m.type for m in messages] == [Msg.GET_STATE_MULTIPLE] * 4
    # and the writes went out as one batch before COMPLETED
    txid = messages[0].txid
    tail = [m.type for m in v31.written if m.txid == txid][-2:]
    assert tail == [Msg.WRITE_BATCH_STATE, Msg.COMPLETED]
    # the same records written (but for the reports' signatures: each run signs anew)
    for key in (Key("Deployment", ("R-1", "h1")), Key("Host", ("h2",))):
        unsigned = [{**json.loads(peer.state[composite_key(key)]), "report_signature": ""}
                    for peer in (v31, plain)]
        assert unsigned[0] == unsigned[1]
        assert v31.metadata.get(composite_key(key)) == plain.metadata.get(composite_key(key))


async def advance_and_attest(ledger: Ledger) -> Any:
    """A rollout whose second wave (h2, h3) starts with DecideRollout advance, then one
    AttestDeployments of h2 and h3."""
    await seed_tested_patch(ledger)
    for org in (SECOPS, COMPLIANCE):
        await ledger.ok(who(org, "approver"), "Approve", statement(who(org, "approver")))
    for h in ("h1", "h2", "h3"):
        host = {"host_id": h, "cert_pem": host_identity(ITOPS, h).cert_pem.decode()}
        await ledger.ok(who(ITOPS, "operator"), "EnrollHost", host)
    plan = {"rollout_id": "R-1", "patch_id": "P-1", "soak_seconds": 0,
            "waves": [{"hosts": ["h1"]}, {"hosts": ["h2", "h3"]}]}
    await ledger.ok(who(ITOPS, "operator"), "CreateRollout", plan)
    await ledger.ok(who(ITOPS, "operator"), "AdvanceRollout", "R-1")
    await ledger.ok(who(ITOPS, "operator"), "ReportDeployments",
                    [report(host_identity(ITOPS, "h1"), 1, "VERIFIED")])
    return await ledger.ok(who(ITOPS, "operator"), "DecideRollout", "R-1", "advance", "go")


def test_a_wave_start_prefetches_the_waves_hosts_and_reads_the_same_keys() -> None:
    plain, v31 = FakePeer(batch_size=3), FakePeer(batch_size=3, features=V31)
    scenario(advance_and_attest, plain)
    scenario(advance_and_attest, v31)
    keys_plain, _ = reads_of_last_tx(plain)
    keys_v31, messages = reads_of_last_tx(v31)
    assert sorted(set(keys_v31)) == sorted(set(keys_plain))  # the same read set
    hosts = [composite_key(Key("Host", (h,))) for h in ("h2", "h3")]
    multi = [keys_of(m) for m in messages if m.type == Msg.GET_STATE_MULTIPLE]
    assert hosts in multi  # the wave's hosts in one request
    for h in ("h2", "h3"):
        key = composite_key(Key("Deployment", ("R-1", h)))
        assert v31.state[key] == plain.state[key]


def test_attest_deployments_prefetches_its_hosts_and_deployments() -> None:
    async def body(ledger: Ledger) -> Any:
        await advance_and_attest(ledger)
        pairs = json.dumps([["h2", "n" * 20], ["h3", "m" * 20]])
        return await ledger.ok(who(ITOPS, "operator"), "AttestDeployments", "R-1", pairs)

    plain, v31 = FakePeer(batch_size=3), FakePeer(batch_size=3, features=V31)
    out_plain, out_v31 = scenario(body, plain), scenario(body, v31)
    assert out_v31["hosts"] == out_plain["hosts"]
    assert [e["deployment"]["status"] for e in out_v31["hosts"]] == ["SCHEDULED"] * 2
    reads = [m for m in v31.written if m.type == Msg.GET_STATE_MULTIPLE]
    assert sorted(keys_of(reads[-1])) == sorted(
        [composite_key(Key("Host", (h,))) for h in ("h2", "h3")]
        + [composite_key(Key("Deployment", ("R-1", h))) for h in ("h2", "h3")])
