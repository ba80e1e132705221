"""Queries (record by id, by type and status with bookmarks, history, errors), Ping/GetPing,
callers without a role, and the metadata listing every function."""

from __future__ import annotations

from typing import Any

import pytest

from patchledger.chaincode.lifecycle import (
    AlreadyExistsError,
    AuthorizationError,
    DuplicateVoteError,
    ExpiredError,
    NotFoundError,
    PreconditionError,
    ReplayError,
    SignatureError,
    TransitionError,
    ValidationError,
)
from patchledger.chaincode.patchledger.contract import contract
from patchledger.chaincode.patchledger.execution import refusal
from patchledger.chaincode.patchledger.reads import key_parts
from tests.support.chaincode_runtime import FakePeer, make_certificate, make_creator
from tests.unit.lifecycle.lifecycle_support import (
    NOW,
    SECOPS,
    init_args,
    vuln_data,
    who,
)
from tests.unit.patchledger_contract.contract_support import Ledger, scenario


def test_list_records_pages_through_a_status_with_bookmarks() -> None:
    async def body(ledger: Ledger) -> dict[str, Any]:
        await ledger.ok(who(SECOPS, "admin"), "InitLedger", *init_args())
        for i in range(9):
            await ledger.ok(who(SECOPS, "feed"), "RecordVulnerability",
                            vuln_data(f"CVE-2025-{i:04d}"))
        for i in (1, 2, 3, 7):
            await ledger.ok(who(SECOPS, "feed"), "AssessVulnerability",
                            f"CVE-2025-{i:04d}", "NOT_AFFECTED")
        pages: list[Any] = []
        bookmark = ""
        while True:
            page = await ledger.ok(who(SECOPS, "auditor"), "ListRecords",
                                   "Vulnerability", "OPEN", 2, bookmark)
            pages.append([r["vuln_id"][-1] for r in page["records"]])
            bookmark = page["bookmark"]
            if not bookmark:
                break
        everything = await ledger.ok(who(SECOPS, "auditor"), "ListRecords",
                                     "Vulnerability", "", 200, "")
        bad_size = await ledger.call(who(SECOPS, "auditor"), "ListRecords",
                                     "Vulnerability", "", 0, "")
        bad_type = await ledger.call(who(SECOPS, "auditor"), "ListRecords", "Nope", "", 5, "")
        return {"pages": pages, "all": everything, "bad_size": bad_size, "bad_type": bad_type}

    out = scenario(body, FakePeer(batch_size=2))
    assert out["pages"] == [["0", "4"], ["5", "6"], ["8"]]
    assert len(out["all"]["records"]) == 9 and out["all"]["bookmark"] == ""
    assert out["bad_size"].status == 400 and "page_size" in out["bad_size"].message
    assert out["bad_type"].message == (
        "ValidationError: invalid field 'record_type': unknown record type 'Nope'"
    )


def test_record_lookups_and_history_refusals() -> None:
    async def body(ledger: Ledger) -> list[Any]:
        await ledger.ok(who(SECOPS, "admin"), "InitLedger", *init_args())
        auditor = who(SECOPS, "auditor")
        return [
            await ledger.ok(auditor, "GetRecord", "Policy", "default"),
            await ledger.call(auditor, "GetRecord", "Patch", "P-404"),
            await ledger.call(auditor, "GetHistory", "Patch", "P-404"),
            await ledger.call(auditor, "GetRecord", "Approval", "P-1"),
            await ledger.call(auditor, "GetApprovalBundle", "P-404"),
            await ledger.call(auditor, "InitLedger", *init_args()),
            await ledger.call(who(SECOPS, "admin"), "InitLedger", *init_args()),
        ]

    policy, missing, no_history, one_part, no_bundle, auditor_write, again = scenario(body)
    assert policy["version"] == 1 and policy["updated_by"] == SECOPS
    assert (missing.status, missing.message) == (404, "NotFoundError: Patch 'P-404' does not exist")
    assert (no_history.status, no_history.message) == (
        404, "NotFoundError: Patch 'P-404' does not exist"
    )
    assert one_part.status == 400 and "a Approval id has two parts" in one_part.message
    assert no_bundle.status == 404
    assert auditor_write.status == 403 and "role 'auditor'" in auditor_write.message
    assert (again.status, again.message) == (
        409, "AlreadyExistsError: Policy 'default' already exists"
    )


def test_ping_needs_no_role_and_get_ping_reads_it_back() -> None:
    plain = make_certificate("peer-admin")  # no Fabric CA attributes at all
    creator = make_creator("ITOpsMSP", plain.cert_pem)

    async def body(ledger: Ledger) -> list[Any]:
        return [
            await ledger.call(creator, "Ping", "n-1", now=NOW + 7),
            await ledger.ok(who(SECOPS, "auditor"), "GetPing", "ITOpsMSP"),
            await ledger.call(creator, "GetPing", "SecOpsMSP"),
            await ledger.call(creator, "Ping", ""),
            await ledger.call(creator, "RecordVulnerability", vuln_data()),
        ]

    ping, read, absent, empty, no_role = scenario(body)
    assert ping.ok and ping.event_name == "patchledger"
    assert read == {"record_type": "Ping", "msp_id": "ITOpsMSP", "nonce": "n-1",
                    "at": NOW + 7, "tx_id": ping.payload["tx_id"]}
    assert (absent.status, absent.message) == (404, "Ping 'SecOpsMSP' does not exist")
    assert empty.status == 400
    assert (no_role.status, no_role.message) == (
        403, "AuthorizationError: creator of ITOpsMSP has no recognised role attribute"
    )


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("Patch", "P-1"), 404),
        (AuthorizationError("no"), 403),
        (AlreadyExistsError("Host", "h1"), 409),
        (DuplicateVoteError("Patch", "P-1", "SecOpsMSP"), 409),
        (TransitionError("Patch", "P-1", "REJECTED", "APPROVED"), 409),
        (PreconditionError("Rollout", "R-1", "RUNNING", "wave 0 not settled"), 409),
        (ReplayError("seq"), 409),
        (ValidationError("x", "bad"), 400),
        (SignatureError("forged"), 400),
        (ExpiredError("late"), 400),
    ],
)
def test_refusals_keep_the_core_message_and_get_a_status_by_kind(
    error: Exception, status: int
) -> None:
    assert isinstance(error, Exception)
    mapped = refusal(error)  # type: ignore[arg-type]
    assert mapped.status == status
    assert mapped.message == f"{type(error).__name__}: {error}"


def test_transition_refusal_names_record_state_and_attempt() -> None:
    message = refusal(TransitionError("Patch", "P-1", "REJECTED", "APPROVED")).message
    assert message == "TransitionError: Patch 'P-1' is REJECTED: cannot move to APPROVED"


def test_key_parts() -> None:
    assert key_parts("Patch", "a/b") == ("a/b",)
    assert key_parts("Deployment", "R-1/h/1") == ("R-1", "h/1")
    with pytest.raises(ValidationError):
        key_parts("Deployment", "R-1/")


def test_metadata_lists_submit_and_evaluate_functions() -> None:
    transactions = contract.metadata()["contracts"]["patchledger"]["transactions"]
    tags = {t["name"]: t["tag"][0] for t in transactions}
    assert tags["ReportDeployments"] == "SUBMIT" and tags["Ping"] == "SUBMIT"
    assert {n for n, t in tags.items() if t == "EVALUATE"} == {
        "GetRecord", "ListRecords", "GetHistory", "GetApprovalBundle", "GetPing",
        "AttestDeployment", "AttestDeployments", "AttestChannelRoots",
    }
    assert len(tags) == 37  # 29 SUBMIT (with RecordVulnerabilities and EnrollHosts) and 8 EVALUATE
