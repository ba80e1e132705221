"""Approval records: one organization's signed decision on one patch.

Key ``(patch_id, msp_id)``: an organization decides once per patch, so approvals of the same
organization can never count twice. The record keeps the signed statement and the signer's
certificate, which together form the patch's approval bundle that agents verify offline.
Approvals have no state machine: they are written by Approve/Reject and replaced only by a
renewal of the same decision with a later expiry (``RenewApproval``), the key's history keeping
every version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.fields import choice, identifier, text
from patchledger.chaincode.lifecycle.record import Record
from patchledger.chaincode.lifecycle.statement import DECISIONS, SignedStatement


@dataclass(frozen=True, kw_only=True)
class Approval(Record):
    """A stored, verified approval statement."""

    RECORD_TYPE = "Approval"
    KEY_FIELDS = ("patch_id", "msp_id")
    patch_id: str
    msp_id: str
    decision: str
    approver: str
    statement: Mapping[str, Any]
    signer_cert_pem: str

    def validate(self) -> None:
        """Check fields, including that the statement matches the record.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("patch_id", self.patch_id)
        identifier("msp_id", self.msp_id)
        choice("decision", self.decision, DECISIONS)
        text("approver", self.approver, limit=256)
        text("signer_cert_pem", self.signer_cert_pem, limit=8192)
        body = SignedStatement.from_dict(self.statement).statement
        if (body.patch_id, body.msp_id, body.decision) != (
            self.patch_id,
            self.msp_id,
            self.decision,
        ):
            raise ValidationError("statement", "does not match the approval record")


    @property
    def signed_statement(self) -> SignedStatement:
        """The signed statement as an object."""
        return SignedStatement.from_dict(self.statement)
