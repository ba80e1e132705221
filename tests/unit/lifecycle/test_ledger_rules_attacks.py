"""Attacks on the ledger rules and governance (issue 11, section 2), each performed against the
lifecycle core: reports and completions for a revoked patch, revocation during a rollout,
quorum floors of the shipped policy, exceptions beyond their lifetime or for unknown hosts,
huge sequence numbers, stale or future reports, reports under an expired host certificate, and
a first policy set by one organization (bootstrap without the others' signed consent)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.chaincode.lifecycle import (
    AlreadyExistsError,
    AuthorizationError,
    ExpiredError,
    Key,
    LifecycleError,
    MemoryStore,
    PreconditionError,
    SignatureError,
    TransitionError,
    TxLedger,
    ValidationError,
)
from patchledger.chaincode.lifecycle.consent import (
    PolicyConsent,
    SignedConsent,
    initial_policy,
    policy_digest,
)
from patchledger.chaincode.lifecycle.host_report import MAX_REPORT_AGE, MAX_SEQUENCE
from patchledger.chaincode.lifecycle.identity import caller_from_certificate
from patchledger.chaincode.lifecycle.ops import (
    deployments,
    governance,
    hosts,
    policies,
    rollouts,
)
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.policy import Policy, check_new_policy
from patchledger.chaincode.lifecycle.queries import get_record
from patchledger.chaincode.lifecycle.signatures import sign
from patchledger.chaincode.lifecycle.trust import OrgTrust
from tests.unit.lifecycle.lifecycle_support import (
    CHANNEL,
    COMPLIANCE,
    DAY,
    ITOPS,
    NOW,
    ORGS,
    SECOPS,
    START,
    TRUST,
    Identity,
    approved_store,
    consents,
    host_identity,
    identity,
    make_certificate,
    new_ca,
    org_ca,
    policy_data,
    report,
    run,
    who,
)

CONSORTIUM_POLICY = Path(__file__).parents[3] / "network" / "consortium-policy.json"
OP = who(ITOPS, "operator")
H1, H2 = host_identity(ITOPS, "h1"), host_identity(ITOPS, "h2")


def running_store() -> MemoryStore:
    """P-1 approved, rollout R-1 over h1 (wave 0) and h2 (wave 1), wave 0 started."""
    store = approved_store(("h1", "h2"))
    run(store, OP, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}, {"hosts": ["h2"]}])
    run(store, OP, rollouts.advance_rollout, "R-1")
    return store


def force_patch_status(store: MemoryStore, status: str) -> None:
    """Write the patch's status behind the core's back (a ledger written by an older or
    faulty chaincode version), to attack the rules that must hold anyway."""
    key = Key("Patch", ("P-1",))
    store.data[key] = Patch.from_json(store.data[key]).evolve(status=status).to_json()


def test_a_revocation_halts_running_rollouts_and_orders_them_to_roll_back() -> None:
    store = running_store()
    run(store, H1, deployments.report_deployments, [report(H1, 1, "APPLIED")])
    run(store, who(SECOPS, "approver"), governance.revoke_patch, "P-1", "backdoored")
    changes = run(store, who(COMPLIANCE, "approver"), governance.revoke_patch, "P-1", "agree")
    moves = [(c.record_type, c.from_state, c.to_state, c.reason) for c in changes]
    assert moves == [
        ("Patch", "RELEASED", "REVOKED", ""),
        ("Rollout", "RUNNING", "HALTED", "patch P-1 revoked"),
        ("Rollout", "HALTED", "ROLLED_BACK", "patch P-1 revoked"),
        ("Revocation", "PROPOSED", "EFFECTIVE", ""),
    ]
    assert changes[1].to_dict()["reason"] == "patch P-1 revoked"
    assert store.owners[Key("Rollout", ("R-1",))] == ITOPS
    assert get_record(store, "Rollout", "R-1").state == "ROLLED_BACK"
    # the host that applied it can still report its rollback; nobody can report success
    batch = run(store, H1, deployments.report_deployments,
                [report(H1, 2, "VERIFIED"), report(H1, 3, "ROLLED_BACK")])
    assert [(r.accepted, r.error_type) for r in batch.results] == [
        (False, "PreconditionError"), (True, ""),
    ]
    with pytest.raises(TransitionError, match="ROLLED_BACK: cannot move to RUNNING"):
        run(store, OP, rollouts.advance_rollout, "R-1")


def test_a_verified_report_for_a_revoked_patch_is_refused_even_if_its_rollout_runs() -> None:
    store = running_store()
    force_patch_status(store, "REVOKED")
    batch = run(store, H1, deployments.report_deployments,
                [report(H1, 1, "APPLIED"), report(H1, 2, "VERIFIED"), report(H1, 3, "ROLLED_BACK")])
    assert [r.accepted for r in batch.results] == [True, False, True]
    assert batch.results[1].error == (
        "Patch 'P-1' is REVOKED: refuses VERIFIED reports (roll back)"
    )
    assert get_record(store, "Deployment", "R-1", "h1").state == "ROLLED_BACK"


def test_complete_rollout_refuses_a_revoked_patch() -> None:
    store = approved_store(("h1",))
    run(store, OP, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}])
    run(store, OP, rollouts.advance_rollout, "R-1")
    run(store, H1, deployments.report_deployments, [report(H1, 1, "VERIFIED")])
    force_patch_status(store, "REVOKED")
    with pytest.raises(PreconditionError, match="is REVOKED: rollout 'R-1' cannot complete"):
        run(store, OP, rollouts.complete_rollout, "R-1")
    assert get_record(store, "Rollout", "R-1").state == "RUNNING"


def test_the_shipped_consortium_policy_has_no_quorum_of_one() -> None:
    data = json.loads(CONSORTIUM_POLICY.read_text())
    quorums = [*data["quorum"].values(), data["change_quorum"], data["revocation_quorum"],
               data["exception_quorum"]]
    assert min(quorums) >= 2
    shipped = Policy.from_dict({**data, "policy_id": "default", "version": 1})
    check_new_policy(shipped, ("SecOpsMSP", "ITOpsMSP", "ComplianceMSP"))


def test_an_exception_beyond_the_policys_lifetime_or_for_unknown_hosts_is_refused() -> None:
    store = approved_store(("h1",))
    approver = who(SECOPS, "approver")
    vid = "CVE-2024-3094"
    with pytest.raises(ValidationError, match="longer than the policy's max_exception_lifetime"):
        run(store, approver, governance.grant_exception, "E-1", vid, justification="j",
            expires_at=NOW + 91 * DAY)
    with pytest.raises(ValidationError, match=r"'host_ids\[1\]': ghost is not an enrolled host"):
        run(store, approver, governance.grant_exception, "E-1", vid, justification="j",
            expires_at=NOW + DAY, host_ids=["h1", "ghost"])
    run(store, OP, hosts.decommission_host, "h1")
    with pytest.raises(ValidationError, match="h1 is not an enrolled host"):
        run(store, approver, governance.grant_exception, "E-1", vid, justification="j",
            expires_at=NOW + DAY, host_ids=["h1"])
    run(store, approver, governance.grant_exception, "E-1", vid, justification="j",
        expires_at=NOW + 90 * DAY)


@pytest.mark.parametrize("sequence", [MAX_SEQUENCE + 1, 10**4299])
def test_a_huge_sequence_number_is_refused_alone(sequence: int) -> None:
    store = running_store()
    huge = report(H1, 1, "APPLIED")
    huge["report"]["sequence"] = sequence  # as a relay would pass it on
    batch = run(store, H1, deployments.report_deployments, [huge, report(H1, 1, "APPLIED")])
    assert [r.accepted for r in batch.results] == [False, True]
    assert batch.results[0].error == (
        f"invalid field 'sequence': must be between 1 and {MAX_SEQUENCE}"
    )
    run(store, H1, deployments.report_deployments, [report(H1, MAX_SEQUENCE, "VERIFIED")])


def test_reports_dated_outside_the_window_are_refused() -> None:
    store = running_store()
    batch = run(store, H1, deployments.report_deployments, [
        report(H1, 1, "APPLIED", reported_at=NOW - MAX_REPORT_AGE - 1),  # held back
        report(H1, 2, "APPLIED", reported_at=NOW + 3600),  # from the future
        report(H1, 3, "APPLIED", reported_at=NOW - MAX_REPORT_AGE),
    ])
    assert [(r.accepted, r.error_type) for r in batch.results] == [
        (False, "ExpiredError"), (False, "ExpiredError"), (True, ""),
    ]
    assert "before transaction time" in batch.results[0].error


def test_a_report_under_an_expired_host_certificate_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = make_certificate(key, "h7", {"role": "host", "host_id": "h7"}, issuer=org_ca(ITOPS),
                           not_before=START, not_after=START + dt.timedelta(days=200))
    host = Identity(key, pem, caller_from_certificate(ITOPS, pem))
    store = approved_store(())
    run(store, OP, hosts.enroll_host, "h7", pem.decode(), trust=TRUST,
        now=int(START.timestamp()) + DAY)
    run(store, OP, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h7"]}])
    run(store, OP, rollouts.advance_rollout, "R-1")
    tx = TxLedger(store, host.caller, NOW)  # NOW is after the certificate's end
    batch = deployments.report_deployments(tx, [report(host, 1, "APPLIED")])
    assert batch.results[0].error_type == "ExpiredError"
    assert "host certificate is not valid at transaction time" in batch.results[0].error


ALONE = policy_data(organizations=[ITOPS], change_quorum=1, revocation_quorum=1,
                    exception_quorum=1, quorum=dict.fromkeys(("critical", "high", "medium",
                                                              "low"), 1))


def _bootstrap(store: MemoryStore, data: dict[str, Any], given: list[dict[str, Any]],
               by: Identity | None = None) -> None:
    """InitLedger's core call as ``by`` (ITOps' admin) with the given consents; a refusal
    must leave the store untouched."""
    before = dict(store.data)
    try:
        run(store, by or who(ITOPS, "admin"), policies.bootstrap_policy, data, given,
            channel_id=CHANNEL, channel_orgs=ORGS, trust=TRUST)
    except LifecycleError:
        assert store.data == before, "a refused bootstrap changed the ledger"
        raise


def _consent(signer: Identity, msp: str, data: dict[str, Any], **body: Any) -> dict[str, Any]:
    """A consent of ``msp`` signed by ``signer`` whose body fields are overridable."""
    fields: dict[str, Any] = {
        "policy_id": "default", "policy_sha256": policy_digest(initial_policy(data)),
        "channel_id": CHANNEL, "msp_id": msp, "admin": signer.caller.name,
        "expires_at": NOW + DAY, **body,
    }
    consent = PolicyConsent(**fields)
    signature = SignedConsent.create(consent, sign(signer.key, consent.to_json())).signature
    return SignedConsent(consent, signature, signer.cert_pem.decode()).to_dict()


def test_one_organization_alone_cannot_initialise_the_ledger() -> None:
    """Before: ITOps' admin called InitLedger first with a policy naming only ITOps, quorums
    of 1. Now that policy is refused, and even the full policy needs a second organization's
    signed consent."""
    store = MemoryStore()
    with pytest.raises(ValidationError, match="must name at least 2 of the channel's 3"):
        _bootstrap(store, ALONE, consents(ALONE, (ITOPS,)))
    with pytest.raises(ValidationError, match=r"'consents': the first policy needs the signed "
                       r"consent of 2 of the channel's 3 organizations' admins; given 1 "
                       r"\(ITOpsMSP\)"):
        _bootstrap(store, policy_data(), consents(policy_data(), (ITOPS,)))
    with pytest.raises(ValidationError, match=r"given 0 \(none\)"):
        _bootstrap(store, policy_data(), [])
    with pytest.raises(ValidationError, match="'consents': must be a list"):
        _bootstrap(store, policy_data(), {"consent": "x"})  # type: ignore[arg-type]
    assert store.data == {}


def test_one_organization_consenting_twice_counts_once_and_is_refused() -> None:
    """Two consents of ITOps, from its admin twice or from a second ITOps admin, are not
    two organizations."""
    data = policy_data()
    twice = consents(data, (ITOPS, ITOPS))
    other_admin = identity(ITOPS, "admin", "admin2-ITOpsMSP")
    also = [*consents(data, (ITOPS,)), _consent(other_admin, ITOPS, data)]
    for given in (twice, also):
        with pytest.raises(ValidationError, match=r"'consents\[1\]\.consent\.msp_id': a second "
                           "consent of ITOpsMSP"):
            _bootstrap(MemoryStore(), data, given)


def test_consents_to_another_policy_or_channel_or_expired_are_refused() -> None:
    """A consent given for another policy (SecOps agreed to quorums of 3) does not carry
    over to the policy submitted, nor one given on another channel or expired."""
    data = policy_data()
    stronger = policy_data(change_quorum=3)
    other = [*consents(data, (ITOPS,)), *consents(stronger, (SECOPS,))]
    with pytest.raises(SignatureError, match=r"consent of admin 'admin-SecOpsMSP' \(SecOpsMSP\):"
                       " given for policy 'default' digest"):
        _bootstrap(MemoryStore(), data, other)
    elsewhere = [*consents(data, (ITOPS,)), *consents(data, (SECOPS,), channel="other")]
    with pytest.raises(SignatureError, match="given for channel 'other', not 'testchannel'"):
        _bootstrap(MemoryStore(), data, elsewhere)
    old = consents(data, (ITOPS, SECOPS), expires_at=NOW)
    with pytest.raises(ExpiredError, match="expired at"):
        _bootstrap(MemoryStore(), data, old)
    far = consents(data, (ITOPS, SECOPS), expires_at=NOW + 30 * DAY)
    with pytest.raises(ExpiredError, match="valid for longer than"):
        _bootstrap(MemoryStore(), data, far)


def test_forged_consents_are_refused() -> None:
    """ITOps' admin cannot speak for SecOps: a consent naming SecOps' admin certificate but
    signed with ITOps' key, an altered consent, one naming another enrollment id, or one
    naming an organization outside the channel."""
    data = policy_data()
    mine = consents(data, (ITOPS,))
    itops_admin, secops_admin = who(ITOPS, "admin"), who(SECOPS, "admin")
    forged = _consent(itops_admin, SECOPS, data, admin=secops_admin.caller.name)
    forged["certificate"] = secops_admin.cert_pem.decode()
    with pytest.raises(SignatureError, match=r"consent of admin 'admin-SecOpsMSP' \(SecOpsMSP\)"):
        _bootstrap(MemoryStore(), data, [*mine, forged])
    altered = consents(data, (SECOPS,))[0]
    altered["consent"]["expires_at"] += 1
    with pytest.raises(SignatureError, match="admin-SecOpsMSP"):
        _bootstrap(MemoryStore(), data, [*mine, altered])
    renamed = _consent(secops_admin, SECOPS, data, admin="someone-else")
    with pytest.raises(ValidationError, match=r"'consents\[1\]\.consent\.admin'.*not the admin's"):
        _bootstrap(MemoryStore(), data, [*mine, renamed])
    stranger = _consent(secops_admin, "EvilMSP", data)
    with pytest.raises(ValidationError, match="EvilMSP is not an organization of the channel"):
        _bootstrap(MemoryStore(), data, [*mine, stranger])
    with pytest.raises(ValidationError, match=r"'consents\[1\]\.certificate'"):
        _bootstrap(MemoryStore(), data, [*mine, {**consents(data, (SECOPS,))[0],
                                                 "certificate": "not a certificate"}])


def test_a_non_admin_consent_is_refused() -> None:
    """SecOps' approver (or operator) is not the organization's admin: its consent does not
    count, even when correctly signed and issued by SecOps' CA."""
    data = policy_data()
    for role in ("approver", "operator"):
        signer = who(SECOPS, role)
        with pytest.raises(AuthorizationError, match=f"role '{role}'; only an organization's "
                           "admin"):
            _bootstrap(MemoryStore(), data,
                       [*consents(data, (ITOPS,)), _consent(signer, SECOPS, data)])


def test_a_consent_from_a_certificate_of_a_foreign_root_is_refused() -> None:
    """ITOps' admin mints a role=admin certificate 'for SecOps' from its own CA, or from a
    CA of its own making: no root of SecOps issued it, so it is refused."""
    data = policy_data()
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = {"hf.EnrollmentID": "admin-SecOpsMSP", "role": "admin"}
    for issuer in (org_ca(ITOPS), new_ca("ca.SecOpsMSP")):
        pem = make_certificate(key, "admin-SecOpsMSP", attrs, issuer=issuer)
        minted = Identity(key, pem, caller_from_certificate(SECOPS, pem))
        with pytest.raises(SignatureError, match="not issued by a valid root certificate of "
                           "SecOpsMSP"):
            _bootstrap(MemoryStore(), data,
                       [*consents(data, (ITOPS,)), _consent(minted, SECOPS, data)])
    untrusted = OrgTrust({ITOPS: (org_ca(ITOPS).cert,)})
    with pytest.raises(SignatureError, match="no root certificate of SecOpsMSP is configured"):
        run(MemoryStore(), who(ITOPS, "admin"), policies.bootstrap_policy, data,
            consents(data, (ITOPS, SECOPS)), channel_id=CHANNEL, channel_orgs=ORGS,
            trust=untrusted)


def test_initialization_happens_once_and_only_for_the_default_policy() -> None:
    """Any one admin could call InitLedger again with another policy_id (a second policy
    naming only itself); now the ledger is initialized once, by consent, for ``default``."""
    store = MemoryStore()
    data = policy_data()
    _bootstrap(store, data, consents(data, (ITOPS, COMPLIANCE)))
    assert get_record(store, "Policy", "default").to_dict()["version"] == 1
    mine = policy_data(policy_id="mine")
    with pytest.raises(ValidationError, match="'policy_id': the ledger is initialized with"):
        _bootstrap(store, mine, consents(data))
    with pytest.raises(AlreadyExistsError, match="Policy 'default' already exists"):
        _bootstrap(store, data, consents(data))
    again = policy_data(change_quorum=3)
    with pytest.raises(AlreadyExistsError, match="Policy 'default' already exists"):
        _bootstrap(store, again, consents(again, ORGS), by=who(SECOPS, "admin"))
    with pytest.raises(AuthorizationError):
        _bootstrap(MemoryStore(), data, consents(data), by=who(SECOPS, "approver"))
    assert [k.parts for k in store.data if k.record_type == "Policy"] == [("default",)]


def test_a_ledger_holding_a_policy_written_before_the_floors_keeps_working() -> None:
    """The floors apply when a policy is written: a stored quorum-1 policy (written by an
    older version) is still read, so the consortium can adopt a compliant one, which the
    floors then protect."""
    store = approved_store(())
    old = Policy.from_dict({**policy_data(change_quorum=2), "policy_id": "default", "version": 1,
                            "quorum": {"critical": 2, "high": 2, "medium": 2, "low": 1}})
    store.data[Key("Policy", ("default",))] = old.to_json()
    run(store, who(SECOPS, "admin"), policies.propose_policy, "C-1", policy_data())
    run(store, who(ITOPS, "admin"), policies.approve_policy, "C-1")
    adopted = get_record(store, "Policy", "default").to_dict()
    assert (adopted["version"], adopted["quorum"]["low"]) == (2, 2)
