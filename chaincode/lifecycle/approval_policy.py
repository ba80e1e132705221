"""Evaluation of a patch's approvals against the policy: APPROVED, REJECTED or PENDING.

Rules (pure, order-independent; each organization counts at most once because decisions are a
mapping from organization to decision):

1. only decisions of the policy's voting organizations count, and only while their statement
   has not expired (``now < expires_at``); statements whose signer's identity is revoked are
   left out before (:func:`counted_decisions`);
2. REJECTED when the rejection rule triggers: ``any`` -> at least one rejection; ``majority`` ->
   more than half of the voting organizations rejected;
3. otherwise APPROVED when at least ``quorum[severity]`` distinct organizations approved;
4. otherwise REJECTED when the quorum can no longer be reached (approvals plus organizations
   that have not decided fall short);
5. otherwise PENDING.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from patchledger.chaincode.lifecycle.approval import Approval
from patchledger.chaincode.lifecycle.identity_revocation import RevokedIdentity, revoked_signer
from patchledger.chaincode.lifecycle.policy import Policy


@dataclass(frozen=True)
class Decision:
    """One organization's counted decision: ``approve``/``reject`` and its expiry."""

    decision: str
    expires_at: int


def counted_decisions(
    approvals: Iterable[Approval], revocations: Iterable[RevokedIdentity]
) -> dict[str, Decision]:
    """Each organization's stored decision whose signer is not revoked (expiry and voting
    membership are :func:`evaluate`'s).

    Raises:
        ValidationError: a stored signer certificate is not PEM.
    """
    revoked = list(revocations)
    return {
        a.msp_id: Decision(a.decision, a.signed_statement.statement.expires_at)
        for a in approvals
        if revoked_signer(revoked, a.msp_id, a.approver, a.signer_cert_pem.encode("ascii"))
        is None
    }


def approving_organizations(
    policy: Policy, decisions: Mapping[str, Decision], now: int
) -> tuple[str, ...]:
    """The voting organizations whose approval counts now (live), sorted."""
    members = set(policy.organizations)
    return tuple(sorted(org for org, d in decisions.items()
                        if org in members and d.decision == "approve" and now < d.expires_at))


def evaluate(policy: Policy, severity: str, decisions: Mapping[str, Decision], now: int) -> str:
    """Apply the rules of the module docstring.

    Args:
        policy: the policy in force.
        severity: the patch's severity class.
        decisions: decision per organization (MSP id).
        now: transaction time.

    Returns:
        ``"APPROVED"``, ``"REJECTED"`` or ``"PENDING"``.
    """
    members = set(policy.organizations)
    live = {
        org: d.decision for org, d in decisions.items() if org in members and now < d.expires_at
    }
    approvals = sum(1 for d in live.values() if d == "approve")
    rejections = sum(1 for d in live.values() if d == "reject")
    if policy.rejection == "any" and rejections > 0:
        return "REJECTED"
    if policy.rejection == "majority" and 2 * rejections > len(members):
        return "REJECTED"
    needed = policy.quorum[severity]
    if approvals >= needed:
        return "APPROVED"
    undecided = len(members) - approvals - rejections
    if approvals + undecided < needed:
        return "REJECTED"
    return "PENDING"
