"""The app's authorization: one table from permission to roles, applied to every endpoint.

Every API view is declared with :func:`requires` (or as :data:`PUBLIC`); the test suite walks
the URL map and checks each endpoint against this table for every role. The ledger enforces its
own table again (chaincode/lifecycle/authz.py) on every transaction, with the caller's
certificate: the app's table can only be stricter, never looser.

| permission | admin | approver | operator | auditor | feed |
|---|---|---|---|---|---|
| users.manage (create, list, unlock, disable users; revoke anyone's token) | x | | | | |
| tokens.own (own API tokens) | x | x | x | x | x |
| records.read (vulnerabilities, patches, policy, hosts, rollouts, exceptions) | x | x | x | x | x |
| vuln.record | | | | | x |
| vuln.assess | | | x | | x |
| patch.propose, artifact.upload | | | x | | x |
| patch.evidence | | | x | | |
| patch.decide (approve, reject; TOTP each time) | | x | | | |
| patch.revoke (TOTP) | | x | | | |
| policy.change (propose, vote) | x | | | | |
| host.manage (enroll, decommission, inventory digest) | x | | x | | |
| rollout.manage | | | x | | |
| exception.grant | | x | | | |
| exception.expire | x | x | x | | |
| audit.read (history, blocks, verification) | x | x | x | x | |
| feeds.read | x | | x | x | x |
| feeds.import (run an import of the configured feeds now) | | | | | x |

Hosts are not users: the agent endpoints (app/web/agent_api.py) are either :data:`PUBLIC`
(the enrollment bundle; enrollment, which the one-time token authorizes) or :data:`HOST`: only
the holder of a host certificate issued by the organization's CA (``role=host``), acting as the
``host_id`` of that certificate, never as another host and never as a user; no user role has
it, and a host certificate opens no user endpoint.

| permission | host |
|---|---|
| host (poll, desired state, artifacts, attestations, reports, inventory) | x |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from patchledger.app.web.db import Role

A, P, OP, F = Role.ADMIN, Role.APPROVER, Role.OPERATOR, Role.FEED
ALL = frozenset(Role)

PERMISSIONS: Mapping[str, frozenset[Role]] = {
    "users.manage": frozenset({A}),
    "tokens.own": ALL,
    "records.read": ALL,
    "vuln.record": frozenset({F}),
    "vuln.assess": frozenset({OP, F}),
    "patch.propose": frozenset({OP, F}),
    "artifact.upload": frozenset({OP, F}),
    "patch.evidence": frozenset({OP}),
    "patch.decide": frozenset({P}),
    "patch.revoke": frozenset({P}),
    "policy.change": frozenset({A}),
    "host.manage": frozenset({A, OP}),
    "rollout.manage": frozenset({OP}),
    "exception.grant": frozenset({P}),
    "exception.expire": frozenset({A, P, OP}),
    "audit.read": frozenset({A, P, OP, Role.AUDITOR}),
    "feeds.read": frozenset({A, OP, Role.AUDITOR, F}),
    "feeds.import": frozenset({F}),
}

#: Marker permission of endpoints open without login (login, health, OpenAPI, metrics).
PUBLIC = "public"
#: Marker permission of the agent endpoints a host certificate opens (no user role has it).
HOST = "host"

V = TypeVar("V", bound=Callable[..., Any])


def requires(permission: str) -> Callable[[V], V]:
    """Declare the permission a view needs (checked by the app's ``before_request`` hook).

    Raises:
        KeyError: at import time, for a permission not in :data:`PERMISSIONS`.
    """
    if permission not in (PUBLIC, HOST) and permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")

    def mark(view: V) -> V:
        view._permission = permission  # type: ignore[attr-defined]
        return view

    return mark


def permission_of(view: Callable[..., Any] | None) -> str | None:
    """The permission declared on ``view`` (``None``: undeclared, which the app refuses)."""
    return getattr(view, "_permission", None) if view is not None else None


def allowed(role: str, permission: str) -> bool:
    """Whether ``role`` has ``permission``."""
    if permission == PUBLIC:
        return True
    try:
        return Role(role) in PERMISSIONS.get(permission, frozenset())
    except ValueError:
        return False
