"""Errors of the host agent: one family under :class:`AgentError`.

Two branches matter to a caller:

- :class:`VerificationError` and its subclasses: the patch must NOT be applied. Each names
  the statement (its index in the bundle), the organization and what failed.
- :class:`BackendError` and its subclasses: applying, rolling back or recovering failed on
  this host; :class:`LockError` when another run holds the lock.

Anything else escaping the agent is a programming error, not a refusal.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """The agent's configuration (or a maintenance window) is malformed."""


# ---------------------------------------------------------------------------- verification


class VerificationError(AgentError):
    """The patch may not be applied: the artifact or its approvals do not verify."""


class BundleError(VerificationError):
    """The approval bundle, the patch record or the policy is malformed or is for another
    patch."""


class ArtifactMismatchError(VerificationError):
    """The artifact's SHA-256 or size differs from the patch record.

    Attributes:
        patch_id: the patch.
        field: ``"sha256"`` or ``"size"``.
        expected: the ledger's value.
        actual: the artifact's value.
    """

    def __init__(self, patch_id: str, field: str, expected: str, actual: str) -> None:
        self.patch_id = patch_id
        self.field = field
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"artifact of patch {patch_id!r}: {field} is {actual}, the ledger record says"
            f" {expected}"
        )


class PatchNotDeployableError(VerificationError):
    """The patch record is not in a deployable state (APPROVED or RELEASED)."""


class StatementError(VerificationError):
    """One statement of the bundle failed a check.

    Attributes:
        index: position of the statement in the bundle's ``approvals``.
        msp_id: the organization the statement claims ("" when it could not be read).
        approver: the approver the statement names ("" when it could not be read).
        problem: what failed.
    """

    def __init__(self, index: int, msp_id: str, approver: str, problem: str) -> None:
        self.index = index
        self.msp_id = msp_id
        self.approver = approver
        self.problem = problem
        who = f" of {approver!r} ({msp_id})" if msp_id else ""
        super().__init__(f"approval statement {index}{who}: {problem}")


class MalformedStatementError(StatementError):
    """A bundle entry is not a signed approval statement with a PEM certificate."""


class StatementBindingError(StatementError):
    """The statement is for another patch id or another artifact digest."""


class StatementSignatureError(StatementError):
    """The signature is malformed, high-S, or does not verify with the signer's key."""


class SignerCertificateError(StatementError):
    """The signer's certificate is not directly issued by the pinned root of the statement's
    organization (a rogue CA, another organization's CA, no pinned root), lacks
    ``role=approver``, or names another approver than the statement."""


class StatementValidityError(StatementError):
    """The statement claims a validity longer than the policy allows."""


class QuorumNotMetError(VerificationError):
    """Fewer distinct approving organizations than the quorum for the patch's severity.

    Attributes:
        approving: the organizations whose approvals counted.
        needed: the quorum applied (the policy's, raised to the agent's pinned floor).
        discounted: why other statements did not count (expired statement or certificate).
    """

    def __init__(
        self, patch_id: str, approving: tuple[str, ...], needed: int, discounted: tuple[str, ...]
    ) -> None:
        self.patch_id = patch_id
        self.approving = approving
        self.needed = needed
        self.discounted = discounted
        orgs = ", ".join(approving) or "none"
        note = f"; not counted: {'; '.join(discounted)}" if discounted else ""
        super().__init__(
            f"patch {patch_id!r}: {len(approving)} distinct organization(s) approved ({orgs}),"
            f" {needed} needed{note}"
        )


class PatchRejectedError(VerificationError):
    """A live rejection (under the policy's rejection rule) refuses the patch."""


class AttestationError(VerificationError):
    """The attestation of ledger state does not prove what the agent must act on (see
    :mod:`agent.attestation`); nothing is applied."""


class AttestationFormatError(AttestationError):
    """The attestation bundle or a part of it (proposal, response, endorsement) is malformed."""


class AttestationBindingError(AttestationError):
    """The attestation is not the answer to this agent's question: another nonce (a replay),
    function, host, rollout, channel or chaincode, or a response whose proposal hash does not
    bind the proposal."""


class EndorsementError(AttestationError):
    """An endorsement is not a genuine peer's: its signature does not verify, its certificate
    does not chain to a pinned root of its organization, or it is not a peer's."""


class EndorsementQuorumError(AttestationError):
    """Fewer distinct organizations' peers endorsed the attestation than needed.

    Attributes:
        endorsing: the distinct organizations whose peers' endorsements counted.
        needed: the number required (the attested quorum, raised to the agent's floor).
    """

    def __init__(self, what: str, endorsing: tuple[str, ...], needed: int, note: str) -> None:
        self.endorsing = endorsing
        self.needed = needed
        orgs = ", ".join(endorsing) or "none"
        super().__init__(
            f"{what}: endorsed by peers of {len(endorsing)} distinct organization(s) ({orgs}),"
            f" {needed} needed{note}"
        )


class DeploymentStateError(AttestationError):
    """The attested deployment does not allow applying now: the rollout is not RUNNING, the
    host is not in its current wave, the deployment is settled, or the patch is superseded."""


class RollbackRefusedError(VerificationError):
    """Anti-rollback: the patch was superseded by, or replaced with, a patch this host installed
    (see :mod:`agent.rollback_guard`)."""


# ---------------------------------------------------------------------------- applying


class BackendError(AgentError):
    """An installer backend could not apply, roll back or recover."""


class LockError(BackendError):
    """Another run holds the agent's lock.

    Attributes:
        path: the lock file.
    """

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        super().__init__(f"another agent run holds the lock {path} ({holder})")


class ArtifactFormatError(BackendError):
    """The artifact is not a tar.gz of regular files and directories inside the target."""


class TargetLinkError(BackendError):
    """An artifact file's path crosses a symbolic link in the target tree: writing it would
    leave the target root, so the artifact is refused (nothing is written through the link).

    Attributes:
        target: the target directory.
        link: the link's path relative to the target.
        path: the artifact file that would have been written through it.
    """

    def __init__(self, target: str, link: str, path: str) -> None:
        self.target = target
        self.link = link
        self.path = path
        super().__init__(
            f"{target} holds a symbolic link at {link!r}: artifact file {path!r} would be"
            " written through it, outside the target (refused)"
        )


class RollbackError(BackendError):
    """No kept copy to roll back to, or the rollback itself failed."""
