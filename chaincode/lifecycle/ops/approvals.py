"""Approve and Reject: signed statements of approvers, counted per organization.

Checks, in order: the caller's role is approver; the statement's decision is the one the
transaction claims; the statement names the caller's organization and the caller's enrollment
id (an approver cannot sign in another organization's or another person's name); the patch is
TESTED; the organization is a voting member of the policy; it has no live decision on the patch
yet (a decision whose statement expired may be replaced); the signature verifies against the
caller's certificate; the statement is bound to this patch id and artifact digest and is not
expired. The approval is stored with the signer's certificate, then the policy is evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchledger.chaincode.lifecycle.approval import Approval
from patchledger.chaincode.lifecycle.approval_policy import Decision, evaluate
from patchledger.chaincode.lifecycle.authz import authorize, require_org
from patchledger.chaincode.lifecycle.errors import (
    AuthorizationError,
    DuplicateVoteError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger
from patchledger.chaincode.lifecycle.patch import MACHINE as PATCH
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.policy import DEFAULT_POLICY_ID, Policy, check_voter
from patchledger.chaincode.lifecycle.statement import SignedStatement, verify_statement


def approve_patch(tx: TxLedger, signed_statement: Mapping[str, Any]) -> list[Change]:
    """Record an approval (see :func:`decide`)."""
    return decide(tx, signed_statement, "approve")


def reject_patch(tx: TxLedger, signed_statement: Mapping[str, Any]) -> list[Change]:
    """Record a rejection (see :func:`decide`)."""
    return decide(tx, signed_statement, "reject")


def decide(tx: TxLedger, signed_statement: Mapping[str, Any], decision: str) -> list[Change]:
    """Verify and store one organization's signed decision, then evaluate the policy.

    Raises:
        AuthorizationError: not an approver, or the statement names another organization or
            another approver than the caller.
        ValidationError: malformed statement, decision mismatch, non-voting organization.
        NotFoundError: unknown patch or no policy.
        TransitionError: the patch is not TESTED.
        DuplicateVoteError: the organization already has a live decision on the patch.
        SignatureError: forged, altered, high-S, or bound to another patch or artifact.
        ExpiredError: the statement expired or is valid for too long.
    """
    operation = "approve_patch" if decision == "approve" else "reject_patch"
    authorize(tx.caller, operation)
    signed = SignedStatement.from_dict(signed_statement)
    statement = signed.statement
    if statement.decision != decision:
        raise ValidationError("statement.decision", f"must be {decision!r} for {operation}")
    require_org(tx.caller, statement.msp_id, "the statement")
    if statement.approver != tx.caller.name:
        raise AuthorizationError(
            f"statement names approver {statement.approver!r}; caller is {tx.caller.name!r}"
        )
    patch = tx.load(Patch, statement.patch_id)
    target = "APPROVED" if decision == "approve" else "REJECTED"
    # the patch moves only at quorum, but every decision needs a TESTED patch
    PATCH.check_from(patch.patch_id, patch.status, target, allowed_from=frozenset({"TESTED"}))
    policy = tx.load(Policy, DEFAULT_POLICY_ID)
    check_voter(policy, statement.msp_id)
    previous = tx.find(Approval, patch.patch_id, statement.msp_id)
    if previous is not None and tx.now < previous.signed_statement.statement.expires_at:
        raise DuplicateVoteError("Patch", patch.patch_id, statement.msp_id)
    verify_statement(
        signed,
        tx.caller.cert_pem,
        patch_id=patch.patch_id,
        artifact_sha256=patch.artifact_sha256,
        now=tx.now,
        max_validity=policy.max_statement_validity,
    )
    approval = Approval(
        patch_id=patch.patch_id,
        msp_id=statement.msp_id,
        decision=decision,
        approver=statement.approver,
        statement=signed.to_dict(),
        signer_cert_pem=tx.caller.cert_pem.decode("ascii"),
    )
    tx.save(approval)
    _settle(tx, patch, policy)
    return tx.changes


def _settle(tx: TxLedger, patch: Patch, policy: Policy) -> None:
    decisions = {
        a.msp_id: Decision(a.decision, a.signed_statement.statement.expires_at)
        for a in tx.scan(Approval, patch.patch_id)
    }
    outcome = evaluate(policy, patch.severity, decisions, tx.now)
    if outcome != "PENDING":
        tx.save(patch.evolve(status=outcome))
