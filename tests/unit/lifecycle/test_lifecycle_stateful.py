"""Stateful property test: no sequence of operations reaches a state the rules forbid.

Hypothesis drives random sequences of every operation, with honest and hostile inputs
(statements in another organization's name, for another artifact, expired; reports forged,
replayed or for another host). After every step the machine checks that each record moved only
along its state machine, that refused operations changed nothing, and the cross-record
invariants of DESIGN.md sections 4 and 5. Honest compound rules (all organizations approve,
every host reports, a rollout runs to the end) keep the walk reaching deep states. Set
LIFECYCLE_STATEFUL_EXAMPLES for a longer search than the CI default.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from patchledger.chaincode.lifecycle import LifecycleError, MemoryStore, TxLedger
from patchledger.chaincode.lifecycle import deployment as deployment_mod
from patchledger.chaincode.lifecycle import host as host_mod
from patchledger.chaincode.lifecycle import patch as patch_mod
from patchledger.chaincode.lifecycle import policy_change as change_mod
from patchledger.chaincode.lifecycle import revocation as revocation_mod
from patchledger.chaincode.lifecycle import risk_acceptance as risk_mod
from patchledger.chaincode.lifecycle import rollout as rollout_mod
from patchledger.chaincode.lifecycle import vulnerability as vuln_mod
from patchledger.chaincode.lifecycle.deployment_proof import check_deployment
from patchledger.chaincode.lifecycle.ops import (
    approvals,
    deployments,
    governance,
    hosts,
    patches,
    policies,
    rollouts,
    vulnerabilities,
)
from patchledger.chaincode.lifecycle.queries import RECORD_TYPES
from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.lifecycle.statemachine import StateMachine
from tests.unit.lifecycle.lifecycle_support import (
    CHANNEL,
    DAY,
    ITOPS,
    NOW,
    ORGS,
    SECOPS,
    TRUST,
    Identity,
    consents,
    host_identity,
    patch_data,
    policy_data,
    report,
    statement,
    vuln_data,
    who,
)

MACHINES: dict[str, StateMachine] = {
    m.MACHINE.record_type: m.MACHINE
    for m in (
        vuln_mod,
        patch_mod,
        host_mod,
        rollout_mod,
        deployment_mod,
        change_mod,
        revocation_mod,
        risk_mod,
    )
}
PATCHES = ("P-1", "P-2")
HOSTS = ("h1", "h2", "h3")
ROLLOUTS = ("R-1", "R-2")
OWNERS = (ITOPS, SECOPS)
LOW_VULN = "CVE-2023-0001"

patch_ids = st.sampled_from(PATCHES)
host_ids = st.sampled_from(HOSTS)
rollout_ids = st.sampled_from(ROLLOUTS)
orgs = st.sampled_from(ORGS)
owners = st.sampled_from((ITOPS, ITOPS, ITOPS, SECOPS))
rarely = st.integers(min_value=0, max_value=5)  # hostile or final actions: 1 in 6


class LifecycleMachine(RuleBasedStateMachine):
    """Random operation sequences against one in-memory ledger."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.now = NOW
        self.call(who(SECOPS, "admin"), policies.bootstrap_policy, policy_data(),
                  consents(policy_data()), channel_id=CHANNEL, channel_orgs=ORGS, trust=TRUST)
        self.call(who(SECOPS, "feed"), vulnerabilities.record_vulnerability, vuln_data())
        self.call(
            who(SECOPS, "feed"),
            vulnerabilities.record_vulnerability,
            vuln_data(LOW_VULN, "low"),
        )
        self.propose("P-1", low=False, supersedes=False)
        self.propose("P-2", low=True, supersedes=True)
        for host_id in HOSTS:
            self.enroll(host_id, ITOPS)

    # -- plumbing ---------------------------------------------------------------------------

    def call(self, identity: Identity, op: Callable[..., Any], *args: Any, **kw: Any) -> None:
        before = dict(self.store.data)
        tx = TxLedger(self.store, identity.caller, self.now)
        try:
            op(tx, *args, **kw)
        except LifecycleError:
            assert self.store.data == before, "a refused operation changed the ledger"
            return
        tx.commit()
        for change in tx.changes:
            machine = MACHINES.get(change.record_type)
            if machine is not None and change.from_state:
                assert machine.allows(change.from_state, change.to_state), change
        assert set(before) <= set(self.store.data), "a record disappeared"
        moves: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for change in tx.changes:
            moves.setdefault((change.record_type, change.record_id), []).append(
                (change.from_state, change.to_state))
        for key, raw in self.store.data.items():
            machine = MACHINES.get(key.record_type)
            if machine is None or before.get(key, raw) == raw:
                continue
            cls = RECORD_TYPES[key.record_type]
            old, new = cls.from_json(before[key]).state, cls.from_json(raw).state
            # one transaction may move a record twice (a revocation halts a PLANNED rollout
            # and rolls it back): the listed moves, each allowed above, must chain old -> new
            steps = moves.get((key.record_type, "/".join(key.parts)), [])
            chained = bool(steps) and steps[0][0] == old and steps[-1][1] == new and all(
                a[1] == b[0] for a, b in pairwise(steps))
            assert old == new or machine.allows(old, new) or chained, (key, old, new, steps)

    def records(self, record_type: str) -> list[Any]:
        cls = RECORD_TYPES[record_type]
        return [cls.from_json(raw) for _, raw in self.store.scan(record_type, ())]

    # -- rules ------------------------------------------------------------------------------

    @rule(patch_id=patch_ids, low=st.booleans(), supersedes=st.booleans())
    def propose(self, patch_id: str, low: bool, supersedes: bool) -> None:
        data = patch_data(patch_id, (LOW_VULN,) if low else ("CVE-2024-3094",))
        if supersedes and patch_id == "P-2":
            data["supersedes"] = "P-1"
        self.call(who(SECOPS, "feed"), patches.propose_patch, data)

    @rule(patch_id=patch_ids, passed=st.sampled_from([True, True, True, False]))
    def evidence(self, patch_id: str, passed: bool) -> None:
        self.call(
            who(ITOPS, "operator"),
            patches.attach_test_evidence,
            patch_id,
            report_sha256="ab" * 32,
            uri="https://ci",
            summary="",
            passed=passed,
        )

    @rule(
        org=orgs,
        patch_id=patch_ids,
        decision=st.sampled_from(["approve", "reject"]),
        attack=st.sampled_from(["none"] * 9 + ["org", "artifact", "expired"]),
    )
    def decide(self, org: str, patch_id: str, decision: str, attack: str) -> None:
        signer = who(org, "approver")
        kw: dict[str, Any] = {"expires_at": self.now + DAY}
        if attack == "org":
            kw["msp_id"] = next(o for o in ORGS if o != org)
        elif attack == "artifact":
            kw["artifact"] = "cd" * 32
        elif attack == "expired":
            kw["expires_at"] = self.now
        op = approvals.approve_patch if decision == "approve" else approvals.reject_patch
        self.call(signer, op, statement(signer, patch_id, decision, **kw))

    @rule(patch_id=patch_ids)
    def happy_approvals(self, patch_id: str) -> None:
        """Honest path: test evidence, then every organization approves in turn."""
        self.evidence(patch_id, True)
        for org in ORGS:
            self.decide(org, patch_id, "approve", "none")

    @rule(rollout_id=rollout_ids, outcome=st.sampled_from(["VERIFIED"] * 4 + ["FAILED"]))
    def happy_reports(self, rollout_id: str, outcome: str) -> None:
        """Honest path: every scheduled host of the rollout reports, relayed by an operator."""
        for raw in [raw for _, raw in self.store.scan("Deployment", (rollout_id,))]:
            d = deployment_mod.Deployment.from_json(raw)
            host = host_mod.Host.from_json(self.store.data[Key("Host", (d.host_id,))])
            signed = report(
                host_identity(host.owner_msp, d.host_id),
                d.report_sequence + 1,
                outcome,
                rollout_id=rollout_id,
                patch_id=d.patch_id,
                reported_at=self.now,
            )
            self.call(who(host.owner_msp, "operator"), deployments.report_deployments, [signed])

    @rule(rollout_id=rollout_ids, outcome=st.sampled_from(["VERIFIED"] * 4 + ["FAILED"]))
    def happy_rollout(self, rollout_id: str, outcome: str) -> None:
        """Honest path: start, report, advance, report, complete."""
        for action in ("advance", "report", "advance", "report", "complete"):
            if action == "report":
                self.happy_reports(rollout_id, outcome)
            else:
                self.steer(rollout_id, ITOPS, action)

    @rule(host_id=host_ids, owner=owners)
    def enroll(self, host_id: str, owner: str) -> None:
        cert = host_identity(owner, host_id).cert_pem.decode()
        group = "canary" if host_id == "h1" else "web"
        self.call(
            who(owner, "admin"), hosts.enroll_host, host_id, cert, trust=TRUST, groups=[group]
        )

    @rule(host_id=host_ids, owner=owners, dice=rarely)
    def decommission(self, host_id: str, owner: str, dice: int) -> None:
        if dice == 0:
            self.call(who(owner, "operator"), hosts.decommission_host, host_id)

    @rule(rollout_id=rollout_ids, patch_id=patch_ids, owner=owners, grouped=st.booleans())
    def create(self, rollout_id: str, patch_id: str, owner: str, grouped: bool) -> None:
        waves = (
            [{"groups": ["canary"]}, {"groups": ["web"]}]
            if grouped
            else [{"hosts": ["h1", "h2"]}, {"hosts": ["h3"]}]
        )
        self.call(
            who(owner, "operator"),
            rollouts.create_rollout,
            rollout_id,
            patch_id,
            waves,
            failure_threshold_pct=50,
        )

    @rule(
        rollout_id=rollout_ids,
        owner=owners,
        action=st.sampled_from(
            ["advance", "advance", "pause", "resume", "halt", "complete", "roll_back"]
        ),
    )
    def steer(self, rollout_id: str, owner: str, action: str) -> None:
        op = getattr(rollouts, f"{action}_rollout")
        self.call(who(owner, "operator"), op, rollout_id)

    @rule(
        host_id=host_ids,
        rollout_id=rollout_ids,
        patch_id=patch_ids,
        owner=owners,
        outcome=st.sampled_from(
            ["DISPATCHED", "APPLIED", "VERIFIED", "VERIFIED", "FAILED", "ROLLED_BACK"]
        ),
        attack=st.sampled_from(["none"] * 6 + ["replay", "forged", "other_host"]),
    )
    def report_one(
        self,
        host_id: str,
        rollout_id: str,
        patch_id: str,
        owner: str,
        outcome: str,
        attack: str,
    ) -> None:
        raw = self.store.get(Key("Deployment", (rollout_id, host_id)))
        last = deployment_mod.Deployment.from_json(raw).report_sequence if raw else 0
        sequence = max(last, 1) if attack == "replay" else last + 1
        signer = host_identity(owner, "h3" if attack == "forged" else host_id)
        signed = report(
            signer,
            sequence,
            outcome,
            rollout_id=rollout_id,
            patch_id=patch_id,
            host_id=host_id,
            reported_at=self.now,
        )
        caller = host_identity(owner, "h2" if attack == "other_host" else host_id)
        self.call(caller, deployments.report_deployments, [signed])

    @rule(org=orgs, patch_id=patch_ids, dice=rarely)
    def revoke(self, org: str, patch_id: str, dice: int) -> None:
        if dice == 0:
            self.call(who(org, "approver"), governance.revoke_patch, patch_id, "bad build")

    @rule(org=orgs, scoped=st.booleans())
    def grant(self, org: str, scoped: bool) -> None:
        self.call(
            who(org, "approver"),
            governance.grant_exception,
            "E-1",
            "CVE-2024-3094",
            justification="isolated",
            expires_at=NOW + 3 * DAY,
            host_ids=["h1"] if scoped else [],
        )

    @rule()
    def expire(self) -> None:
        self.call(who(ITOPS, "operator"), governance.expire_exception, "CVE-2024-3094", "E-1")

    @rule(org=orgs, version=st.integers(min_value=1, max_value=2))
    def change_policy(self, org: str, version: int) -> None:
        self.call(
            who(org, "admin"),
            policies.propose_policy,
            f"C-{version}",
            policy_data(soak_seconds=version * 10),
        )
        self.call(who(org, "admin"), policies.approve_policy, f"C-{version}")

    @precondition(lambda self: self.now < NOW + 5 * DAY)
    @rule(seconds=st.sampled_from([30, 3600, DAY]))
    def tick(self, seconds: int) -> None:
        self.now += seconds

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def every_record_is_valid_and_in_a_known_state(self) -> None:
        for key, raw in self.store.data.items():
            record = RECORD_TYPES[key.record_type].from_json(raw)
            assert record.key == key
            machine = MACHINES.get(key.record_type)
            assert machine is None or record.state in machine.states

    @invariant()
    def approved_patches_have_a_quorum_of_distinct_organizations(self) -> None:
        policy = self.records("Policy")[0]
        for p in self.records("Patch"):
            approvals_ = [a for a in self.records("Approval") if a.patch_id == p.patch_id]
            assert len({a.msp_id for a in approvals_}) == len(approvals_)
            approving = {a.msp_id for a in approvals_ if a.decision == "approve"}
            if p.status in ("APPROVED", "RELEASED", "SUPERSEDED"):
                assert len(approving & set(ORGS)) >= min(policy.quorum[p.severity], 2)
                assert not [a for a in approvals_ if a.decision == "reject"]
            if p.status == "REVOKED":
                rev = [r for r in self.records("Revocation") if r.patch_id == p.patch_id]
                assert rev and rev[0].status == "EFFECTIVE"
                assert len(rev[0].approvals) >= policy.revocation_quorum

    @invariant()
    def deployments_belong_to_started_rollouts_of_released_patches(self) -> None:
        rollouts_ = {r.rollout_id: r for r in self.records("Rollout")}
        patches_ = {p.patch_id: p for p in self.records("Patch")}
        hosts_ = {h.host_id: h for h in self.records("Host")}
        for d in self.records("Deployment"):
            r = rollouts_[d.rollout_id]
            assert r.status != "PLANNED" and d.wave <= r.current_wave
            assert d.host_id in r.waves[d.wave].hosts
            assert d.owner_msp == r.owner_msp == hosts_[d.host_id].owner_msp
            assert patches_[d.patch_id].status in ("RELEASED", "SUPERSEDED", "REVOKED")
            # every recorded status carries its host's signature over the report that set it
            assert check_deployment(d, hosts_[d.host_id], r) == []
            if r.status == "COMPLETED":
                assert d.status in deployment_mod.SETTLED

    @invariant()
    def risk_is_accepted_only_by_quorum(self) -> None:
        policy = self.records("Policy")[0]
        for v in self.records("Vulnerability"):
            if v.status == "RISK_ACCEPTED":
                granted = [
                    e
                    for e in self.records("RiskAcceptance")
                    if e.vuln_id == v.vuln_id and e.status == "GRANTED" and not e.host_ids
                ]
                assert granted and len(granted[0].approvals) >= policy.exception_quorum


LifecycleMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("LIFECYCLE_STATEFUL_EXAMPLES", "25")),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLifecycleMachine = LifecycleMachine.TestCase
