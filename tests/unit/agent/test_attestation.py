"""Section 1 of issue 11, attack by attack: a compromised ITOps app server (it holds only its
own organization's identities, its peer's key included) serves the agent forged or altered
attestations; each is refused, and the honest attestation is accepted.

The ledger is the lifecycle core over a MemoryStore; the attestation is the core's
``attest_deployment`` answer, endorsed exactly as Fabric peers endorse (attestation_support).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from patchledger.agent.attestation import (
    Question,
    verify_channel_roots,
    verify_deployment,
    verify_endorsed,
)
from patchledger.agent.config import AgentConfig
from patchledger.agent.errors import (
    AttestationBindingError,
    AttestationFormatError,
    DeploymentStateError,
    EndorsementError,
    EndorsementQuorumError,
    PatchNotDeployableError,
    PatchRejectedError,
    QuorumNotMetError,
    RollbackRefusedError,
)
from patchledger.agent.health import HealthResult
from patchledger.agent.rollback_guard import RollbackGuard
from patchledger.agent.runner import Assignment, Outcome, run_assignment
from patchledger.agent.verify import ArtifactFacts
from patchledger.chaincode.lifecycle.attestation import attest_channel_roots, roots_fingerprint
from patchledger.chaincode.lifecycle.canonical import canonical_json
from patchledger.chaincode.lifecycle.ledger import MemoryStore
from patchledger.chaincode.lifecycle.ops import governance, identities, rollouts
from patchledger.chaincode.lifecycle.trust import OrgTrust
from tests.unit.agent.agent_support import make_tar, sha256
from tests.unit.agent.attestation_support import (
    ALL_PEERS,
    CHAINCODE,
    CHANNEL,
    HOST,
    NONCE,
    App,
    answer_of,
    b64,
    bundle,
    endorsement,
    ledger,
    node_identity,
    peer,
    proposal,
    response_payload,
    signed_rejection,
)
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    ITOPS,
    NOW,
    ORGS,
    SECOPS,
    TRUST,
    new_ca,
    run,
    who,
)

ARTIFACT = make_tar({"VERSION": b"5.4.5\n"})
FACTS = ArtifactFacts(sha256(ARTIFACT), len(ARTIFACT))
OWN = peer(ITOPS)  # the compromised app's own organization's peer


def check(b: dict[str, Any], *, nonce: str = NONCE, host_id: str = "h1",
          rollout_id: str = "R-1", patch_id: str = "P-1", roots: OrgTrust = TRUST) -> Any:
    return verify_deployment(b, channel=CHANNEL, chaincode=CHAINCODE, host_id=host_id,
                             rollout_id=rollout_id, patch_id=patch_id, nonce=nonce,
                             artifact=FACTS, roots=roots, now=NOW, min_quorum=2)


def honest(store: MemoryStore, nonce: str = NONCE) -> dict[str, Any]:
    return App(store)("h1", "R-1", nonce)


def forged(store: MemoryStore, change: Any, endorsers: Any = (OWN,)) -> dict[str, Any]:
    """The app alters the honest answer and has it signed by ``endorsers`` (by default only
    the peer whose key it holds)."""
    def tamper(answer: dict[str, Any]) -> dict[str, Any]:
        altered = copy.deepcopy(answer)
        change(altered)
        return altered

    return App(store, endorsers=endorsers, tamper=tamper)("h1", "R-1", NONCE)


def with_honest_signatures(store: MemoryStore, change: Any) -> dict[str, Any]:
    """The app alters the answer but keeps the other organizations' genuine endorsements (of
    the honest answer) next to its own peer's endorsement of the altered one."""
    genuine = honest(store)
    altered = forged(store, change)
    altered["endorsements"] = [*altered["endorsements"], *genuine["endorsements"][:1],
                               *genuine["endorsements"][2:]]
    return altered


def revoke(store: MemoryStore, patch_id: str = "P-1") -> None:
    for org in (SECOPS, COMPLIANCE):
        run(store, who(org, "approver"), governance.revoke_patch, patch_id, "backdoored build")


# ---------------------------------------------------------------------------- the honest path


def test_an_honest_attestation_verifies() -> None:
    attested = check(honest(ledger(ARTIFACT)))
    assert attested.endorsing == tuple(sorted(ORGS))
    assert attested.verdict.approving == (COMPLIANCE, SECOPS)
    assert attested.state["patch"]["status"] == "RELEASED"
    assert attested.state["quorum"] == 2


def test_two_organizations_peers_are_enough_for_a_quorum_of_two() -> None:
    store = ledger(ARTIFACT)
    b = App(store, endorsers=[peer(SECOPS), OWN])("h1", "R-1", NONCE)
    assert check(b).endorsing == (ITOPS, SECOPS)


# ---------------------------------------------------------------------------- REVOKED as RELEASED


def test_a_revoked_patch_is_refused_from_an_honest_attestation() -> None:
    store = ledger(ARTIFACT)
    revoke(store)
    with pytest.raises(PatchNotDeployableError, match="REVOKED"):
        check(honest(store))


def test_revoked_served_as_released_by_the_apps_own_peer_is_refused() -> None:
    store = ledger(ARTIFACT)
    revoke(store)

    def released(a: dict[str, Any]) -> None:
        a["patch"]["status"] = "RELEASED"

    with pytest.raises(EndorsementQuorumError, match=r"1 distinct organization\(s\) \(ITOpsMSP\)"):
        check(forged(store, released))


def test_revoked_served_as_released_next_to_genuine_endorsements_is_refused() -> None:
    store = ledger(ARTIFACT)
    revoke(store)
    with pytest.raises(EndorsementError, match="signature over the response does not verify"):
        check(with_honest_signatures(store, lambda a: a["patch"].update(status="RELEASED")))


# ---------------------------------------------------------------------------- severity, quorum


def test_a_lower_severity_and_quorum_served_is_refused() -> None:
    store = ledger(ARTIFACT)

    def low(a: dict[str, Any]) -> None:
        a["patch"]["severity"] = "low"
        a["quorum"] = 1
        a["policy"]["quorum"]["low"] = 1
        a["approvals"] = a["approvals"][:1]

    # quorum 1 claimed, but the agent's floor is 2 distinct organizations' peers
    with pytest.raises(EndorsementQuorumError, match="2 needed"):
        check(forged(store, low))


def test_a_quorum_that_is_not_the_policys_is_refused() -> None:
    store = ledger(ARTIFACT)
    b = forged(store, lambda a: a.update(quorum=1), endorsers=ALL_PEERS)  # even if all signed
    with pytest.raises(Exception, match="not the policy's"):
        check(b)


def test_a_policy_needing_three_organizations_needs_three_organizations_peers() -> None:
    store = ledger(ARTIFACT)

    def three(a: dict[str, Any]) -> None:  # what the ledger would say under such a policy
        a["policy"]["quorum"]["critical"] = 3
        a["quorum"] = 3

    with pytest.raises(EndorsementQuorumError, match="3 needed"):
        check(forged(store, three, endorsers=[OWN, peer(SECOPS)]))


# ---------------------------------------------------------------------------- rejection left out


def test_a_rejection_left_out_is_detected() -> None:
    store = ledger(ARTIFACT)
    digest = sha256(ARTIFACT)
    # What the ledger holds: a third organization rejected (stored next to the approvals).
    real = App(store, tamper=lambda a: {**a, "approvals": [*a["approvals"],
                                                          signed_rejection("P-1", digest)]})
    with pytest.raises(PatchRejectedError):
        check(real("h1", "R-1", NONCE))
    # The app leaves the rejection out: only its own peer signs that answer.
    without = App(store, endorsers=[OWN])("h1", "R-1", NONCE)
    with pytest.raises(EndorsementQuorumError):
        check(without)


# ---------------------------------------------------------------------------- endorsers


def test_one_organizations_peer_endorsing_twice_counts_once() -> None:
    store = ledger(ARTIFACT)
    twice = App(store, endorsers=[OWN, OWN, peer(ITOPS, 1)])("h1", "R-1", NONCE)
    with pytest.raises(EndorsementQuorumError, match="not counted: endorsement 1: a second one"):
        check(twice)


def test_a_non_peer_identity_cannot_endorse() -> None:
    store = ledger(ARTIFACT)
    admin = node_identity(SECOPS, "secops-admin", ou="admin")
    client = node_identity(COMPLIANCE, "compliance-client", ou="client")
    for impostor in (admin, client):
        b = App(store, endorsers=[OWN, impostor])("h1", "R-1", NONCE)
        with pytest.raises(EndorsementError, match="is not a peer"):
            check(b)


def test_an_endorser_not_chaining_to_the_pinned_roots_is_refused() -> None:
    store = ledger(ARTIFACT)
    rogue = node_identity(SECOPS, "peer0.secopsmsp", issuer=new_ca("ca.SecOpsMSP"))
    b = App(store, endorsers=[OWN, rogue])("h1", "R-1", NONCE)
    with pytest.raises(EndorsementError, match="does not chain to a pinned root of SecOpsMSP"):
        check(b)
    # a genuine peer of ITOps presenting itself as SecOps' peer
    disguised = replace(peer(ITOPS, 2), msp_id=SECOPS)
    b = App(store, endorsers=[OWN, disguised])("h1", "R-1", NONCE)
    with pytest.raises(EndorsementError, match=r"issued by ITOpsMSP's root"):
        check(b)


def test_an_expired_endorser_certificate_is_refused() -> None:
    store = ledger(ARTIFACT)
    old = node_identity(SECOPS, "peer9.secopsmsp", not_after_days=30)
    with pytest.raises(EndorsementError, match="not valid now"):
        check(App(store, endorsers=[OWN, old])("h1", "R-1", NONCE))


# ---------------------------------------------------------------------------- binding, freshness


def test_a_replayed_attestation_with_an_old_nonce_is_refused() -> None:
    store = ledger(ARTIFACT)
    old = honest(store, nonce="b" * 64)  # endorsed yesterday, genuine, for another nonce
    with pytest.raises(AttestationBindingError, match="replay"):
        check(old)


def test_an_attestation_for_another_host_or_rollout_is_refused() -> None:
    store = ledger(ARTIFACT, waves=[{"hosts": ["h1"]}])
    b = honest(store)
    with pytest.raises(AttestationBindingError, match="another function, host, rollout"):
        check(b, host_id="h2")
    with pytest.raises(AttestationBindingError):
        check(b, rollout_id="R-2")


def test_a_response_to_another_proposal_is_refused() -> None:
    store = ledger(ARTIFACT)
    genuine = honest(store)
    other = honest(store, nonce="c" * 64)
    # our proposal (our nonce) with the response and endorsements of another proposal
    spliced = {**other, "proposal": genuine["proposal"]}
    with pytest.raises(AttestationBindingError, match="proposal hash does not match"):
        check(spliced)


def test_a_response_with_writes_or_a_refusal_is_refused() -> None:
    store = ledger(ARTIFACT)
    prop = proposal("AttestDeployment", ["h1", "R-1", NONCE])
    answer = canonical_json(answer_of(honest(store)))
    writes = bundle(prop, response_payload(prop, answer, writes=True), ALL_PEERS)
    with pytest.raises(AttestationBindingError, match="not a read-only query"):
        check(writes)
    refused = bundle(prop, response_payload(prop, b"", status=404), ALL_PEERS)
    with pytest.raises(AttestationBindingError, match="chaincode refused: 404"):
        check(refused)


def test_another_channel_or_chaincode_is_refused() -> None:
    store = ledger(ARTIFACT)
    answer = canonical_json(answer_of(honest(store)))
    for channel, chaincode in (("other", CHAINCODE), (CHANNEL, "testkit")):
        prop = proposal("AttestDeployment", ["h1", "R-1", NONCE], channel=channel,
                        chaincode=chaincode)
        b = bundle(prop, response_payload(prop, answer, chaincode=chaincode), ALL_PEERS)
        with pytest.raises(AttestationBindingError, match=r"channel 'other'|chaincode 'testkit'"):
            check(b)


@pytest.mark.parametrize("broken", [
    {}, {"kind": "x"}, {"kind": "patchledger/endorsed-proposal/1"},
    {"kind": "patchledger/endorsed-proposal/1", "proposal": "!!", "response_payload": "AA=="},
    {"kind": "patchledger/endorsed-proposal/1", "proposal": b64(b"\xff\xff"),
     "response_payload": b64(b"\xff")},
])
def test_malformed_bundles_are_refused_clearly(broken: dict[str, Any]) -> None:
    with pytest.raises(AttestationFormatError):
        check(broken)


def test_malformed_endorsements_are_refused() -> None:
    store = ledger(ARTIFACT)
    b = honest(store)
    for bad in ("not an object", {"endorser": "AA==", "signature": "AA=="}):
        with pytest.raises((AttestationFormatError, EndorsementError)):
            check({**b, "endorsements": [bad]})


# ---------------------------------------------------------------------------- the deployment


def test_a_rollout_that_does_not_exist_cannot_be_attested() -> None:
    store = ledger(ARTIFACT)
    # The honest chaincode refuses (NotFoundError, test_attestation in tests/unit/lifecycle);
    # the app fabricates an answer for R-404: only its own peer signs it.
    prop = proposal("AttestDeployment", ["h1", "R-404", NONCE])
    answer = {**answer_of(honest(store)), "rollout_id": "R-404"}
    b = bundle(prop, response_payload(prop, canonical_json(answer)), [OWN])
    with pytest.raises(EndorsementQuorumError):
        check(b, rollout_id="R-404")


def test_a_host_not_in_the_current_wave_is_refused() -> None:
    # wave 0 is h0 (the canary); h1 waits for wave 1: the ledger attests that
    store = ledger(ARTIFACT, waves=[{"hosts": ["h0"]}, {"hosts": ["h1"]}], store=_with_h0())
    b = App(store)("h1", "R-1", NONCE)
    assert answer_of(b)["deployment"] is None
    with pytest.raises(DeploymentStateError, match=r"not in the current wave \(0\)"):
        check(b)


def _with_h0() -> MemoryStore:
    from patchledger.chaincode.lifecycle.ops import hosts as host_ops
    from patchledger.chaincode.lifecycle.ops import vulnerabilities
    from tests.unit.lifecycle.lifecycle_support import bootstrap, host_identity, vuln_data

    store = MemoryStore()
    bootstrap(store)
    run(store, who(SECOPS, "feed"), vulnerabilities.record_vulnerability, vuln_data())
    for h in ("h0", "h1"):
        run(store, who(ITOPS, "admin"), host_ops.enroll_host, h,
            host_identity(ITOPS, h).cert_pem.decode(), trust=TRUST)
    return store


def test_a_paused_or_halted_rollout_is_refused() -> None:
    store = ledger(ARTIFACT)
    run(store, who(ITOPS, "operator"), rollouts.pause_rollout, "R-1")
    with pytest.raises(DeploymentStateError, match="PAUSED on the ledger, not RUNNING"):
        check(honest(store))
    run(store, who(ITOPS, "operator"), rollouts.halt_rollout, "R-1")
    with pytest.raises(DeploymentStateError, match="HALTED"):
        check(honest(store))


def test_an_assignment_for_another_patch_than_the_rollouts_is_refused() -> None:
    store = ledger(ARTIFACT)
    with pytest.raises(Exception, match="P-2"):
        check(honest(store), patch_id="P-2")


# ---------------------------------------------------------------------------- anti-rollback


def test_the_guard_refuses_superseded_and_replaced_patches(tmp_path: Path) -> None:
    guard = RollbackGuard(tmp_path / "installed.json")
    guard.check("P-1", ["pkg:x"])  # nothing installed yet
    guard.record("P-2", ["pkg:x"], ["P-1", "P-0"], rollout_id="R-2", now=NOW)
    for old in ("P-1", "P-0"):
        with pytest.raises(RollbackRefusedError, match=f"'{old}'.*installed: pkg:x: P-2"):
            guard.check(old, ["pkg:x"])
    guard.check("P-2", ["pkg:x"])  # re-applying the installed patch is fine
    guard.record("P-3", ["pkg:x"], [], rollout_id="R-3", now=NOW)  # replaces P-2
    with pytest.raises(RollbackRefusedError):
        guard.check("P-2", ["pkg:x"])
    state = RollbackGuard(tmp_path / "installed.json").load()  # durable
    assert state.targets["pkg:x"]["patch_id"] == "P-3"
    assert state.retired == {"P-0", "P-1", "P-2"}


def test_a_corrupt_guard_state_fails_closed(tmp_path: Path) -> None:
    from patchledger.agent.errors import ConfigError

    path = tmp_path / "installed.json"
    path.write_text('{"version": 1, "targets": [], "retired": []}')
    with pytest.raises(ConfigError, match="anti-rollback state"):
        RollbackGuard(path).check("P-1", ["pkg:x"])


def _run(tmp_path: Path, store: MemoryStore, patch_id: str, rollout_id: str,
         artifact: bytes) -> Any:
    config = AgentConfig(host_id="h1", target=tmp_path / "app", state_dir=tmp_path / "state")
    return run_assignment(config, Assignment(rollout_id, patch_id, artifact), roots=TRUST,
                          host_key=HOST.key, attestor=App(store), clock=lambda: NOW,
                          health=lambda target: HealthResult(True, "ok"))


def test_an_older_patch_is_not_reinstalled_after_a_newer_one(tmp_path: Path) -> None:
    old_artifact = make_tar({"VERSION": b"5.4.4\n"})
    new_artifact = make_tar({"VERSION": b"5.4.5\n"})
    store = ledger(old_artifact, patch_id="P-1", rollout_id="R-1")
    assert _run(tmp_path, store, "P-1", "R-1", old_artifact).outcome is Outcome.VERIFIED
    ledger(new_artifact, patch_id="P-2", rollout_id="R-2", supersedes="P-1", store=store,
           fixes="CVE-2024-3094")
    assert _run(tmp_path, store, "P-2", "R-2", new_artifact).outcome is Outcome.VERIFIED
    # the ledger marked P-1 SUPERSEDED; the app re-serves R-1's assignment: refused by status
    again = _run(tmp_path, store, "P-1", "R-1", old_artifact)
    assert again.outcome is Outcome.REFUSED and "SUPERSEDED" in again.detail
    assert (tmp_path / "app" / "VERSION").read_bytes() == b"5.4.5\n"


def test_the_host_refuses_a_patch_it_retired_even_when_the_ledger_allows_it(
    tmp_path: Path,
) -> None:
    store = ledger(ARTIFACT)
    RollbackGuard(tmp_path / "state" / "installed.json").record(
        "P-9", ["pkg:deb/debian/xz-utils"], ["P-1"], rollout_id="R-9", now=NOW - 10)
    result = _run(tmp_path, store, "P-1", "R-1", ARTIFACT)
    assert result.outcome is Outcome.REFUSED
    assert "anti-rollback" in result.detail
    assert not (tmp_path / "app" / "VERSION").exists()


# ---------------------------------------------------------------------------- the runner


def test_the_runner_applies_only_after_a_valid_attestation(tmp_path: Path) -> None:
    store = ledger(ARTIFACT)
    seen: list[str] = []

    def app(host_id: str, rollout_id: str, nonce: str) -> dict[str, Any]:
        seen.append(nonce)
        return App(store, endorsers=[OWN])(host_id, rollout_id, nonce)

    config = AgentConfig(host_id="h1", target=tmp_path / "app", state_dir=tmp_path / "s")
    result = run_assignment(config, Assignment("R-1", "P-1", ARTIFACT), roots=TRUST,
                            host_key=HOST.key, attestor=app, clock=lambda: NOW)
    assert result.outcome is Outcome.REFUSED and "2 needed" in result.detail
    assert not (tmp_path / "app").exists()
    second = run_assignment(config, Assignment("R-1", "P-1", ARTIFACT), roots=TRUST,
                            host_key=HOST.key, attestor=App(store), clock=lambda: NOW)
    assert second.outcome is Outcome.APPLIED
    assert second.attestation is not None and len(second.attestation.endorsing) == 3
    assert len(seen[0]) == 64 and seen[0] != NONCE  # a fresh 256-bit nonce per run


def test_the_host_records_maintenance_window_is_enforced(tmp_path: Path) -> None:
    store = ledger(ARTIFACT)

    def sunday_window(a: dict[str, Any]) -> dict[str, Any]:
        return {**a, "host": {**a["host"], "maintenance_window": "Sun 02:00-04:00"}}

    config = AgentConfig(host_id="h1", target=tmp_path / "app", state_dir=tmp_path / "s")
    result = run_assignment(config, Assignment("R-1", "P-1", ARTIFACT), roots=TRUST,
                            host_key=HOST.key, attestor=App(store, tamper=sunday_window),
                            clock=lambda: NOW)
    assert result.outcome is Outcome.DEFERRED
    assert "host record's maintenance window 'Sun 02:00-04:00' is closed" in result.detail


# ---------------------------------------------------------------------------- enrollment roots


def _roots_bundle(trust: OrgTrust, nonce: str, endorsers: Any) -> dict[str, Any]:
    prop = proposal("AttestChannelRoots", [nonce])
    answer = canonical_json(attest_channel_roots(trust, nonce, now=NOW))
    return bundle(prop, response_payload(prop, answer), endorsers)


def verify_roots(b: dict[str, Any], fingerprint: str, nonce: str = NONCE) -> OrgTrust:
    return verify_channel_roots(b, channel=CHANNEL, chaincode=CHAINCODE, nonce=nonce,
                                fingerprint=fingerprint, now=NOW)


def test_enrollment_pins_the_roots_the_peers_attest_with_the_admins_fingerprint() -> None:
    fingerprint = roots_fingerprint(TRUST)
    pinned = verify_roots(_roots_bundle(TRUST, NONCE, ALL_PEERS), fingerprint)
    assert pinned.organizations == tuple(sorted(ORGS))
    assert all(pinned.roots[m][0] == TRUST.roots[m][0] for m in ORGS)


def test_enrollment_refuses_roots_invented_by_one_app() -> None:
    # The app invents a CA for every organization and mints "peers" for them: the bundle is
    # self-consistent, but its fingerprint is not the administrator's.
    fake_cas = {m: new_ca(f"ca.{m}") for m in ORGS}
    fake_trust = OrgTrust({m: (ca.cert,) for m, ca in fake_cas.items()})
    fakes = [node_identity(m, f"peer0.{m}", issuer=fake_cas[m]) for m in ORGS]
    with pytest.raises(AttestationBindingError, match="not the administrator's"):
        verify_roots(_roots_bundle(fake_trust, NONCE, fakes), roots_fingerprint(TRUST))


def test_enrollment_refuses_a_substituted_root_endorsed_by_one_org() -> None:
    rogue = new_ca("ca.SecOpsMSP")
    swapped = OrgTrust({**TRUST.roots, SECOPS: (rogue.cert,)})
    fp = roots_fingerprint(swapped)  # even if the admin were fooled into this fingerprint,
    b = _roots_bundle(swapped, NONCE, [OWN])  # only the app's own peer signs it
    with pytest.raises(EndorsementQuorumError, match="2 needed"):
        verify_roots(b, fp)
    # the genuine SecOps peer does not chain to the substituted root
    b = _roots_bundle(swapped, NONCE, [OWN, peer(SECOPS)])
    with pytest.raises(EndorsementError, match="SecOpsMSP"):
        verify_roots(b, fp)


def test_enrollment_refuses_an_old_nonce_and_an_altered_answer() -> None:
    fp = roots_fingerprint(TRUST)
    with pytest.raises(AttestationBindingError, match="nonce"):
        verify_roots(_roots_bundle(TRUST, "d" * 64, ALL_PEERS), fp)
    b = _roots_bundle(TRUST, NONCE, ALL_PEERS)
    prop = proposal("AttestChannelRoots", [NONCE])
    answer = attest_channel_roots(TRUST, NONCE, now=NOW)
    answer["attested_at"] = NOW + 1
    b["response_payload"] = b64(response_payload(prop, canonical_json(answer)))
    with pytest.raises(AttestationBindingError):  # another proposal's hash, signatures fail
        verify_roots(b, fp)


def test_verify_endorsed_names_the_question() -> None:
    store = ledger(ARTIFACT)
    q = Question(CHANNEL, CHAINCODE, "AttestDeployment", ("h1", "R-1", NONCE))
    endorsed = verify_endorsed(honest(store), q, roots=TRUST, now=NOW)
    assert endorsed.result["nonce"] == NONCE and endorsed.transaction_id
    bad = {**honest(store), "endorsements": [endorsement(OWN, b"something else")]}
    with pytest.raises(EndorsementError, match="does not verify"):
        verify_endorsed(bad, q, roots=TRUST, now=NOW)


def test_a_statement_that_never_reached_the_ledger_cannot_be_slipped_in() -> None:
    # A genuine ITOps approver's statement, signed but never submitted: the app adds it to
    # reach a quorum the ledger does not have; only its own peer signs that answer.
    from tests.unit.lifecycle.lifecycle_support import statement

    store = ledger(ARTIFACT)
    extra = {"statement": statement(who(ITOPS, "approver"), "P-1", artifact=sha256(ARTIFACT)),
             "signer_cert_pem": who(ITOPS, "approver").cert_pem.decode("ascii")}

    def slip(a: dict[str, Any]) -> None:
        a["approvals"] = [a["approvals"][0], extra]

    with pytest.raises(EndorsementQuorumError):
        check(forged(store, slip))
    with pytest.raises(EndorsementError, match="does not verify"):
        check(with_honest_signatures(store, slip))


# ---------------------------------------------------------------------------- revoked approvers


def _revoke_secops_approver(store: MemoryStore) -> None:
    run(store, who(SECOPS, "admin"), identities.revoke_identity,
        {"msp_id": SECOPS, "enrollment_id": who(SECOPS, "approver").caller.name}, "key leaked")


def test_an_honest_attestation_of_a_quorum_dropped_by_a_revocation_is_refused() -> None:
    store = ledger(ARTIFACT)
    _revoke_secops_approver(store)
    attested = honest(store)
    assert answer_of(attested)["quorum_met"] is False
    with pytest.raises(QuorumNotMetError, match="signer revoked"):
        check(attested)


def test_a_revocation_left_out_by_the_app_is_detected() -> None:
    store = ledger(ARTIFACT)
    _revoke_secops_approver(store)

    def hide(a: dict[str, Any]) -> None:  # the app drops the revocation and the verdict
        a["revoked_identities"] = []
        a["quorum_met"] = True
        a["approving"] = [COMPLIANCE, SECOPS]

    # only the app's own peer signs the altered answer
    with pytest.raises(EndorsementQuorumError):
        check(forged(store, hide))
    # next to the other organizations' genuine endorsements, which sign the honest answer
    with pytest.raises(EndorsementError, match="does not verify"):
        check(with_honest_signatures(store, hide))


def test_an_attestation_without_revoked_identities_is_refused() -> None:
    store = ledger(ARTIFACT)
    b = forged(store, lambda a: a.pop("revoked_identities"), endorsers=ALL_PEERS)
    with pytest.raises(AttestationFormatError, match="revoked_identities"):
        check(b)
