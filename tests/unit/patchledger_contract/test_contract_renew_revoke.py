"""RenewApproval and RevokeIdentity through the contract (fake peer): the renewal keeps every
version in the key's history, the revocation is owned (key-level endorsement: the owner's peer
AND a majority), and refusals are 4xx naming what was wrong."""

from __future__ import annotations

from typing import Any

from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.patchledger.bridge import composite_key
from patchledger.chaincode.runtime.endorsement import (
    ROLE_PEER,
    VALIDATION_PARAMETER,
    decode_policy,
    is_satisfied_by,
)
from tests.support.chaincode_runtime import FakePeer
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    DAY,
    ITOPS,
    NOW,
    SECOPS,
    statement,
    who,
)
from tests.unit.patchledger_contract.contract_support import Ledger, scenario
from tests.unit.patchledger_contract.test_contract_lifecycle import seed_tested_patch


def test_a_renewal_is_a_new_version_of_the_approval_and_a_revocation_is_owned() -> None:
    peer = FakePeer(batch_size=3)
    approver = who(SECOPS, "approver")

    async def body(ledger: Ledger) -> dict[str, Any]:
        await seed_tested_patch(ledger)
        for org in (SECOPS, COMPLIANCE):
            await ledger.ok(who(org, "approver"), "Approve", statement(who(org, "approver")))
        renewed = statement(approver, expires_at=NOW + 5 * DAY)
        out: dict[str, Any] = {
            "renew": await ledger.call(approver, "RenewApproval", renewed, now=NOW + 10),
            "again": await ledger.call(approver, "RenewApproval", renewed, now=NOW + 11),
            "history": await ledger.ok(who(SECOPS, "auditor"), "GetHistory", "Approval",
                                       f"P-1/{SECOPS}"),
            "foreign": await ledger.call(
                who(ITOPS, "admin"), "RevokeIdentity",
                {"msp_id": SECOPS, "enrollment_id": approver.caller.name}, "not yours"),
            "revoke": await ledger.call(
                who(SECOPS, "admin"), "RevokeIdentity",
                {"msp_id": SECOPS, "enrollment_id": approver.caller.name}, "key leaked"),
            "bad": await ledger.call(who(SECOPS, "admin"), "RevokeIdentity", "alice", "x"),
        }
        out["bundle"] = await ledger.ok(who(SECOPS, "auditor"), "GetApprovalBundle", "P-1")
        out["record"] = await ledger.ok(who(SECOPS, "auditor"), "GetRecord", "RevokedIdentity",
                                        f"{SECOPS}/enrollment_id/{approver.caller.name}")
        return out

    out = scenario(body, peer)
    assert out["renew"].ok, out["renew"].message
    assert out["again"].status == 400 and "statement.expires_at" in out["again"].message
    expiries = [e["record"]["statement"]["statement"]["expires_at"] for e in out["history"]]
    assert expiries == [NOW + DAY, NOW + 5 * DAY]
    assert out["foreign"].status == 403 and "belongs to SecOpsMSP" in out["foreign"].message
    assert out["revoke"].ok, out["revoke"].message
    assert out["bad"].status == 400 and "identity" in out["bad"].message
    key = Key("RevokedIdentity", (SECOPS, "enrollment_id", approver.caller.name))
    rule = decode_policy(peer.metadata[composite_key(key)][VALIDATION_PARAMETER])
    assert not is_satisfied_by(rule, [(ITOPS, ROLE_PEER), (COMPLIANCE, ROLE_PEER)])
    assert is_satisfied_by(rule, [(SECOPS, ROLE_PEER), (COMPLIANCE, ROLE_PEER)])
    [revoked] = out["bundle"]["revoked_identities"]
    assert revoked["value"] == approver.caller.name and revoked["reason"] == "key leaked"
    assert out["record"] == revoked and revoked["updated_by"] == SECOPS
