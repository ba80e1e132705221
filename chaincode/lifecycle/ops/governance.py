"""RevokePatch, GrantException and ExpireException: decisions taken by a quorum.

When a revocation takes effect, every rollout of the patch that has not finished (PLANNED,
RUNNING, PAUSED) is halted and ordered to roll back in the same transaction (HALTED, then
ROLLED_BACK: agents roll back and report ROLLED_BACK), and the event lists those changes with
the reason ``patch <id> revoked``; a HALTED one is ordered to roll back too.

A risk acceptance may last at most the policy's ``max_exception_lifetime``, and every host it
names must be an enrolled host.

``revoke_patch`` and ``grant_exception`` are called once per organization: the first call
proposes (and counts as that organization's vote), later calls from other organizations agree;
the decision takes effect in the call that reaches the policy's quorum. The voting rules are
:func:`chaincode.lifecycle.quorum.cast_vote`'s: an organization voting twice is refused, and a
vote counts only while its organization votes in the policy in force. A grant call with other
terms than the proposal is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from patchledger.chaincode.lifecycle.authz import authorize
from patchledger.chaincode.lifecycle.errors import (
    AlreadyExistsError,
    ExpiredError,
    PreconditionError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.fields import id_tuple, identifier, integer, text
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger
from patchledger.chaincode.lifecycle.patch import MACHINE as PATCH
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.policy import DEFAULT_POLICY_ID, Policy
from patchledger.chaincode.lifecycle.quorum import cast_vote
from patchledger.chaincode.lifecycle.revocation import Revocation
from patchledger.chaincode.lifecycle.risk_acceptance import RiskAcceptance
from patchledger.chaincode.lifecycle.rollout import Rollout
from patchledger.chaincode.lifecycle.vulnerability import Vulnerability

#: Rollout states a revocation halts (then orders to roll back).
_UNFINISHED = frozenset({"PLANNED", "RUNNING", "PAUSED"})


def revoke_patch(tx: TxLedger, patch_id: str, reason: str) -> list[Change]:
    """Propose or agree to revoking a patch; at quorum the patch becomes REVOKED.

    Raises:
        AuthorizationError: the caller is not an approver.
        ValidationError: empty reason, or the organization does not vote.
        NotFoundError: unknown patch or no policy.
        TransitionError: the patch cannot be revoked (REJECTED or REVOKED) or the revocation
            is already EFFECTIVE.
        DuplicateVoteError: the organization already agreed.
    """
    authorize(tx.caller, "revoke_patch")
    text("reason", reason)
    patch = tx.load(Patch, patch_id)
    PATCH.check(patch_id, patch.status, "REVOKED")
    policy = tx.load(Policy, DEFAULT_POLICY_ID)
    current = tx.find(Revocation, patch_id) or Revocation(
        patch_id=patch_id, reason=reason, proposed_by=tx.caller.msp_id
    )
    current = cast_vote(policy, current, tx.caller.msp_id, policy.revocation_quorum)
    if current.decided:
        tx.save(patch.evolve(status="REVOKED"))
        _stop_rollouts(tx, patch_id)
    tx.save(current)
    return tx.changes


def _stop_rollouts(tx: TxLedger, patch_id: str) -> None:
    reason = f"patch {patch_id} revoked"
    for rollout in tx.scan(Rollout):
        if rollout.patch_id != patch_id:
            continue
        if rollout.status in _UNFINISHED:
            rollout = tx.save(
                rollout.evolve(status="HALTED", reason=reason), owner_org=rollout.owner_msp,
                reason=reason,
            )
        if rollout.status == "HALTED":
            tx.save(
                rollout.evolve(status="ROLLED_BACK", reason=reason), owner_org=rollout.owner_msp,
                reason=reason,
            )


def grant_exception(
    tx: TxLedger,
    exception_id: str,
    vuln_id: str,
    *,
    justification: str,
    expires_at: int,
    host_ids: Sequence[str] = (),
) -> list[Change]:
    """Propose or agree to a risk acceptance; at quorum it is GRANTED.

    An estate-wide exception (no ``host_ids``) moves the vulnerability to RISK_ACCEPTED.

    Raises:
        AuthorizationError: the caller is not an approver.
        ValidationError: malformed terms, or the organization does not vote.
        NotFoundError: unknown vulnerability or no policy.
        ExpiredError: ``expires_at`` is not in the future.
        ValidationError: ``expires_at`` is further away than the policy's
            ``max_exception_lifetime``, or a host id is not an enrolled host.
        AlreadyExistsError: an exception with this id exists with other terms.
        TransitionError: the exception is no longer PROPOSED, or the vulnerability cannot
            move to RISK_ACCEPTED.
        DuplicateVoteError: the organization already agreed.
    """
    authorize(tx.caller, "grant_exception")
    identifier("exception_id", exception_id)
    integer("expires_at", expires_at, minimum=1)
    if expires_at <= tx.now:
        raise ExpiredError(f"exception {exception_id!r} would expire at {expires_at} <= now")
    vuln = tx.load(Vulnerability, vuln_id)
    policy = tx.load(Policy, DEFAULT_POLICY_ID)
    if expires_at - tx.now > policy.max_exception_lifetime:
        raise ValidationError(
            "expires_at",
            f"the exception would last {expires_at - tx.now} s, longer than the policy's"
            f" max_exception_lifetime of {policy.max_exception_lifetime} s",
        )
    hosts = id_tuple("host_ids", host_ids)
    for index, host_id in enumerate(hosts):
        host = tx.find(Host, host_id)
        if host is None or host.status != "ENROLLED":
            raise ValidationError(f"host_ids[{index}]", f"{host_id} is not an enrolled host")
    proposal = RiskAcceptance(
        exception_id=exception_id,
        vuln_id=vuln_id,
        justification=justification,
        expires_at=expires_at,
        proposed_by=tx.caller.msp_id,
        host_ids=hosts,
    )
    current = tx.find(RiskAcceptance, vuln_id, exception_id) or proposal
    if not current.same_terms(proposal):
        raise AlreadyExistsError("RiskAcceptance", f"{vuln_id}/{exception_id}")
    current = cast_vote(policy, current, tx.caller.msp_id, policy.exception_quorum)
    if current.decided and not current.host_ids and vuln.status != "RISK_ACCEPTED":
        tx.save(vuln.evolve(status="RISK_ACCEPTED"))
    tx.save(current)
    return tx.changes


def expire_exception(tx: TxLedger, vuln_id: str, exception_id: str) -> list[Change]:
    """Mark an exception EXPIRED once its expiry passed; reopen the vulnerability if needed.

    Raises:
        AuthorizationError: the caller may not expire exceptions.
        NotFoundError: unknown exception.
        TransitionError: already EXPIRED.
        PreconditionError: the expiry has not passed.
    """
    authorize(tx.caller, "expire_exception")
    previous = tx.load(RiskAcceptance, vuln_id, exception_id)
    if tx.now < previous.expires_at:
        raise PreconditionError(
            "RiskAcceptance",
            exception_id,
            previous.status,
            f"expires at {previous.expires_at}, not before",
        )
    tx.save(previous.evolve(status="EXPIRED"))
    if previous.status == "GRANTED" and not previous.host_ids:
        _reopen_if_uncovered(tx, vuln_id)
    return tx.changes


def _reopen_if_uncovered(tx: TxLedger, vuln_id: str) -> None:
    vuln = tx.load(Vulnerability, vuln_id)
    if vuln.status != "RISK_ACCEPTED":
        return
    covered = any(
        e.status == "GRANTED" and not e.host_ids and tx.now < e.expires_at
        for e in tx.scan(RiskAcceptance, vuln_id)
    )
    if not covered:
        tx.save(vuln.evolve(status="OPEN"))
