"""Authorization: which role may run which operation, as one pure table.

The table below is the whole policy: an operation not listed is refused to everyone, a role not
listed for an operation is refused. Organization checks that depend on the record (a host's
owner, a statement's organization, a host reporting for itself) are made by the operations.

| operation | roles |
|---|---|
| record_vulnerability | feed |
| assess_vulnerability | feed, operator |
| propose_patch | feed, operator |
| attach_test_evidence | operator |
| approve_patch / reject_patch / renew_approval | approver |
| bootstrap_policy, propose_policy, approve_policy, revoke_identity | admin |
| enroll_host, decommission_host | admin, operator |
| update_inventory_digest | operator, host (its own host only) |
| create/advance/pause/resume/halt/complete/roll_back rollout | operator |
| report_deployments | operator (relaying signed reports), host (its own reports only) |
| revoke_patch, grant_exception | approver |
| expire_exception | admin, approver, operator |

Auditors read only: they appear in no row.
"""

from __future__ import annotations

from collections.abc import Mapping

from patchledger.chaincode.lifecycle.errors import AuthorizationError
from patchledger.chaincode.lifecycle.identity import Caller, Role

_ROLLOUT = frozenset({Role.OPERATOR})

PERMISSIONS: Mapping[str, frozenset[Role]] = {
    "record_vulnerability": frozenset({Role.FEED}),
    "assess_vulnerability": frozenset({Role.FEED, Role.OPERATOR}),
    "propose_patch": frozenset({Role.FEED, Role.OPERATOR}),
    "attach_test_evidence": frozenset({Role.OPERATOR}),
    "approve_patch": frozenset({Role.APPROVER}),
    "reject_patch": frozenset({Role.APPROVER}),
    "renew_approval": frozenset({Role.APPROVER}),
    "bootstrap_policy": frozenset({Role.ADMIN}),
    "propose_policy": frozenset({Role.ADMIN}),
    "approve_policy": frozenset({Role.ADMIN}),
    "revoke_identity": frozenset({Role.ADMIN}),
    "enroll_host": frozenset({Role.ADMIN, Role.OPERATOR}),
    "decommission_host": frozenset({Role.ADMIN, Role.OPERATOR}),
    "update_inventory_digest": frozenset({Role.OPERATOR, Role.HOST}),
    "create_rollout": _ROLLOUT,
    "advance_rollout": _ROLLOUT,
    "pause_rollout": _ROLLOUT,
    "resume_rollout": _ROLLOUT,
    "halt_rollout": _ROLLOUT,
    "complete_rollout": _ROLLOUT,
    "roll_back_rollout": _ROLLOUT,
    "report_deployments": frozenset({Role.OPERATOR, Role.HOST}),
    "revoke_patch": frozenset({Role.APPROVER}),
    "grant_exception": frozenset({Role.APPROVER}),
    "expire_exception": frozenset({Role.ADMIN, Role.APPROVER, Role.OPERATOR}),
}


def authorize(caller: Caller, operation: str) -> None:
    """Refuse ``operation`` unless the caller's role is allowed to run it.

    Raises:
        AuthorizationError: the role is not allowed (or the operation is unknown).
    """
    allowed = PERMISSIONS.get(operation, frozenset())
    if caller.role not in allowed:
        raise AuthorizationError(
            f"{operation} is not allowed for role {caller.role.value!r} "
            f"(caller {caller.name!r} of {caller.msp_id})"
        )


def require_org(caller: Caller, organization: str, what: str) -> None:
    """Refuse unless the caller belongs to ``organization``.

    Raises:
        AuthorizationError: the caller's MSP id differs.
    """
    if caller.msp_id != organization:
        raise AuthorizationError(
            f"{what} belongs to {organization}; caller is from {caller.msp_id}"
        )
