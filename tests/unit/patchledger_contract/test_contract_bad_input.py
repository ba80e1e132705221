"""The contract never answers bad input with an internal error, and no stored record can break
a query. Each test sends the hostile input through the runtime (fake peer) as a client would."""

from __future__ import annotations

import json
from typing import Any

import pytest

from patchledger.chaincode.lifecycle.record import MAX_EXTRA_BYTES, Key
from patchledger.chaincode.patchledger.bridge import composite_key
from tests.support.chaincode_runtime import FakePeer
from tests.unit.lifecycle.lifecycle_support import (
    ITOPS,
    SECOPS,
    host_identity,
    patch_data,
    report,
    vuln_data,
    who,
)
from tests.unit.patchledger_contract.contract_support import Ledger, Reply, scenario
from tests.unit.patchledger_contract.test_contract_lifecycle import seed_tested_patch

BAD_IDS = ("P\x00-1", "P-\U0010ffff", "")

#: (function, caller, arguments with ``{id}`` where the hostile id goes, field named)
ID_CALLS: list[tuple[str, tuple[str, str], tuple[Any, ...], str]] = [
    ("RevokePatch", (SECOPS, "approver"), ("{id}", "bad build"), "patch_id"),
    ("GetRecord", (SECOPS, "auditor"), ("Patch", "{id}"), "patch_id"),
    ("GetRecord", (SECOPS, "auditor"), ("Deployment", "R-1/{id}"), "host_id|record_id"),
    ("GetHistory", (SECOPS, "auditor"), ("Host", "{id}"), "host_id"),
    ("GetApprovalBundle", (SECOPS, "auditor"), ("{id}",), "patch_id"),
    ("AssessVulnerability", (ITOPS, "operator"), ("{id}", "MITIGATED"), "vuln_id"),
    ("AttachTestEvidence", (ITOPS, "operator"),
     ("{id}", {"report_sha256": "a" * 64, "uri": "u", "passed": True}), "patch_id"),
    ("ApprovePolicy", (SECOPS, "admin"), ("{id}",), "proposal_id"),
    ("UpdateInventoryDigest", (ITOPS, "operator"), ("{id}", "b" * 64), "host_id"),
    ("DecommissionHost", (ITOPS, "operator"), ("{id}",), "host_id"),
    ("AdvanceRollout", (ITOPS, "operator"), ("{id}",), "rollout_id"),
    ("PauseRollout", (ITOPS, "operator"), ("{id}",), "rollout_id"),
    ("HaltRollout", (ITOPS, "operator"), ("{id}",), "rollout_id"),
    ("CompleteRollout", (ITOPS, "operator"), ("{id}",), "rollout_id"),
    ("ExpireException", (SECOPS, "approver"), ("CVE-2024-3094", "{id}"), "exception_id"),
    ("GetPing", (SECOPS, "auditor"), ("{id}",), "msp_id"),
]


def _fill(args: tuple[Any, ...], bad: str) -> list[Any]:
    out: list[Any] = []
    for a in args:
        out.append(a.replace("{id}", bad) if isinstance(a, str) else a)
    return out


def run_calls(calls: list[tuple[tuple[str, str], str, list[Any]]]) -> list[Reply]:
    async def body(ledger: Ledger) -> list[Reply]:
        await seed_tested_patch(ledger)
        return [await ledger.call(who(*caller), fn, *args) for caller, fn, args in calls]

    return scenario(body)


@pytest.mark.parametrize("bad", BAD_IDS, ids=["nul", "u10ffff", "empty"])
def test_hostile_ids_are_400s_naming_the_field(bad: str) -> None:
    calls = [(caller, fn, _fill(args, bad)) for fn, caller, args, _ in ID_CALLS]
    replies = run_calls(calls)
    for (fn, _, _, field), reply in zip(ID_CALLS, replies, strict=True):
        assert reply.status == 400, (fn, reply.status, reply.message)
        assert reply.message.startswith("ValidationError"), (fn, reply.message)
        assert any(f"'{f}'" in reply.message for f in field.split("|")), (fn, reply.message)


def test_wrong_types_are_400s_naming_the_field_and_change_nothing() -> None:
    async def body(ledger: Ledger) -> tuple[list[Reply], Reply]:
        await seed_tested_patch(ledger)
        feed, op = who(SECOPS, "feed"), who(ITOPS, "operator")
        replies = [
            await ledger.call(feed, "ProposePatch", {**patch_data("P-2"), "targets": "pkg:x"}),
            await ledger.call(feed, "ProposePatch", {**patch_data("P-3"), "targets": {"a": 1}}),
            await ledger.call(feed, "ProposePatch", {**patch_data("P-4"), "patch_id": 7}),
            await ledger.call(feed, "ProposePatch", {**patch_data("P-5"), "title": ["x"]}),
            await ledger.call(feed, "RecordVulnerability", {**vuln_data(), "vuln_id": 5}),
            await ledger.call(op, "CreateRollout",
                              {"rollout_id": "R-1", "patch_id": 5, "waves": [{"hosts": ["h1"]}]}),
            await ledger.call(
                who(SECOPS, "approver"), "GrantException",
                {"exception_id": "E-1", "vuln_id": ["CVE-2024-3094"], "justification": "j",
                 "expires_at": 2_000_000_000},
            ),
        ]
        listed = await ledger.call(who(SECOPS, "auditor"), "ListRecords", "Patch", "", 10, "")
        return replies, listed

    replies, listed = scenario(body)
    fields = ["targets", "targets", "patch_id", "title", "vuln_id", "patch_id", "vuln_id"]
    for field, reply in zip(fields, replies, strict=True):
        assert reply.status == 400, (field, reply.status, reply.message)
        assert f"invalid field '{field}'" in reply.message, reply.message
    assert [r["patch_id"] for r in listed.payload["records"]] == ["P-1"]


def _with_deep_note(patch_id: str, depth: int) -> str:
    """ProposePatch's argument as raw JSON text with an unknown member ``depth`` levels deep
    (written by hand: a client's json.dumps would itself give up)."""
    deep = '{"x":' * depth + '"leaf"' + "}" * depth
    return json.dumps(patch_data(patch_id))[:-1] + ',"note":' + deep + "}"


def test_deep_or_huge_unknown_members_are_refused_and_queries_keep_working() -> None:
    """An unknown member nested ~980 levels deep, or 20 MiB of unknown data, used to be
    stored and from then on broke ListRecords / GetHistory for everyone."""

    async def body(ledger: Ledger) -> tuple[list[Reply], list[Reply]]:
        await seed_tested_patch(ledger)
        feed = who(SECOPS, "feed")
        attacks = [
            await ledger.call(feed, "ProposePatch", _with_deep_note("P-2", 980)),
            await ledger.call(feed, "ProposePatch", _with_deep_note("P-3", 40)),
            await ledger.call(feed, "ProposePatch",
                              {**patch_data("P-4"), "note": "x" * (20 * 1024 * 1024)}),
            await ledger.call(feed, "ProposePatch",
                              {**patch_data("P-5"), "note": "x" * (MAX_EXTRA_BYTES + 1)}),
            # raw JSON text, nested deeper than any parser's stack
            await ledger.call(feed, "RecordVulnerability", '{"x":' * 100_000 + "1" + "}" * 100_000),
        ]
        auditor = who(SECOPS, "auditor")
        queries = [
            await ledger.call(auditor, "ListRecords", "Patch", "", 10, ""),
            await ledger.call(auditor, "GetHistory", "Patch", "P-1"),
            await ledger.call(auditor, "GetApprovalBundle", "P-1"),
        ]
        return attacks, queries

    attacks, queries = scenario(body)
    assert [a.status for a in attacks] == [400] * 5, [(a.status, a.message) for a in attacks]
    assert "nests" in attacks[0].message  # by the runtime parser or the core limit
    assert "nests deeper than 32 levels" in attacks[1].message
    assert "more than" in attacks[2].message and "more than" in attacks[3].message
    assert "nests too deeply" in attacks[4].message
    assert all(q.ok for q in queries), [(q.status, q.message) for q in queries]
    assert [r["patch_id"] for r in queries[0].payload["records"]] == ["P-1"]
    assert len(json.dumps(queries[2].payload)) < 64 * 1024


def test_small_unknown_members_are_still_kept() -> None:
    """Forward compatibility stays: a newer writer's small unknown member round-trips."""

    async def body(ledger: Ledger) -> Any:
        await seed_tested_patch(ledger)
        await ledger.ok(who(SECOPS, "feed"), "ProposePatch",
                        {**patch_data("P-2"), "note": {"added_by": "v2", "tags": ["a", "b"]}})
        return await ledger.ok(who(SECOPS, "auditor"), "GetRecord", "Patch", "P-2")

    assert scenario(body)["note"] == {"added_by": "v2", "tags": ["a", "b"]}


def test_a_4400_digit_sequence_number_refuses_its_report_not_the_batch() -> None:
    """Python cannot parse a 4,400-digit integer; it used to fail the whole argument (400),
    losing the valid reports of the batch. Now that report alone is refused, naming
    ``sequence``, and the batch transaction succeeds."""
    host = host_identity(ITOPS, "h1")
    huge, plain = report(host, 1, "APPLIED"), report(host, 2, "APPLIED")
    huge["report"]["sequence"] = 424242
    text = json.dumps([huge, plain]).replace("424242", "9" * 4400, 1)

    async def body(ledger: Ledger) -> Reply:
        await seed_tested_patch(ledger)
        return await ledger.call(who(ITOPS, "operator"), "ReportDeployments", text)

    reply = scenario(body)
    assert reply.ok, (reply.status, reply.message)
    first, second = reply.payload["results"]
    assert first["error"].startswith("invalid field 'sequence': must be between 1 and")
    assert second["error_type"] == "NotFoundError"  # judged on its own (no such host here)


def test_a_legacy_record_breaking_a_later_rule_does_not_break_the_queries() -> None:
    """A Patch stored by an older version with ``targets`` as a string (which the rules now
    refuse) is listed as unreadable and shown in its history, while the other records are
    served: no stored value can fail ListRecords or GetHistory for everyone."""
    peer = FakePeer(batch_size=3)
    legacy = {**patch_data("P-0"), "targets": "pkg:deb/debian/xz-utils", "record_type": "Patch",
              "severity": "critical", "proposed_by": SECOPS, "status": "PROPOSED"}
    key = composite_key(Key("Patch", ("P-0",)))
    peer._write("legacy-tx", key, json.dumps(legacy).encode(), False)

    async def body(ledger: Ledger) -> list[Reply]:
        await seed_tested_patch(ledger)
        auditor = who(SECOPS, "auditor")
        return [
            await ledger.call(auditor, "ListRecords", "Patch", "", 10, ""),
            await ledger.call(auditor, "ListRecords", "Patch", "TESTED", 10, ""),
            await ledger.call(auditor, "GetHistory", "Patch", "P-0"),
        ]

    everything, tested, history = scenario(body, peer)
    assert everything.ok and tested.ok and history.ok
    unreadable, good = everything.payload["records"]
    assert unreadable["record_id"] == "P-0"
    assert "invalid field 'targets': must be a list" in unreadable["unreadable"]
    assert good["patch_id"] == "P-1"
    assert [r["patch_id"] for r in tested.payload["records"]] == ["P-1"]
    (entry,) = history.payload
    assert entry["record"] is None and "targets" in entry["unreadable"]
