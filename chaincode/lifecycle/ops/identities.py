"""RevokeIdentity: an organization's admin records that one of its identities is revoked.

Rules in :mod:`chaincode.lifecycle.identity_revocation`. Checks, in order: the caller is an
admin; ``identity`` is ``{msp_id, enrollment_id}`` or ``{msp_id, serial}``; ``msp_id`` is the
caller's organization; the identity is not revoked yet. The record is saved owned by that
organization. Patches already APPROVED do not move back (their machine has no such move):
``AttestDeployment`` reports the quorum that still counts and agents refuse a patch short of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchledger.chaincode.lifecycle.authz import authorize, require_org
from patchledger.chaincode.lifecycle.errors import AlreadyExistsError, ValidationError
from patchledger.chaincode.lifecycle.fields import identifier, text
from patchledger.chaincode.lifecycle.identity_revocation import (
    KINDS,
    RevokedIdentity,
    normalize_serial,
)
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger


def _identity(identity: Any) -> tuple[str, str, str]:
    if not isinstance(identity, Mapping):
        raise ValidationError("identity", "must be a JSON object {msp_id, enrollment_id|serial}")
    unknown = sorted(set(identity) - {"msp_id", *KINDS})
    if unknown:
        raise ValidationError(f"identity.{unknown[0]}", "is not a known member")
    named = [k for k in KINDS if k in identity]
    if len(named) != 1:
        raise ValidationError("identity", "must name exactly one of enrollment_id, serial")
    msp_id = identifier("identity.msp_id", identity.get("msp_id"))
    kind = named[0]
    raw = identity[kind]
    value = normalize_serial(raw) if kind == "serial" else identifier(f"identity.{kind}", raw)
    return msp_id, kind, value


def revoke_identity(tx: TxLedger, identity: Mapping[str, Any], reason: str) -> list[Change]:
    """Record that ``identity`` of the caller's organization is revoked, for good.

    Raises:
        AuthorizationError: the caller is not an admin, or ``identity.msp_id`` is another
            organization.
        ValidationError: malformed identity or empty reason (naming the field).
        AlreadyExistsError: the identity is already revoked.
    """
    authorize(tx.caller, "revoke_identity")
    msp_id, kind, value = _identity(identity)
    text("reason", reason)
    require_org(tx.caller, msp_id, f"identity {kind} {value!r}")
    if tx.find(RevokedIdentity, msp_id, kind, value) is not None:
        raise AlreadyExistsError(RevokedIdentity.RECORD_TYPE, f"{msp_id}/{kind}/{value}")
    record = RevokedIdentity(msp_id=msp_id, kind=kind, value=value, reason=reason,
                             revoked_at=tx.now, revoked_by=tx.caller.name)
    tx.save(record, owner_org=msp_id, reason=reason)
    return tx.changes
