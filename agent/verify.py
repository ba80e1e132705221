"""Verification on the host, before applying: may this artifact be applied as this patch?

This is the first promise of DESIGN.md section 5 ("no single compromised party can get a
patch applied to any host"). Everything the agent receives (the patch record, the approval
bundle, the policy, the artifact) passes through one organization's app server and the
artifact store, so none of it is trusted; only the organization roots pinned at enrollment
and the agent's own configuration are. Rules, checked in this order:

1. the bundle is for the assigned patch id and its patch record is well formed;
2. the artifact's SHA-256 and size equal the patch record's (``ArtifactMismatchError``);
3. the patch record is APPROVED or RELEASED (``PatchNotDeployableError``);
4. every statement of the bundle is genuine (any failure refuses the patch, it means the
   bundle was tampered with): it names this patch id and this artifact digest
   (``StatementBindingError``); its signer certificate is directly issued by a pinned root
   of the statement's organization, carries ``role=approver`` and the statement's approver
   (``SignerCertificateError``, see :mod:`agent.signer`); its ECDSA P-256 signature over the
   statement's canonical JSON verifies and has a low S (``StatementSignatureError``, the
   core's :func:`chaincode.lifecycle.signatures.verify`); it does not claim a validity
   longer than the policy's ``max_statement_validity`` (``StatementValidityError``);
5. a genuine statement counts only while it and its certificate are valid (``now <
   expires_at``) and its signer's identity is not revoked on the ledger (the bundle's
   ``revoked_identities``, matched by the core's
   :func:`chaincode.lifecycle.identity_revocation.revoked_signer`: same organization, and
   the enrollment id or the certificate serial); an expired or revoked one is listed in the
   refusal when the quorum falls short;
6. the counted decisions, one per organization (an organization's approvers count once; a
   rejection wins over an approval of the same organization), are evaluated with the core's
   :func:`chaincode.lifecycle.approval_policy.evaluate`: a rejection under the policy's rule
   refuses (``PatchRejectedError``); otherwise at least ``max(quorum[severity], min_quorum)``
   distinct voting organizations must approve (``QuorumNotMetError``).

``min_quorum`` is pinned in the agent's configuration (default 2). The patch's severity and
the policy reach the agent through the same untrusted channel and statements do not sign
them, so a compromised app could present a critical patch as "low" under a policy record
claiming a quorum of 1. The floor keeps the promise regardless.

Pure: no I/O, no clock. The statement bytes, signature check and quorum evaluation are the
chaincode's own functions, so the agent and the chaincode verify exactly the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from patchledger.agent.errors import (
    ArtifactMismatchError,
    BundleError,
    MalformedStatementError,
    PatchNotDeployableError,
    PatchRejectedError,
    QuorumNotMetError,
    SignerCertificateError,
    StatementBindingError,
    StatementSignatureError,
    StatementValidityError,
)
from patchledger.agent.signer import Stale, check_signer
from patchledger.chaincode.lifecycle.approval_policy import Decision, evaluate
from patchledger.chaincode.lifecycle.errors import LifecycleError, SignatureError
from patchledger.chaincode.lifecycle.identity_revocation import RevokedIdentity, revoked_signer
from patchledger.chaincode.lifecycle.patch import DEPLOYABLE, Patch
from patchledger.chaincode.lifecycle.policy import Policy
from patchledger.chaincode.lifecycle.signatures import decode_b64, verify
from patchledger.chaincode.lifecycle.statement import SignedStatement
from patchledger.chaincode.lifecycle.trust import OrgTrust

__all__ = ["DEFAULT_MIN_QUORUM", "ArtifactFacts", "CountedDecision", "Verdict", "verify_patch"]

#: The agent's own floor on the number of distinct approving organizations.
DEFAULT_MIN_QUORUM = 2


@dataclass(frozen=True)
class ArtifactFacts:
    """What the agent measured of the artifact bytes it holds."""

    sha256: str
    size: int


@dataclass(frozen=True)
class CountedDecision:
    """A genuine, live decision of one statement."""

    index: int
    msp_id: str
    approver: str
    decision: str
    expires_at: int


@dataclass(frozen=True)
class Verdict:
    """The patch may be applied.

    Attributes:
        patch: the verified patch record.
        approving: the distinct organizations whose approvals counted, sorted.
        needed: the quorum applied.
        decisions: every counted decision, in bundle order.
        discounted: genuine statements not counted and why (expired).
    """

    patch: Patch
    approving: tuple[str, ...]
    needed: int
    decisions: tuple[CountedDecision, ...]
    discounted: tuple[str, ...]


def _patch_of(bundle: Mapping[str, Any], patch_id: str) -> Patch:
    raw = bundle.get("patch") if isinstance(bundle, Mapping) else None
    if not isinstance(raw, Mapping):
        raise BundleError("the approval bundle holds no patch record")
    try:
        patch = Patch.from_dict(raw)
    except LifecycleError as exc:
        raise BundleError(f"the bundle's patch record is malformed: {exc}") from exc
    if patch.patch_id != patch_id:
        raise BundleError(f"the bundle is for patch {patch.patch_id!r}, not {patch_id!r}")
    return patch


def _check_artifact(patch: Patch, artifact: ArtifactFacts) -> None:
    if artifact.sha256 != patch.artifact_sha256:
        raise ArtifactMismatchError(
            patch.patch_id, "sha256", patch.artifact_sha256, artifact.sha256
        )
    if artifact.size != patch.artifact_size:
        raise ArtifactMismatchError(
            patch.patch_id, "size", str(patch.artifact_size), str(artifact.size)
        )


def _parse_entry(index: int, entry: Any) -> tuple[SignedStatement, bytes]:
    if not isinstance(entry, Mapping):
        raise MalformedStatementError(index, "", "", "not an object")
    cert = entry.get("signer_cert_pem")
    if not isinstance(cert, str) or not cert:
        raise MalformedStatementError(index, "", "", "no signer_cert_pem")
    try:
        signed = SignedStatement.from_dict(entry.get("statement", {}))
    except LifecycleError as exc:
        raise MalformedStatementError(index, "", "", str(exc)) from exc
    return signed, cert.encode("ascii", errors="replace")


def _revocations(bundle: Mapping[str, Any]) -> tuple[RevokedIdentity, ...]:
    raw = bundle.get("revoked_identities", [])
    if not isinstance(raw, list | tuple):
        raise BundleError("the approval bundle's 'revoked_identities' is not a list")
    try:
        return tuple(RevokedIdentity.from_dict(r) for r in raw)
    except (LifecycleError, TypeError, AttributeError) as exc:
        raise BundleError(f"the bundle's revoked_identities are malformed: {exc}") from exc


def _check_statement(
    index: int,
    entry: Any,
    patch: Patch,
    roots: OrgTrust,
    max_validity: int,
    now: int,
    revocations: tuple[RevokedIdentity, ...] = (),
) -> CountedDecision | str:
    """One statement: a counted decision, or why a genuine one is not counted (rule 5).

    Raises:
        StatementError: the statement is not genuine (rule 4).
    """
    signed, cert_pem = _parse_entry(index, entry)
    s = signed.statement
    if s.patch_id != patch.patch_id or s.artifact_sha256 != patch.artifact_sha256:
        raise StatementBindingError(
            index,
            s.msp_id,
            s.approver,
            f"signed for patch {s.patch_id!r} artifact {s.artifact_sha256[:16]}..., not for"
            f" patch {patch.patch_id!r} artifact {patch.artifact_sha256[:16]}...",
        )
    try:
        stale = check_signer(cert_pem, s.msp_id, s.approver, roots, now)
    except ValueError as exc:
        raise SignerCertificateError(index, s.msp_id, s.approver, str(exc)) from exc
    what = f"statement {index}"
    try:
        verify(cert_pem, s.to_json(), decode_b64(signed.signature, what), what)
    except (SignatureError, LifecycleError) as exc:
        problem = str(exc).removeprefix(f"{what}: ")
        raise StatementSignatureError(index, s.msp_id, s.approver, problem) from exc
    if s.expires_at - now > max_validity:
        raise StatementValidityError(
            index,
            s.msp_id,
            s.approver,
            f"valid until {s.expires_at}, longer than the policy's {max_validity} s from now",
        )
    label = f"statement {index} of {s.approver!r} ({s.msp_id})"
    if isinstance(stale, Stale):
        return f"{label}: {stale.reason}"
    if now >= s.expires_at:
        return f"{label}: expired at {s.expires_at} (now {now})"
    revoked = revoked_signer(revocations, s.msp_id, s.approver, cert_pem)
    if revoked is not None:
        return f"{label}: signer revoked ({revoked.describe()})"
    return CountedDecision(index, s.msp_id, s.approver, s.decision, s.expires_at)


def _per_organization(decisions: tuple[CountedDecision, ...]) -> dict[str, Decision]:
    merged: dict[str, Decision] = {}
    for d in decisions:
        previous = merged.get(d.msp_id)
        if previous is None or (d.decision == "reject" and previous.decision != "reject"):
            merged[d.msp_id] = Decision(d.decision, d.expires_at)
    return merged


def verify_patch(
    *,
    patch_id: str,
    bundle: Mapping[str, Any],
    artifact: ArtifactFacts,
    policy: Policy,
    roots: OrgTrust,
    now: int,
    min_quorum: int = DEFAULT_MIN_QUORUM,
) -> Verdict:
    """Decide whether ``artifact`` may be applied as patch ``patch_id`` (module docstring).

    Args:
        patch_id: the patch the assignment names.
        bundle: ``GetApprovalBundle``'s answer: ``{patch, approvals: [{statement,
            signer_cert_pem}], revoked_identities?: [RevokedIdentity records]}``.
        artifact: the SHA-256 and size of the artifact bytes on the host.
        policy: the approval policy record (organizations, quorum per severity, rejection
            rule, longest statement validity).
        roots: the organization roots pinned at enrollment.
        now: the current time, seconds since the epoch (UTC).
        min_quorum: the agent's pinned floor on distinct approving organizations.

    Returns:
        The :class:`Verdict` of an applicable patch.

    Raises:
        BundleError: the bundle is malformed or for another patch; the policy has no quorum
            for the patch's severity.
        ArtifactMismatchError: digest or size differ from the patch record.
        PatchNotDeployableError: the patch record is not APPROVED or RELEASED.
        StatementError: a statement is not genuine (a subclass names what failed).
        PatchRejectedError: a live rejection under the policy's rule.
        QuorumNotMetError: too few distinct organizations approved.
    """
    patch = _patch_of(bundle, patch_id)
    _check_artifact(patch, artifact)
    if patch.status not in DEPLOYABLE:
        raise PatchNotDeployableError(
            f"patch {patch_id!r} is {patch.status} on the ledger, not APPROVED or RELEASED"
        )
    entries = bundle.get("approvals")
    if not isinstance(entries, list | tuple):
        raise BundleError("the approval bundle's 'approvals' is not a list")
    revocations = _revocations(bundle)
    checked = [
        _check_statement(i, e, patch, roots, policy.max_statement_validity, now, revocations)
        for i, e in enumerate(entries)
    ]
    counted = tuple(c for c in checked if isinstance(c, CountedDecision))
    discounted = tuple(c for c in checked if isinstance(c, str))
    if patch.severity not in policy.quorum:
        raise BundleError(f"the policy has no quorum for severity {patch.severity!r}")
    decisions = _per_organization(counted)
    outcome = evaluate(policy, patch.severity, decisions, now)
    rejecting = [d for d in counted if d.decision == "reject" and d.msp_id in policy.organizations]
    if outcome == "REJECTED" and rejecting:
        names = ", ".join(f"statement {d.index} of {d.approver!r} ({d.msp_id})" for d in rejecting)
        raise PatchRejectedError(
            f"patch {patch_id!r} is rejected under the policy's {policy.rejection!r} rule: {names}"
        )
    voting = set(policy.organizations)
    approving = tuple(
        sorted(org for org, d in decisions.items() if d.decision == "approve" and org in voting)
    )
    needed = max(policy.quorum[patch.severity], min_quorum)
    if outcome != "APPROVED" or len(approving) < needed:
        raise QuorumNotMetError(patch_id, approving, needed, discounted)
    return Verdict(patch, approving, needed, counted, discounted)
