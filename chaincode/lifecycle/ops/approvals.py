"""Approve, Reject and RenewApproval: signed statements of approvers, counted per organization.

Approve/Reject check, in order: the caller's role is approver; the statement's decision is the
one the transaction claims; the statement names the caller's organization and the caller's
enrollment id (an approver cannot sign in another organization's or another person's name);
the caller's identity is not revoked (:mod:`chaincode.lifecycle.identity_revocation`); the
patch is TESTED; the organization is a voting member of the policy; it has no live decision on
the patch yet (a decision whose statement expired may be replaced); the signature verifies
against the caller's certificate; the statement is bound to this patch id and artifact digest
and is not expired. The approval is stored with the signer's certificate, then the policy is
evaluated over the live statements of signers that are not revoked.

RenewApproval replaces an organization's decision by a fresh statement with a later expiry,
so an APPROVED or RELEASED patch need not be re-proposed under a new id when its approvals
near expiry. Same first checks (role, organization, approver, not revoked, voter), then: the
patch is APPROVED or RELEASED (before that, Approve/Reject decide; a REJECTED or REVOKED
patch is not revived); the organization has a decision on the patch, not yet expired and
whose signer is not revoked (such a decision no longer counts: approving again is a new
review of the artifact, which happens in TESTED, so a new proposal); the new statement has
the same decision (a renewal never turns a rejection into an approval) and a later expiry; it
verifies like any statement (signature, same patch id and artifact digest, validity). The
record is overwritten in place: the ledger's history of the key (``GetHistory``) keeps every
version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchledger.chaincode.lifecycle.approval import Approval
from patchledger.chaincode.lifecycle.approval_policy import counted_decisions, evaluate
from patchledger.chaincode.lifecycle.authz import authorize, require_org
from patchledger.chaincode.lifecycle.errors import (
    AuthorizationError,
    DuplicateVoteError,
    ExpiredError,
    NotFoundError,
    PreconditionError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.identity_revocation import RevokedIdentity, revoked_signer
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger
from patchledger.chaincode.lifecycle.patch import DEPLOYABLE, Patch
from patchledger.chaincode.lifecycle.patch import MACHINE as PATCH
from patchledger.chaincode.lifecycle.policy import DEFAULT_POLICY_ID, Policy, check_voter
from patchledger.chaincode.lifecycle.statement import (
    ApprovalStatement,
    SignedStatement,
    verify_statement,
)


def approve_patch(tx: TxLedger, signed_statement: Mapping[str, Any]) -> list[Change]:
    """Record an approval (see :func:`decide`)."""
    return decide(tx, signed_statement, "approve")


def reject_patch(tx: TxLedger, signed_statement: Mapping[str, Any]) -> list[Change]:
    """Record a rejection (see :func:`decide`)."""
    return decide(tx, signed_statement, "reject")


def _callers_statement(
    tx: TxLedger, signed_statement: Mapping[str, Any], operation: str
) -> SignedStatement:
    """The statement, if the caller may submit it: approver role, the caller's organization
    and enrollment id, the caller not revoked.

    Raises:
        AuthorizationError: as :func:`decide`.
        ValidationError: a malformed statement.
    """
    authorize(tx.caller, operation)
    signed = SignedStatement.from_dict(signed_statement)
    statement = signed.statement
    require_org(tx.caller, statement.msp_id, "the statement")
    if statement.approver != tx.caller.name:
        raise AuthorizationError(
            f"statement names approver {statement.approver!r}; caller is {tx.caller.name!r}"
        )
    revoked = revoked_signer(tx.scan(RevokedIdentity, tx.caller.msp_id), tx.caller.msp_id,
                             tx.caller.name, tx.caller.cert_pem)
    if revoked is not None:
        raise AuthorizationError(f"{operation} refused: {revoked.describe()}")
    return signed


def _verify(tx: TxLedger, signed: SignedStatement, patch: Patch, policy: Policy) -> None:
    verify_statement(
        signed,
        tx.caller.cert_pem,
        patch_id=patch.patch_id,
        artifact_sha256=patch.artifact_sha256,
        now=tx.now,
        max_validity=policy.max_statement_validity,
    )


def _store(tx: TxLedger, signed: SignedStatement) -> None:
    statement = signed.statement
    tx.save(
        Approval(
            patch_id=statement.patch_id,
            msp_id=statement.msp_id,
            decision=statement.decision,
            approver=statement.approver,
            statement=signed.to_dict(),
            signer_cert_pem=tx.caller.cert_pem.decode("ascii"),
        )
    )


def decide(tx: TxLedger, signed_statement: Mapping[str, Any], decision: str) -> list[Change]:
    """Verify and store one organization's signed decision, then evaluate the policy.

    Raises:
        AuthorizationError: not an approver, the statement names another organization or
            another approver than the caller, or the caller's identity is revoked.
        ValidationError: malformed statement, decision mismatch, non-voting organization.
        NotFoundError: unknown patch or no policy.
        TransitionError: the patch is not TESTED.
        DuplicateVoteError: the organization already has a live decision on the patch.
        SignatureError: forged, altered, high-S, or bound to another patch or artifact.
        ExpiredError: the statement expired or is valid for too long.
    """
    operation = "approve_patch" if decision == "approve" else "reject_patch"
    authorize(tx.caller, operation)
    if SignedStatement.from_dict(signed_statement).statement.decision != decision:
        raise ValidationError("statement.decision", f"must be {decision!r} for {operation}")
    signed = _callers_statement(tx, signed_statement, operation)
    statement = signed.statement
    patch = tx.load(Patch, statement.patch_id)
    target = "APPROVED" if decision == "approve" else "REJECTED"
    # the patch moves only at quorum, but every decision needs a TESTED patch
    PATCH.check_from(patch.patch_id, patch.status, target, allowed_from=frozenset({"TESTED"}))
    policy = tx.load(Policy, DEFAULT_POLICY_ID)
    check_voter(policy, statement.msp_id)
    previous = tx.find(Approval, patch.patch_id, statement.msp_id)
    if previous is not None and tx.now < previous.signed_statement.statement.expires_at:
        raise DuplicateVoteError("Patch", patch.patch_id, statement.msp_id)
    _verify(tx, signed, patch, policy)
    _store(tx, signed)
    _settle(tx, patch, policy)
    return tx.changes


def _check_renewal(
    tx: TxLedger, patch: Patch, previous: Approval | None, statement: ApprovalStatement
) -> None:
    where = f"{patch.patch_id}/{statement.msp_id}"
    if previous is None:
        raise NotFoundError("Approval", where)
    before = previous.signed_statement.statement
    if tx.now >= before.expires_at:
        raise ExpiredError(
            f"approval {where} expired at {before.expires_at} (now {tx.now}): an expired"
            " decision cannot be renewed; propose the patch again for a new review"
        )
    revoked = revoked_signer(tx.scan(RevokedIdentity, previous.msp_id), previous.msp_id,
                             previous.approver, previous.signer_cert_pem.encode("ascii"))
    if revoked is not None:
        raise PreconditionError(
            "Approval", where, previous.decision,
            f"its signer is revoked ({revoked.describe()}): a decision that no longer counts"
            " cannot be renewed; propose the patch again for a new review",
        )
    if statement.decision != previous.decision:
        raise ValidationError(
            "statement.decision",
            f"must be {previous.decision!r}, the decision being renewed for {where}",
        )
    if statement.expires_at <= before.expires_at:
        raise ValidationError(
            "statement.expires_at",
            f"must be later than the renewed statement's {before.expires_at}",
        )


def renew_approval(tx: TxLedger, signed_statement: Mapping[str, Any]) -> list[Change]:
    """Replace the caller's organization's live decision on an APPROVED or RELEASED patch by
    a fresh statement with a later expiry (rules in the module docstring).

    Raises:
        AuthorizationError: as :func:`decide`.
        ValidationError: malformed statement, another decision than the renewed one, an expiry
            not later than the renewed one's, a non-voting organization.
        NotFoundError: unknown patch, no policy, or no decision of the organization to renew.
        PreconditionError: the patch is not APPROVED or RELEASED, or the renewed decision's
            signer is revoked.
        ExpiredError: the decision being renewed has expired; or the new statement expired or
            is valid for too long.
        SignatureError: forged, altered, high-S, or bound to another patch or artifact.
    """
    signed = _callers_statement(tx, signed_statement, "renew_approval")
    statement = signed.statement
    patch = tx.load(Patch, statement.patch_id)
    if patch.status not in DEPLOYABLE:  # a renewal moves nothing; approvals matter there
        raise PreconditionError(
            "Patch", patch.patch_id, patch.status,
            "approvals are renewed only while the patch is APPROVED or RELEASED",
        )
    policy = tx.load(Policy, DEFAULT_POLICY_ID)
    check_voter(policy, statement.msp_id)
    _check_renewal(tx, patch, tx.find(Approval, patch.patch_id, statement.msp_id), statement)
    _verify(tx, signed, patch, policy)
    _store(tx, signed)
    return tx.changes


def _settle(tx: TxLedger, patch: Patch, policy: Policy) -> None:
    decisions = counted_decisions(tx.scan(Approval, patch.patch_id), tx.scan(RevokedIdentity))
    outcome = evaluate(policy, patch.severity, decisions, tx.now)
    if outcome != "PENDING":
        tx.save(patch.evolve(status=outcome))
