"""Read-side helpers for the contract's queries: any record by type and key, and the
approval bundle an agent needs to verify a patch offline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchledger.chaincode.lifecycle.approval import Approval
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.errors import NotFoundError, ValidationError
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.identity_revocation import RevokedIdentity, revoked_signer
from patchledger.chaincode.lifecycle.ledger import StateStore
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.policy import Policy
from patchledger.chaincode.lifecycle.policy_change import PolicyChange
from patchledger.chaincode.lifecycle.record import Record
from patchledger.chaincode.lifecycle.revocation import Revocation
from patchledger.chaincode.lifecycle.risk_acceptance import RiskAcceptance
from patchledger.chaincode.lifecycle.rollout import Rollout
from patchledger.chaincode.lifecycle.vulnerability import Vulnerability

RECORD_TYPES: Mapping[str, type[Record]] = {
    cls.RECORD_TYPE: cls
    for cls in (
        Vulnerability,
        Patch,
        Approval,
        Policy,
        PolicyChange,
        Host,
        Rollout,
        Deployment,
        RiskAcceptance,
        Revocation,
        RevokedIdentity,
    )
}


def record_class(record_type: str) -> type[Record]:
    """The record class named ``record_type``.

    Raises:
        ValidationError: unknown record type.
    """
    try:
        return RECORD_TYPES[record_type]
    except KeyError:
        raise ValidationError("record_type", f"unknown record type {record_type!r}") from None


def get_record(store: StateStore, record_type: str, *parts: str) -> Record:
    """The validated record at ``(record_type, parts)``.

    Raises:
        ValidationError: unknown record type, or a part that is not an identifier (naming
            the key field).
        NotFoundError: no such record.
    """
    cls = record_class(record_type)
    raw = store.get(cls.key_for(*parts))
    if raw is None:
        raise NotFoundError(record_type, "/".join(parts))
    return cls.from_json(raw)


def approval_bundle(store: StateStore, patch_id: str) -> dict[str, Any]:
    """The patch record, every stored signed statement with its signer's certificate, and
    ``revoked_identities``: the :class:`RevokedIdentity` records that silence a signer of
    those statements (agents discount their statements).

    Raises:
        ValidationError: ``patch_id`` is not an identifier.
        NotFoundError: unknown patch.
    """
    patch = get_record(store, "Patch", patch_id)
    approvals = [Approval.from_json(raw) for _, raw in store.scan("Approval", (patch_id,))]
    revoked: dict[tuple[str, ...], RevokedIdentity] = {}
    for msp_id in sorted({a.msp_id for a in approvals}):
        of_org = [RevokedIdentity.from_json(raw)
                  for _, raw in store.scan(RevokedIdentity.RECORD_TYPE, (msp_id,))]
        for a in approvals:
            hit = revoked_signer(of_org, a.msp_id, a.approver, a.signer_cert_pem.encode("ascii"))
            if hit is not None:
                revoked[hit.key.parts] = hit
    return {
        "patch": patch.to_dict(),
        "approvals": [
            {"statement": a.statement, "signer_cert_pem": a.signer_cert_pem} for a in approvals
        ],
        "revoked_identities": [revoked[k].to_dict() for k in sorted(revoked)],
    }
