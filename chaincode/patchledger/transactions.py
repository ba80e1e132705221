"""The state-changing transaction functions: one per lifecycle action.

Each function runs one operation of :mod:`chaincode.lifecycle.ops` through
:func:`chaincode.patchledger.execution.submit` (caller from the creator's certificate, time from
the transaction timestamp, one ``patchledger`` event listing the changes) and returns
``{"tx_id": ..., "changes": [...]}``; ``ReportDeployments`` adds the per-report results,
``RecordVulnerabilities`` the per-vulnerability ones.
Authorization is the core's role table (:mod:`chaincode.lifecycle.authz`). Every refusal is a
:class:`~chaincode.runtime.ContractError` naming the record, its state and the attempted action.

Every function takes the contract's :class:`~chaincode.patchledger.execution.LedgerContext`:
``EnrollHost`` checks host certificates against its ``services.trust`` (the organizations' root
certificates the contract was given), and :func:`~chaincode.patchledger.execution.submit` takes
the channel organizations and the worker pool from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from patchledger.chaincode.lifecycle import LifecycleError, TxLedger
from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.ops import (
    approvals,
    deployments,
    governance,
    hosts,
    identities,
    patches,
    policies,
    rollouts,
)
from patchledger.chaincode.lifecycle.ops import vulnerabilities as vulns
from patchledger.chaincode.lifecycle.vulnerability import Vulnerability
from patchledger.chaincode.patchledger.arguments import members
from patchledger.chaincode.patchledger.bridge import StubStore
from patchledger.chaincode.patchledger.execution import LedgerContext, Outcome, submit
from patchledger.chaincode.patchledger.prefetch import prefetch_advance, prefetch_reports

__all__ = ["SUBMIT"]

T = TypeVar("T")
Result = dict[str, Any]


def _summary(ctx: LedgerContext, outcome: Outcome[Any]) -> Result:
    return {"tx_id": ctx.stub.tx_id, "changes": outcome.changes_json()}


async def InitLedger(
    ctx: LedgerContext, policy: dict[str, Any], consents: list[Any]
) -> Result:
    """Bootstrap the default approval policy with the organizations' signed consent (admin;
    refused once a policy exists).

    ``consents`` are the admins' :class:`~chaincode.lifecycle.consent.SignedConsent` objects
    over the policy's digest and this channel; a majority (at least 2) of the channel's
    organizations must consent, each admin certificate chaining to its organization's root in
    ``services.trust``. Every later change goes through ProposePolicy / ApprovePolicy.
    """
    services = ctx.services
    return _summary(
        ctx,
        await submit(
            ctx,
            lambda tx: policies.bootstrap_policy(
                tx, policy, consents, channel_id=ctx.stub.channel_id,
                channel_orgs=services.channel_orgs, trust=services.trust,
            ),
        ),
    )


async def RecordVulnerability(ctx: LedgerContext, vulnerability: dict[str, Any]) -> Result:
    """Create or merge a vulnerability (feed); re-recording known data changes nothing."""
    return _summary(
        ctx, await submit(ctx, lambda tx: vulns.record_vulnerability(tx, vulnerability))
    )


async def RecordVulnerabilities(ctx: LedgerContext, vulnerabilities: list[Any]) -> Result:
    """Record a batch of up to 200 vulnerabilities (feed), each as RecordVulnerability would.

    The batch is not all-or-nothing: the result lists, per entry, ``recorded``, ``changed``
    (a new version was written) and a refusal's ``error_type`` and ``error``; ``recorded``,
    ``changed`` and ``refused`` count them. The records the batch reads are fetched in one
    request first (:func:`_prefetch_vulnerabilities`).
    """

    def op(tx: TxLedger) -> vulns.RecordBatchResult:
        _prefetch_vulnerabilities(tx, vulnerabilities)
        return vulns.record_vulnerabilities(tx, vulnerabilities)

    outcome = await submit(ctx, op)
    batch = outcome.result
    return {
        **_summary(ctx, outcome),
        "recorded": batch.recorded,
        "changed": batch.changed,
        "refused": len(batch.results) - batch.recorded,
        "results": [r.to_dict() for r in batch.results],
    }


def _prefetch_vulnerabilities(tx: TxLedger, items: Any) -> None:
    """Read, with one ``get_multiple_states``, the Vulnerability records
    :func:`~chaincode.lifecycle.ops.vulnerabilities.record_vulnerabilities` will read: those
    of the entries that validate (the core reads no other), so the read set is unchanged. An
    optimization only: nothing is refused here; no-op for a store without prefetching."""
    store = tx.store
    if not isinstance(store, StubStore) or not isinstance(items, list | tuple) or not (
            1 <= len(items) <= vulns.MAX_BATCH):
        return
    keys = []
    for raw in items:
        if not isinstance(raw, Mapping):
            continue
        try:
            keys.append(Vulnerability.from_dict({**raw, "status": "OPEN"}).key)
        except LifecycleError:
            continue
    store.prefetch(keys)


async def AssessVulnerability(ctx: LedgerContext, vuln_id: str, status: str) -> Result:
    """Assess a vulnerability: MITIGATED, NOT_AFFECTED or back to OPEN (feed, operator)."""
    return _summary(
        ctx, await submit(ctx, lambda tx: vulns.assess_vulnerability(tx, vuln_id, status))
    )


async def ProposePatch(ctx: LedgerContext, patch: dict[str, Any]) -> Result:
    """Propose a patch: artifact SHA-256, size, URI, vendor, fixes[], targets (feed, operator)."""
    return _summary(ctx, await submit(ctx, lambda tx: patches.propose_patch(tx, patch)))


async def AttachTestEvidence(ctx: LedgerContext, patch_id: str, evidence: dict[str, Any]) -> Result:
    """Attach test evidence ``{report_sha256, uri, summary, passed}`` (operator)."""

    def op(tx: TxLedger) -> Any:
        ev = members("evidence", evidence, ("report_sha256", "uri", "passed"), ("summary",))
        return patches.attach_test_evidence(
            tx,
            patch_id,
            report_sha256=ev["report_sha256"],
            uri=ev["uri"],
            summary=ev.get("summary", ""),
            passed=ev["passed"],
        )

    return _summary(ctx, await submit(ctx, op))


async def Approve(ctx: LedgerContext, signed_statement: dict[str, Any]) -> Result:
    """Approve with a signed statement ``{statement, signature}`` (approver of its org)."""
    return _summary(
        ctx, await submit(ctx, lambda tx: approvals.approve_patch(tx, signed_statement))
    )


async def Reject(ctx: LedgerContext, signed_statement: dict[str, Any]) -> Result:
    """Reject with a signed statement ``{statement, signature}`` (approver of its org)."""
    return _summary(ctx, await submit(ctx, lambda tx: approvals.reject_patch(tx, signed_statement)))


async def RenewApproval(ctx: LedgerContext, signed_statement: dict[str, Any]) -> Result:
    """Renew the caller's organization's live decision on an APPROVED or RELEASED patch with a
    fresh signed statement (same patch, digest and decision, later expiry; approver)."""
    return _summary(
        ctx, await submit(ctx, lambda tx: approvals.renew_approval(tx, signed_statement))
    )


async def RevokeIdentity(ctx: LedgerContext, identity: dict[str, Any], reason: str) -> Result:
    """Record that an identity ``{msp_id, enrollment_id | serial}`` of the caller's
    organization is revoked (admin of that organization); its statements count nowhere."""
    return _summary(
        ctx, await submit(ctx, lambda tx: identities.revoke_identity(tx, identity, reason))
    )


async def ProposePolicy(ctx: LedgerContext, proposal_id: str, policy: dict[str, Any]) -> Result:
    """Propose a replacement policy; the proposer's organization approves it (admin)."""
    return _summary(
        ctx,
        await submit(
            ctx,
            lambda tx: policies.propose_policy(
                tx, proposal_id, policy, channel_orgs=ctx.services.channel_orgs
            ),
        ),
    )


async def ApprovePolicy(ctx: LedgerContext, proposal_id: str) -> Result:
    """Approve a policy change; adopted at the change quorum (admin)."""
    return _summary(ctx, await submit(ctx, lambda tx: policies.approve_policy(tx, proposal_id)))


async def EnrollHost(ctx: LedgerContext, host: dict[str, Any]) -> Result:
    """Enroll a host of the caller's organization ``{host_id, cert_pem, groups?,
    maintenance_window?, inventory_sha256?}`` (admin, operator); the certificate must be
    issued by the caller's organization's CA; the host's records then need the owner
    organization's peer and a majority of the channel's organizations to endorse every
    change."""
    trust = ctx.services.trust

    def op(tx: TxLedger) -> Any:
        h = members(
            "host",
            host,
            ("host_id", "cert_pem"),
            ("groups", "maintenance_window", "inventory_sha256"),
        )
        extra: dict[str, Any] = {
            k: h[k] for k in ("maintenance_window", "inventory_sha256") if k in h
        }
        return _enroll_one(tx, h, trust, extra)

    return _summary(ctx, await submit(ctx, op))


#: Most hosts one EnrollHosts enrolls.
MAX_ENROLL_BATCH = 200


async def EnrollHosts(ctx: LedgerContext, hosts: list[Any]) -> Result:
    """Enroll up to :data:`MAX_ENROLL_BATCH` hosts of the caller's organization in one
    transaction, each exactly as ``EnrollHost`` would (same members, same certificate
    checks, same key-level policy on each record); all or nothing: a refused host refuses
    the batch, its error naming the host and its place in the list."""
    trust = ctx.services.trust

    def op(tx: TxLedger) -> Any:
        if not isinstance(hosts, list) or not 1 <= len(hosts) <= MAX_ENROLL_BATCH:
            raise ValidationError("hosts", f"must be a list of 1 to {MAX_ENROLL_BATCH} hosts")
        changes: Any = []
        for index, host in enumerate(hosts):
            h = members(
                f"hosts[{index}]",
                host,
                ("host_id", "cert_pem"),
                ("groups", "maintenance_window", "inventory_sha256"),
            )
            extra: dict[str, Any] = {
                k: h[k] for k in ("maintenance_window", "inventory_sha256") if k in h
            }
            changes = _enroll_one(tx, h, trust, extra)
        return changes

    return _summary(ctx, await submit(ctx, op))


def _enroll_one(tx: TxLedger, h: dict[str, Any], trust: Any, extra: Mapping[str, Any]) -> Any:
    """``hosts.enroll_host`` of one member set (EnrollHost and EnrollHosts)."""
    return hosts.enroll_host(
        tx, h["host_id"], h["cert_pem"], trust=trust, groups=h.get("groups", ()), **extra
    )


async def UpdateInventoryDigest(ctx: LedgerContext, host_id: str, inventory_sha256: str) -> Result:
    """Record the digest of a host's off-ledger inventory (operator, or the host itself)."""
    return _summary(
        ctx,
        await submit(ctx, lambda tx: hosts.update_inventory_digest(tx, host_id, inventory_sha256)),
    )


async def DecommissionHost(ctx: LedgerContext, host_id: str) -> Result:
    """Retire a host of the caller's organization (admin, operator)."""
    return _summary(ctx, await submit(ctx, lambda tx: hosts.decommission_host(tx, host_id)))


async def CreateRollout(ctx: LedgerContext, rollout: dict[str, Any]) -> Result:
    """Plan a rollout of an APPROVED patch ``{rollout_id, patch_id, waves: [{hosts?,
    groups?}], failure_threshold_pct?, soak_seconds?}`` over the caller's hosts (operator)."""

    def op(tx: TxLedger) -> Any:
        r = members(
            "rollout",
            rollout,
            ("rollout_id", "patch_id", "waves"),
            ("failure_threshold_pct", "soak_seconds"),
        )
        return rollouts.create_rollout(
            tx,
            r["rollout_id"],
            r["patch_id"],
            r["waves"],
            failure_threshold_pct=r.get("failure_threshold_pct"),
            soak_seconds=r.get("soak_seconds"),
        )

    return _summary(ctx, await submit(ctx, op))


async def AdvanceRollout(ctx: LedgerContext, rollout_id: str) -> Result:
    """Start the first wave (releasing the patch) or the next one once the gate passed."""
    def op(tx: TxLedger) -> Any:
        prefetch_advance(tx, rollout_id)
        return rollouts.advance_rollout(tx, rollout_id)

    return _summary(ctx, await submit(ctx, op))


async def PauseRollout(ctx: LedgerContext, rollout_id: str) -> Result:
    """RUNNING -> PAUSED (operator of the rollout's organization)."""
    return _summary(ctx, await submit(ctx, lambda tx: rollouts.pause_rollout(tx, rollout_id)))


async def ResumeRollout(ctx: LedgerContext, rollout_id: str) -> Result:
    """PAUSED -> RUNNING (operator of the rollout's organization)."""
    return _summary(ctx, await submit(ctx, lambda tx: rollouts.resume_rollout(tx, rollout_id)))


async def HaltRollout(ctx: LedgerContext, rollout_id: str) -> Result:
    """PLANNED, RUNNING or PAUSED -> HALTED (operator of the rollout's organization)."""
    return _summary(ctx, await submit(ctx, lambda tx: rollouts.halt_rollout(tx, rollout_id)))


async def CompleteRollout(ctx: LedgerContext, rollout_id: str) -> Result:
    """RUNNING (last wave settled within the threshold) -> COMPLETED."""
    return _summary(ctx, await submit(ctx, lambda tx: rollouts.complete_rollout(tx, rollout_id)))


async def RollBackRollout(ctx: LedgerContext, rollout_id: str) -> Result:
    """HALTED -> ROLLED_BACK (operator of the rollout's organization)."""
    return _summary(ctx, await submit(ctx, lambda tx: rollouts.roll_back_rollout(tx, rollout_id)))


async def DecideRollout(ctx: LedgerContext, rollout_id: str, action: str, reason: str) -> Result:
    """A rollout move (advance, pause, resume, halt, complete, roll_back) with its reason
    recorded on the rollout (operator of the rollout's organization; the dispatcher)."""
    def op(tx: TxLedger) -> Any:
        if action == "advance":
            prefetch_advance(tx, rollout_id)
        return rollouts.decide_rollout(tx, rollout_id, action, reason)

    return _summary(ctx, await submit(ctx, op))


async def ReportDeployments(ctx: LedgerContext, reports: list[Any]) -> Result:
    """Record a batch of signed host reports (a host: its own; an operator: its org's hosts).

    The batch is not all-or-nothing: each report is accepted or refused on its own and the
    result lists, per report, ``accepted`` and the refusal's ``error_type`` and ``error``.
    The keys the batch reads are fetched first in three requests
    (:func:`~chaincode.patchledger.prefetch.prefetch_reports`).
    """

    def op(tx: TxLedger) -> deployments.BatchResult:
        prefetch_reports(tx, reports)
        return deployments.report_deployments(tx, reports)

    outcome = await submit(ctx, op)
    batch = outcome.result
    return {
        **_summary(ctx, outcome),
        "accepted": batch.accepted,
        "refused": len(batch.results) - batch.accepted,
        "results": [r.to_dict() for r in batch.results],
    }


async def RevokePatch(ctx: LedgerContext, patch_id: str, reason: str) -> Result:
    """Propose or agree to revoking a patch; REVOKED at the revocation quorum (approver)."""
    return _summary(
        ctx, await submit(ctx, lambda tx: governance.revoke_patch(tx, patch_id, reason))
    )


async def GrantException(ctx: LedgerContext, exception: dict[str, Any]) -> Result:
    """Propose or agree to a risk acceptance ``{exception_id, vuln_id, justification,
    expires_at, host_ids?}``; GRANTED at the exception quorum (approver)."""

    def op(tx: TxLedger) -> Any:
        e = members(
            "exception",
            exception,
            ("exception_id", "vuln_id", "justification", "expires_at"),
            ("host_ids",),
        )
        return governance.grant_exception(
            tx,
            e["exception_id"],
            e["vuln_id"],
            justification=e["justification"],
            expires_at=e["expires_at"],
            host_ids=e.get("host_ids", ()),
        )

    return _summary(ctx, await submit(ctx, op))


async def ExpireException(ctx: LedgerContext, vuln_id: str, exception_id: str) -> Result:
    """Mark a risk acceptance EXPIRED once its expiry passed (admin, approver, operator)."""
    return _summary(
        ctx, await submit(ctx, lambda tx: governance.expire_exception(tx, vuln_id, exception_id))
    )


#: Every state-changing transaction function (registered by
#: :func:`chaincode.patchledger.contract.build_contract`).
SUBMIT = (
    InitLedger,
    RecordVulnerability,
    RecordVulnerabilities,
    AssessVulnerability,
    ProposePatch,
    AttachTestEvidence,
    Approve,
    Reject,
    RenewApproval,
    RevokeIdentity,
    ProposePolicy,
    ApprovePolicy,
    EnrollHost,
    EnrollHosts,
    UpdateInventoryDigest,
    DecommissionHost,
    CreateRollout,
    AdvanceRollout,
    PauseRollout,
    ResumeRollout,
    HaltRollout,
    CompleteRollout,
    RollBackRollout,
    DecideRollout,
    ReportDeployments,
    RevokePatch,
    GrantException,
    ExpireException,
)

