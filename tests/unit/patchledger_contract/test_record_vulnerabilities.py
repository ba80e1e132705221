"""RecordVulnerabilities through the contract (fake peer): a bounded batch with per-entry
results, each entry validated, authorized and merged exactly as RecordVulnerability does it;
refused entries change nothing; the records are read with one multi-key request."""

from __future__ import annotations

from typing import Any

import pytest

from patchledger.chaincode.lifecycle.ops.vulnerabilities import MAX_BATCH
from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.patchledger.bridge import composite_key
from patchledger.chaincode.runtime._protos import Msg
from tests.support.chaincode_runtime import FakePeer
from tests.unit.lifecycle.lifecycle_support import ITOPS, SECOPS, init_args, vuln_data, who
from tests.unit.patchledger_contract.contract_support import Ledger, scenario
from tests.unit.patchledger_contract.test_prefetch import V31, reads_of_last_tx


def _batch() -> list[Any]:
    return [
        vuln_data("CVE-2024-0001", "high"),
        {**vuln_data("CVE-2024-0002", "high"), "cvss_score": "eleven"},  # malformed
        "not an object",
        vuln_data("CVE-2024-3094", "high"),  # known: merged (stays critical, no change)
        {**vuln_data("CVE-2024-0001", "critical"), "aliases": ["GHSA-xxxx-0001"]},  # merged
        {"severity": "low"},  # no vuln_id
    ]


async def _record(ledger: Ledger) -> dict[str, Any]:
    await ledger.ok(who(SECOPS, "admin"), "InitLedger", *init_args())
    await ledger.ok(who(SECOPS, "feed"), "RecordVulnerability", vuln_data())
    first = await ledger.call(who(SECOPS, "feed"), "RecordVulnerabilities", _batch())
    again = await ledger.call(who(SECOPS, "feed"), "RecordVulnerabilities", _batch())
    return {"first": first, "again": again}


def _single(vulns: list[dict[str, Any]]) -> FakePeer:
    """A peer where the same vulnerabilities went in one RecordVulnerability each."""
    peer = FakePeer()

    async def body(ledger: Ledger) -> None:
        await ledger.ok(who(SECOPS, "admin"), "InitLedger", *init_args())
        await ledger.ok(who(SECOPS, "feed"), "RecordVulnerability", vuln_data())
        for v in vulns:
            await ledger.call(who(SECOPS, "feed"), "RecordVulnerability", v)

    scenario(body, peer)
    return peer


def test_a_batch_records_each_entry_as_record_vulnerability_would() -> None:
    peer = FakePeer(batch_size=3)
    out = scenario(_record, peer)
    first = out["first"]
    assert first.ok, first.message
    results = first.payload["results"]
    assert [(r["index"], r["vuln_id"], r["recorded"], r["changed"]) for r in results] == [
        (0, "CVE-2024-0001", True, True), (1, "CVE-2024-0002", False, False),
        (2, "", False, False), (3, "CVE-2024-3094", True, False),
        (4, "CVE-2024-0001", True, True), (5, "", False, False)]
    assert results[1]["error_type"] == "ValidationError" and "cvss_score" in results[1]["error"]
    assert "must be an object" in results[2]["error"]
    assert "vuln_id" in results[5]["error"]
    assert (first.payload["recorded"], first.payload["changed"], first.payload["refused"]) == (
        3, 2, 3)
    # one event for the transaction, listing what changed
    assert first.event_name == "patchledger"
    assert [c["record_id"] for c in first.event["changes"]] == [
        "CVE-2024-0001", "CVE-2024-0001"]
    # refused entries wrote nothing
    assert composite_key(Key("Vulnerability", ("CVE-2024-0002",))) not in peer.state
    # the same world state as one RecordVulnerability per entry
    single = _single([v for v in _batch() if isinstance(v, dict)])
    vulns = {k: v for k, v in peer.state.items() if "Vulnerability" in k}
    assert vulns == {k: v for k, v in single.state.items() if "Vulnerability" in k}
    # idempotent: the same batch again changes nothing
    again = out["again"]
    assert again.ok and again.payload["changed"] == 0 and again.payload["recorded"] == 3


@pytest.mark.parametrize(("caller", "batch", "status", "words"), [
    (who(ITOPS, "operator"), [vuln_data()], 403, "record_vulnerability"),
    (who(SECOPS, "approver"), [vuln_data()], 403, "record_vulnerability"),
    (who(SECOPS, "feed"), [], 400, "1 to 200"),
    (who(SECOPS, "feed"), [vuln_data(f"CVE-2024-{i:04d}") for i in range(MAX_BATCH + 1)],
     400, "1 to 200"),
    (who(SECOPS, "feed"), {"vuln_id": "CVE-2024-0001"}, 400, "must be a JSON array"),
])
def test_bad_callers_and_batches_are_refused_whole(caller: Any, batch: Any, status: int,
                                                   words: str) -> None:
    peer = FakePeer()

    async def body(ledger: Ledger) -> Any:
        await ledger.ok(who(SECOPS, "admin"), "InitLedger", *init_args())
        before = dict(peer.state)
        reply = await ledger.call(caller, "RecordVulnerabilities", batch)
        return reply, before

    reply, before = scenario(body, peer)
    assert reply.status == status and words in reply.message, reply.message
    assert peer.state == before


def test_the_batch_reads_its_records_with_one_request() -> None:
    peer = FakePeer(features=V31)
    scenario(_record, peer)
    keys, messages = reads_of_last_tx(peer)
    assert [m.type for m in messages] == [Msg.GET_STATE_MULTIPLE]
    assert sorted(keys) == sorted(composite_key(Key("Vulnerability", (v,)))
                                  for v in ("CVE-2024-0001", "CVE-2024-3094"))
