"""The whole life of a patch through the contract (fake peer), and the attacks the contract must
refuse, each with an error naming the record, its state and the attempt."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.patchledger.bridge import composite_key
from patchledger.chaincode.runtime.endorsement import (
    ROLE_PEER,
    VALIDATION_PARAMETER,
    decode_policy,
    is_satisfied_by,
)
from tests.support.chaincode_runtime import FakePeer, make_creator
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    INVENTORY,
    ITOPS,
    NOW,
    SECOPS,
    host_identity,
    identity,
    init_args,
    patch_data,
    policy_data,
    report,
    statement,
    vuln_data,
    who,
)
from tests.unit.patchledger_contract.contract_support import Ledger, scenario

EVIDENCE = {"report_sha256": INVENTORY, "uri": "https://ci/1", "summary": "ok", "passed": True}


async def seed_tested_patch(ledger: Ledger) -> None:
    """Policy, a critical vulnerability and patch P-1, TESTED."""
    await ledger.ok(who(SECOPS, "admin"), "InitLedger", *init_args())
    await ledger.ok(who(SECOPS, "feed"), "RecordVulnerability", vuln_data())
    await ledger.ok(who(SECOPS, "feed"), "ProposePatch", patch_data())
    await ledger.ok(who(ITOPS, "operator"), "AttachTestEvidence", "P-1", EVIDENCE)


def test_the_life_of_a_patch_and_its_events_and_history() -> None:
    peer = FakePeer(batch_size=3)

    async def body(ledger: Ledger) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first = await ledger.call(who(SECOPS, "admin"), "InitLedger", *init_args())
        out["init_event"] = (first.event_name, first.event)
        await ledger.ok(who(SECOPS, "feed"), "RecordVulnerability", vuln_data())
        again = await ledger.call(who(SECOPS, "feed"), "RecordVulnerability", vuln_data())
        out["again"] = (again.payload["changes"], again.event_name)
        await ledger.ok(who(SECOPS, "feed"), "ProposePatch", patch_data())
        await ledger.ok(who(ITOPS, "operator"), "AttachTestEvidence", "P-1", EVIDENCE, now=NOW + 1)
        await ledger.ok(who(SECOPS, "approver"), "Approve", statement(who(SECOPS, "approver")))
        last = await ledger.call(
            who(COMPLIANCE, "approver"),
            "Approve",
            statement(who(COMPLIANCE, "approver")),
            now=NOW + 2,
        )
        out["approved_event"] = last.event
        for h in ("h1", "h2", "h3"):
            await ledger.ok(
                who(ITOPS, "admin"),
                "EnrollHost",
                {
                    "host_id": h,
                    "cert_pem": host_identity(ITOPS, h).cert_pem.decode(),
                    "groups": ["canary"] if h == "h1" else ["web"],
                    "maintenance_window": "Sun 02:00-04:00",
                },
            )
        rollout = {"rollout_id": "R-1", "patch_id": "P-1",
                   "waves": [{"hosts": ["h1"]}, {"groups": ["web"]}], "soak_seconds": 0}
        await ledger.ok(who(ITOPS, "operator"), "CreateRollout", rollout)
        await ledger.ok(who(ITOPS, "operator"), "AdvanceRollout", "R-1", now=NOW + 3)
        batch = await ledger.ok(
            who(ITOPS, "operator"), "ReportDeployments",
            [report(host_identity(ITOPS, "h1"), 1, "APPLIED"),
             report(host_identity(ITOPS, "h1"), 2, "VERIFIED")],
        )
        out["batch1"] = (batch["accepted"], batch["refused"])
        await ledger.ok(who(ITOPS, "operator"), "AdvanceRollout", "R-1", now=NOW + 4)
        own = await ledger.ok(
            host_identity(ITOPS, "h2"), "ReportDeployments",
            [report(host_identity(ITOPS, "h2"), 1)],
        )
        relayed = await ledger.ok(
            who(ITOPS, "operator"), "ReportDeployments", [report(host_identity(ITOPS, "h3"), 1)]
        )
        out["batch2"] = (own["accepted"], relayed["accepted"])
        await ledger.ok(who(ITOPS, "operator"), "CompleteRollout", "R-1", now=NOW + 5)
        out["rollout"] = await ledger.ok(who(SECOPS, "auditor"), "GetRecord", "Rollout", "R-1")
        out["deployments"] = await ledger.ok(
            who(SECOPS, "auditor"), "ListRecords", "Deployment", "VERIFIED", 10, ""
        )
        out["history"] = await ledger.ok(who(SECOPS, "auditor"), "GetHistory", "Patch", "P-1")
        out["bundle"] = await ledger.ok(who(SECOPS, "auditor"), "GetApprovalBundle", "P-1")
        out["approval"] = await ledger.ok(
            who(SECOPS, "auditor"), "GetRecord", "Approval", f"P-1/{COMPLIANCE}"
        )
        return out

    out = scenario(body, peer)
    assert out["init_event"] == (
        "patchledger",
        {"changes": [{"record_type": "Policy", "record_id": "default", "from": "", "to": ""}]},
    )
    assert out["again"] == ([], "")  # re-recording the same data: no change, no event
    assert {"record_type": "Patch", "record_id": "P-1", "from": "TESTED", "to": "APPROVED"} in (
        out["approved_event"]["changes"]
    )
    assert out["batch1"] == (2, 0) and out["batch2"] == (1, 1)
    assert out["rollout"]["status"] == "COMPLETED"
    assert [d["host_id"] for d in out["deployments"]["records"]] == ["h1", "h2", "h3"]
    steps = [(e["state"], e["creator_msp"]) for e in out["history"]]
    assert steps == [
        ("PROPOSED", SECOPS),
        ("TESTED", ITOPS),
        ("APPROVED", COMPLIANCE),
        ("RELEASED", ITOPS),
    ]
    assert [e["timestamp"] for e in out["history"]] == [NOW, NOW + 1, NOW + 2, NOW + 3]
    assert all(e["tx_id"] for e in out["history"])
    signers = {a["statement"]["statement"]["msp_id"]: a for a in out["bundle"]["approvals"]}
    assert set(signers) == {SECOPS, COMPLIANCE}
    assert signers[COMPLIANCE]["signer_cert_pem"] == who(COMPLIANCE, "approver").cert_pem.decode()
    assert out["approval"]["decision"] == "approve"
    # Host and rollout keys carry a key-level policy: the owner's peer AND a majority of the
    # channel's organizations (the contract's trust: the three orgs). Deployment keys carry
    # none: the chaincode's MAJORITY policy governs them, their statuses the host's signature.
    deployment_key = composite_key(Key("Deployment", ("R-1", "h2")))
    assert VALIDATION_PARAMETER not in peer.metadata.get(deployment_key, {})
    for key in (Key("Host", ("h1",)), Key("Rollout", ("R-1",))):
        rule = decode_policy(peer.metadata[composite_key(key)][VALIDATION_PARAMETER])
        assert str(rule) == "AND('ITOpsMSP.peer', OR('ComplianceMSP.peer', 'SecOpsMSP.peer'))"
        assert not is_satisfied_by(rule, [(ITOPS, ROLE_PEER)])
        assert is_satisfied_by(rule, [(ITOPS, ROLE_PEER), (COMPLIANCE, ROLE_PEER)])
    assert VALIDATION_PARAMETER not in peer.metadata.get(composite_key(Key("Patch", ("P-1",))), {})


def test_approval_attacks_are_refused_with_the_record_and_the_reason() -> None:
    async def body(ledger: Ledger) -> dict[str, Any]:
        await seed_tested_patch(ledger)
        itops = who(ITOPS, "approver")
        out = {
            "other_org": await ledger.call(
                itops, "Approve", statement(itops, msp_id=COMPLIANCE)
            ),
            "no_role": await ledger.call(
                who(ITOPS, "operator"), "Approve", statement(who(ITOPS, "operator"))
            ),
            "digest": await ledger.call(itops, "Approve", statement(itops, artifact="ab" * 32)),
        }
        await ledger.ok(who(SECOPS, "approver"), "Approve", statement(who(SECOPS, "approver")))
        second = identity(SECOPS, "approver", name="bob")
        out["twice"] = await ledger.call(second, "Approve", statement(second))
        out["not_approved"] = await ledger.call(
            who(ITOPS, "operator"), "CreateRollout",
            {"rollout_id": "R-1", "patch_id": "P-1", "waves": [{"groups": ["web"]}]},
        )
        out["patch"] = await ledger.ok(who(SECOPS, "auditor"), "GetRecord", "Patch", "P-1")
        return out

    out = scenario(body)
    assert (out["other_org"].status, out["other_org"].message) == (
        403, "AuthorizationError: the statement belongs to ComplianceMSP; caller is from ITOpsMSP"
    )
    assert out["no_role"].status == 403
    assert "approve_patch is not allowed for role 'operator'" in out["no_role"].message
    assert out["digest"].status == 400 and out["digest"].message.startswith("SignatureError:")
    assert "bound to patch 'P-1' artifact abababababab" in out["digest"].message
    assert (out["twice"].status, out["twice"].message) == (
        409, "DuplicateVoteError: SecOpsMSP has already decided on Patch 'P-1'"
    )
    assert (out["not_approved"].status, out["not_approved"].message) == (
        409, "PreconditionError: Patch 'P-1' is TESTED: only APPROVED or RELEASED patches roll out"
    )
    assert out["patch"]["status"] == "TESTED"


def test_report_attacks_are_refused_per_report_and_change_nothing() -> None:
    async def body(ledger: Ledger) -> dict[str, Any]:
        await seed_tested_patch(ledger)
        for org in (SECOPS, COMPLIANCE):
            await ledger.ok(who(org, "approver"), "Approve", statement(who(org, "approver")))
        for h in ("h1", "h2"):
            host = {"host_id": h, "cert_pem": host_identity(ITOPS, h).cert_pem.decode()}
            await ledger.ok(who(ITOPS, "operator"), "EnrollHost", host)
        plan = {"rollout_id": "R-1", "patch_id": "P-1", "waves": [{"hosts": ["h1", "h2"]}]}
        await ledger.ok(who(ITOPS, "operator"), "CreateRollout", plan)
        await ledger.ok(who(ITOPS, "operator"), "AdvanceRollout", "R-1")
        h1 = host_identity(ITOPS, "h1")
        good = report(h1, 1, "APPLIED")
        out = {
            "for_other": await ledger.ok(h1, "ReportDeployments", [report(h1, 1, host_id="h2")]),
            "forged": await ledger.ok(
                who(ITOPS, "operator"), "ReportDeployments", [report(h1, 1, host_id="h2")]
            ),
            "first": await ledger.ok(h1, "ReportDeployments", [good]),
        }
        out["replay"] = await ledger.call(h1, "ReportDeployments", [good])
        out["h2"] = await ledger.ok(who(SECOPS, "auditor"), "GetRecord", "Deployment", "R-1/h2")
        out["empty"] = await ledger.call(h1, "ReportDeployments", [])
        out["sbe_violation"] = await ledger.call(
            who(SECOPS, "operator"), "UpdateInventoryDigest", "h1", INVENTORY
        )
        return out

    out = scenario(body)
    (other,) = out["for_other"]["results"]
    assert other["error_type"] == "AuthorizationError"
    assert other["error"] == "host 'h1' cannot report for host 'h2'"
    (forged,) = out["forged"]["results"]
    assert forged["error_type"] == "SignatureError" and not forged["accepted"]
    assert out["first"]["accepted"] == 1
    replay = out["replay"]
    assert replay.ok and replay.event_name == ""  # the batch commits, the report changes nothing
    (replayed,) = replay.payload["results"]
    assert replayed["error_type"] == "ReplayError"
    assert out["h2"]["status"] == "SCHEDULED"
    assert out["empty"].status == 400 and "must hold 1 to 500 reports" in out["empty"].message
    assert out["sbe_violation"].status == 403
    assert out["sbe_violation"].message == (
        "AuthorizationError: host 'h1' belongs to ITOpsMSP; caller is from SecOpsMSP"
    )


def test_governance_transactions_reach_their_quorum() -> None:
    async def body(ledger: Ledger) -> dict[str, Any]:
        await seed_tested_patch(ledger)
        admin_s, admin_c = who(SECOPS, "admin"), who(COMPLIANCE, "admin")
        proposal = policy_data(soak_seconds=60)
        await ledger.ok(admin_s, "ProposePolicy", "PC-1", proposal)
        adopted = await ledger.ok(admin_c, "ApprovePolicy", "PC-1")
        appr_s, appr_i = who(SECOPS, "approver"), who(ITOPS, "approver")
        await ledger.ok(appr_s, "RevokePatch", "P-1", "bad build")
        revoked = await ledger.ok(appr_i, "RevokePatch", "P-1", "bad build")
        exception = {"exception_id": "E-1", "vuln_id": "CVE-2024-3094",
                     "justification": "air-gapped", "expires_at": NOW + 100}
        await ledger.ok(appr_s, "GrantException", exception)
        granted = await ledger.ok(appr_i, "GrantException", exception)
        expired = await ledger.ok(
            who(ITOPS, "operator"), "ExpireException", "CVE-2024-3094", "E-1", now=NOW + 200
        )
        bad = await ledger.call(appr_s, "GrantException", {**exception, "color": "red"})
        return {"adopted": adopted, "revoked": revoked, "granted": granted,
                "expired": expired, "bad": bad}

    out = scenario(body)
    changes = {(c["record_type"], c["to"]) for c in out["adopted"]["changes"]}
    assert ("PolicyChange", "ADOPTED") in changes and ("Policy", "") in changes
    assert ("Patch", "REVOKED") in {(c["record_type"], c["to"]) for c in out["revoked"]["changes"]}
    granted = {(c["record_type"], c["to"]) for c in out["granted"]["changes"]}
    assert {("RiskAcceptance", "GRANTED"), ("Vulnerability", "RISK_ACCEPTED")} <= granted
    assert ("Vulnerability", "OPEN") in {(c["record_type"], c["to"])
                                         for c in out["expired"]["changes"]}
    assert out["bad"].status == 400
    assert out["bad"].message == (
        "ValidationError: invalid field 'exception.color': is not a known member"
    )


def test_hosts_and_rollout_controls() -> None:
    async def body(ledger: Ledger) -> list[Any]:
        await seed_tested_patch(ledger)
        for org in (SECOPS, COMPLIANCE):
            await ledger.ok(who(org, "approver"), "Approve", statement(who(org, "approver")))
        op = who(ITOPS, "operator")
        await ledger.ok(op, "EnrollHost",
                        {"host_id": "h1", "cert_pem": host_identity(ITOPS, "h1").cert_pem.decode()})
        bad_cert = await ledger.call(
            op, "EnrollHost", {"host_id": "h9", "cert_pem": op.cert_pem.decode()}
        )
        await ledger.ok(host_identity(ITOPS, "h1"), "UpdateInventoryDigest", "h1", "cd" * 32)
        await ledger.ok(op, "CreateRollout",
                        {"rollout_id": "R-1", "patch_id": "P-1", "waves": [{"hosts": ["h1"]}]})
        await ledger.ok(op, "AdvanceRollout", "R-1")
        await ledger.ok(op, "PauseRollout", "R-1")
        paused_advance = await ledger.call(op, "AdvanceRollout", "R-1")
        await ledger.ok(op, "ResumeRollout", "R-1")
        await ledger.ok(op, "HaltRollout", "R-1")
        await ledger.ok(op, "RollBackRollout", "R-1")
        await ledger.ok(op, "DecommissionHost", "h1")
        twice = await ledger.call(op, "DecommissionHost", "h1")
        host = await ledger.ok(op, "GetRecord", "Host", "h1")
        return [bad_cert, paused_advance, twice, host]

    bad_cert, paused_advance, twice, host = scenario(body)
    assert bad_cert.status == 400 and "role=host and host_id=h9" in bad_cert.message
    assert (paused_advance.status, paused_advance.message) == (
        409, "TransitionError: Rollout 'R-1' is PAUSED: cannot move to RUNNING"
    )
    assert (twice.status, twice.message) == (
        409, "TransitionError: Host 'h1' is DECOMMISSIONED: cannot move to DECOMMISSIONED"
    )
    assert host["status"] == "DECOMMISSIONED" and host["inventory_sha256"] == "cd" * 32


def test_concurrent_transactions_each_get_their_own_view() -> None:
    async def body(ledger: Ledger) -> list[Any]:
        await ledger.ok(who(SECOPS, "admin"), "InitLedger", *init_args())
        feeds = [
            ledger.call(who(SECOPS, "feed"), "RecordVulnerability", vuln_data(f"CVE-2025-{i:04d}"))
            for i in range(12)
        ]
        return list(await asyncio.gather(*feeds))

    peer = FakePeer(write_delay=0.001)
    replies = scenario(body, peer)
    assert all(r.ok for r in replies)
    assert peer.overlapping_writes == 0
    assert len({json.dumps(r.event) for r in replies}) == 12


def test_a_report_with_a_lone_surrogate_is_refused_alone_and_the_batch_commits() -> None:
    """JSON "\\ud800" decodes to a lone surrogate, which has no UTF-8 form: that report is
    refused with a ValidationError naming where it is; the rest of the batch is recorded."""

    async def body(ledger: Ledger) -> Any:
        await seed_tested_patch(ledger)
        for org in (SECOPS, COMPLIANCE):
            await ledger.ok(who(org, "approver"), "Approve", statement(who(org, "approver")))
        for h in ("h1", "h2", "h3"):
            host = {"host_id": h, "cert_pem": host_identity(ITOPS, h).cert_pem.decode()}
            await ledger.ok(who(ITOPS, "operator"), "EnrollHost", host)
        plan = {"rollout_id": "R-1", "patch_id": "P-1", "waves": [{"hosts": ["h1", "h2", "h3"]}]}
        await ledger.ok(who(ITOPS, "operator"), "CreateRollout", plan)
        await ledger.ok(who(ITOPS, "operator"), "AdvanceRollout", "R-1")
        in_detail = report(host_identity(ITOPS, "h2"), 1, "APPLIED")
        in_detail["report"]["detail"] = "bad \ud800 detail"
        in_extra = report(host_identity(ITOPS, "h3"), 1, "APPLIED")
        in_extra["report"]["note"] = "\udc80"
        batch = [in_detail, report(host_identity(ITOPS, "h1"), 1, "APPLIED"), in_extra]
        reply = await ledger.call(who(ITOPS, "operator"), "ReportDeployments", batch)
        h1 = await ledger.ok(who(SECOPS, "auditor"), "GetRecord", "Deployment", "R-1/h1")
        return reply, h1

    reply, h1 = scenario(body)
    assert reply.ok, (reply.status, reply.message)
    assert (reply.payload["accepted"], reply.payload["refused"]) == (1, 2)
    detail, good, extra = reply.payload["results"]
    assert good["accepted"] and h1["status"] == "APPLIED"
    assert (detail["error_type"], extra["error_type"]) == ("ValidationError", "ValidationError")
    assert detail["error"].startswith("invalid field 'detail': holds a lone surrogate")
    assert extra["error"].startswith("invalid field 'note': holds a lone surrogate")


def _certificate_with_a_malformed_extension() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mangled")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, b"\x01\x02"),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_an_undecodable_creator_is_a_clear_refusal_not_an_internal_error() -> None:
    creators = {
        "not_serialized": b"\xff",
        "non_ascii": make_creator(ITOPS, b"\xff\xfe-----BEGIN CERTIFICATE-----"),
        "not_pem": make_creator(ITOPS, b"hello"),
        "bad_extension": make_creator(ITOPS, _certificate_with_a_malformed_extension()),
    }

    async def body(ledger: Ledger) -> dict[str, Any]:
        out = {
            name: await ledger.call(creator, "RecordVulnerability", vuln_data())
            for name, creator in creators.items()
        }
        host = {"host_id": "h1", "cert_pem": "-----BEGIN CERTIFICATE-----\né\n"}
        out["non_ascii_host_cert"] = await ledger.call(who(ITOPS, "operator"), "EnrollHost", host)
        return out

    out = scenario(body)
    assert {name: reply.status for name, reply in out.items()} == dict.fromkeys(out, 400)
    assert out["not_serialized"].message == (
        "ValidationError: invalid field 'creator': creator is not a serialized identity"
    )
    assert out["non_ascii"].message == out["not_pem"].message == (
        "ValidationError: invalid field 'creator': is not a PEM X.509 certificate"
    )
    assert out["bad_extension"].message == (
        "ValidationError: invalid field 'certificate.extensions': cannot be parsed"
    )
    assert out["non_ascii_host_cert"].message == (
        "ValidationError: invalid field 'cert_pem': is not a PEM X.509 certificate (non-ASCII"
        " text)"
    )


def test_enroll_hosts_enrolls_a_batch_in_one_transaction_all_or_nothing() -> None:
    def cert(h: str) -> str:
        return host_identity(ITOPS, h).cert_pem.decode()

    async def body(ledger: Ledger) -> list[Any]:
        op = who(ITOPS, "operator")
        ok = await ledger.ok(op, "EnrollHosts", [
            {"host_id": "b1", "cert_pem": cert("b1"), "groups": ["web"]},
            {"host_id": "b2", "cert_pem": cert("b2"), "maintenance_window": "always"}])
        b1 = await ledger.ok(op, "GetRecord", "Host", "b1")
        b2 = await ledger.ok(op, "GetRecord", "Host", "b2")
        # one bad certificate (an operator's, not a host's) refuses the whole batch
        mixed = await ledger.call(op, "EnrollHosts", [
            {"host_id": "b3", "cert_pem": cert("b3")},
            {"host_id": "b9", "cert_pem": op.cert_pem.decode()}])
        b3 = await ledger.call(op, "GetRecord", "Host", "b3")
        twice = await ledger.call(op, "EnrollHosts", [{"host_id": "b1", "cert_pem": cert("b1")}])
        empty = await ledger.call(op, "EnrollHosts", [])
        unknown = await ledger.call(op, "EnrollHosts", [{"host_id": "b4", "cert": "x"}])
        other = await ledger.call(who(SECOPS, "operator"), "EnrollHosts",
                                  [{"host_id": "b5", "cert_pem": cert("b5")}])
        return [ok, b1, b2, mixed, b3, twice, empty, unknown, other]

    ok, b1, b2, mixed, b3, twice, empty, unknown, other = scenario(body)
    assert len(ok["changes"]) == 2
    assert (b1["groups"], b1["owner_msp"]) == (["web"], ITOPS)
    assert b2["maintenance_window"] == "always"
    assert mixed.status == 400 and "host_id=b9" in mixed.message
    assert b3.status == 404  # nothing of the refused batch was written
    assert twice.status == 409
    assert empty.status == 400 and "list of 1 to 200" in empty.message
    assert unknown.status == 400 and "hosts[0]" in unknown.message
    assert other.status >= 400  # SecOps' operator cannot enroll ITOps-issued hosts
