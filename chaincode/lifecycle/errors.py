"""Errors of the lifecycle core: one family of business refusals.

Every refusal raised by the core derives from :class:`LifecycleError`, so the contract layer can
turn any of them into a chaincode error response with one ``except`` clause. Anything else that
escapes the core is a programming error, not a refusal.
"""

from __future__ import annotations


class LifecycleError(Exception):
    """Base of every business refusal of the lifecycle core."""


class ValidationError(LifecycleError):
    """A record, argument or statement field is malformed.

    Attributes:
        field: the dotted name of the offending field.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid field {field!r}: {problem}")


class TransitionError(LifecycleError):
    """A state transition that the record's state machine forbids."""

    def __init__(self, record_type: str, record_id: str, current: str, attempted: str) -> None:
        self.record_type = record_type
        self.record_id = record_id
        self.current = current
        self.attempted = attempted
        super().__init__(f"{record_type} {record_id!r} is {current}: cannot move to {attempted}")


class PreconditionError(LifecycleError):
    """A legal transition whose precondition is not met yet (a gate, a quorum, a soak time)."""

    def __init__(self, record_type: str, record_id: str, state: str, problem: str) -> None:
        self.record_type = record_type
        self.record_id = record_id
        self.state = state
        super().__init__(f"{record_type} {record_id!r} is {state}: {problem}")


class NotFoundError(LifecycleError):
    """A record that the operation needs does not exist."""

    def __init__(self, record_type: str, record_id: str) -> None:
        self.record_type = record_type
        self.record_id = record_id
        super().__init__(f"{record_type} {record_id!r} does not exist")


class AlreadyExistsError(LifecycleError):
    """A record that the operation would create exists already (with different content)."""

    def __init__(self, record_type: str, record_id: str) -> None:
        self.record_type = record_type
        self.record_id = record_id
        super().__init__(f"{record_type} {record_id!r} already exists")


class DuplicateVoteError(LifecycleError):
    """An organization voted a second time on the same decision."""

    def __init__(self, record_type: str, record_id: str, organization: str) -> None:
        self.record_type = record_type
        self.record_id = record_id
        self.organization = organization
        super().__init__(f"{organization} has already decided on {record_type} {record_id!r}")


class AuthorizationError(LifecycleError):
    """The caller's organization or role may not perform the operation."""


class SignatureError(LifecycleError):
    """A signed statement or report is forged, altered, malformed or signed with a high S."""


class ExpiredError(LifecycleError):
    """A signed statement is past its expiry, or a report is dated in the future."""


class ReplayError(LifecycleError):
    """A host report whose sequence number is not above the host's last accepted one."""
