"""ReportDeployments parses each record it reads once: the prefetch parses through the
transaction's cache (TxLedger.parse), and the core reuses those records. Before, the prefetch
parsed the rollout (which names every host of its waves) once per report, and the core again
per report, which made a batch's endorsement grow with batch size times rollout size
(docs/benchmarks.md, "Host-report throughput")."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from patchledger.chaincode.lifecycle import TxLedger
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.ops import deployments
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.rollout import Rollout
from patchledger.chaincode.patchledger.bridge import (
    StubStore,
    composite_key,
    new_pool,
    run_in_worker,
)
from patchledger.chaincode.patchledger.prefetch import prefetch_reports
from patchledger.chaincode.runtime import Context, Contract, PeerSession
from tests.support.chaincode_runtime import FakePeer, parse_response
from tests.unit.lifecycle.lifecycle_support import ITOPS, NOW, host_identity, report, who
from tests.unit.lifecycle.test_ledger_parse_cache import started_store
from tests.unit.patchledger_contract.test_prefetch import V31

HOSTS = tuple(f"h{i}" for i in range(12))
probe = Contract("parse-probe")


@probe.transaction
async def Batch(ctx: Context, reports: list[Any]) -> dict[str, Any]:
    store = StubStore(ctx.stub, asyncio.get_running_loop())
    tx = TxLedger(store, who(ITOPS, "operator").caller, NOW)

    def work() -> dict[str, Any]:
        prefetch_reports(tx, reports)
        prefetched = dict(tx.parsed)
        result = deployments.report_deployments(tx, reports)
        keys = [Rollout.key_for("R-1")]  # the patch is read, not parsed, by the prefetch
        keys += [Host.key_for(h) for h in HOSTS] + [Deployment.key_for("R-1", h) for h in HOSTS]
        return {
            "accepted": result.accepted,
            "prefetched": sorted(str(k) for k in prefetched),
            # the core loaded exactly the records the prefetch parsed (the same objects)
            "reused": [str(k) for k in keys if tx.parsed[k][1] is prefetched[k][1]],
            "expected": [str(k) for k in keys],
            "patch_parsed_by_core": Patch.key_for("P-1") in tx.parsed,
        }

    return await run_in_worker(new_pool(1), work)


def test_the_core_reuses_the_records_the_prefetch_parsed() -> None:
    seeded = started_store(HOSTS)
    peer = FakePeer(features=V31)
    for key, value in seeded.data.items():
        peer.state[composite_key(key)] = value
    batch = [report(host_identity(ITOPS, h), 1, "APPLIED") for h in HOSTS]

    async def main() -> Any:
        session = PeerSession(peer, "parse-probe:1", probe, request_timeout=5)
        task = asyncio.create_task(session.run())
        try:
            return parse_response(await peer.transact("Batch", json.dumps(batch)))
        finally:
            peer.close()
            await task

    reply = asyncio.run(main())
    assert reply.status == 200, reply.message
    out = json.loads(reply.payload)
    assert out["accepted"] == len(HOSTS)
    assert out["reused"] == out["expected"]
    assert sorted(out["expected"]) == out["prefetched"]
    assert out["patch_parsed_by_core"]
