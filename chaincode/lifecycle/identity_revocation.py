"""Revoked identities: an organization's record that one of its identities no longer speaks.

Fabric's MSP keeps accepting a certificate until the channel configuration's CRL is updated,
and approval statements are verified long after they were signed (by the chaincode at every
quorum count, by agents before applying). So an organization records on the ledger that one of
its identities is revoked, by enrollment id (every certificate of that person) or by
certificate serial (one certificate), with ``RevokeIdentity``. Rules:

- only an admin of the identity's organization may revoke it (``msp_id`` must be the caller's
  organization): no organization can silence another's approvers;
- the record is owned by that organization (key-level endorsement: its peer AND a majority of
  the channel's organizations), keyed ``(msp_id, kind, value)``, and never deleted: a
  revocation is for good, revoking twice is refused;
- a statement counts nowhere once its signer is revoked (:func:`revoked_signer`): not in the
  patch's quorum (``Approve``/``Reject``/``RenewApproval``), not in ``AttestDeployment``'s
  count, not in the agent's verification; a revoked identity cannot approve, reject or renew.

Records have no state machine: they are written once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.fields import choice, identifier, integer, text
from patchledger.chaincode.lifecycle.identity import load_certificate
from patchledger.chaincode.lifecycle.record import Record

__all__ = ["KINDS", "RevokedIdentity", "certificate_serial", "normalize_serial", "revoked_signer"]

#: How an identity is named: every certificate of an enrollment id, or one certificate.
KINDS = ("enrollment_id", "serial")
_SERIAL = re.compile(r"^[0-9a-f]{1,40}$")


def normalize_serial(value: Any) -> str:
    """A certificate serial as lowercase hex without separators or leading zeros
    (``"0A:1B"`` -> ``"a1b"``).

    Raises:
        ValidationError: naming ``identity.serial`` when it is not hex of at most 20 bytes.
    """
    if not isinstance(value, str):
        raise ValidationError("identity.serial", "must be a string of hex digits")
    digits = value.replace(":", "").lower().lstrip("0") or "0"
    if not _SERIAL.match(digits):
        raise ValidationError("identity.serial", "must be at most 20 bytes of hex digits")
    return digits


def certificate_serial(cert_pem: bytes) -> str:
    """The serial of a PEM certificate, normalized as :func:`normalize_serial`.

    Raises:
        ValidationError: not a PEM certificate.
    """
    return format(load_certificate(cert_pem, "signer_cert_pem").serial_number, "x")


@dataclass(frozen=True, kw_only=True)
class RevokedIdentity(Record):
    """One revoked identity of organization ``msp_id``.

    Attributes:
        kind: ``enrollment_id`` or ``serial`` (:data:`KINDS`).
        value: the enrollment id, or the normalized certificate serial.
        reason: why, free text.
        revoked_at: transaction time of the revocation.
        revoked_by: enrollment id of the admin who revoked it.
    """

    RECORD_TYPE = "RevokedIdentity"
    KEY_FIELDS = ("msp_id", "kind", "value")
    msp_id: str
    kind: str
    value: str
    reason: str
    revoked_at: int
    revoked_by: str

    def validate(self) -> None:
        """Check fields.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("msp_id", self.msp_id)
        choice("kind", self.kind, KINDS)
        identifier("value", self.value)
        if self.kind == "serial" and normalize_serial(self.value) != self.value:
            raise ValidationError("value", "a serial must be normalized lowercase hex")
        text("reason", self.reason)
        integer("revoked_at", self.revoked_at)
        text("revoked_by", self.revoked_by, limit=256)

    def describe(self) -> str:
        """``"<kind> <value> of <msp_id> revoked at <t>: <reason>"``, for refusals."""
        return (f"{self.kind} {self.value!r} of {self.msp_id} revoked at {self.revoked_at}:"
                f" {self.reason}")


def revoked_signer(
    revocations: Iterable[RevokedIdentity], msp_id: str, enrollment_id: str, cert_pem: bytes
) -> RevokedIdentity | None:
    """The revocation that silences the identity ``enrollment_id`` of ``msp_id`` holding
    ``cert_pem``, or ``None``. A revocation applies only to its own organization's identities.

    Raises:
        ValidationError: ``cert_pem`` is not a PEM certificate (only parsed when a serial
            revocation of that organization exists).
    """
    serial: str | None = None
    for r in revocations:
        if r.msp_id != msp_id:
            continue
        if r.kind == "enrollment_id" and r.value == enrollment_id:
            return r
        if r.kind == "serial":
            if serial is None:
                serial = certificate_serial(cert_pem)
            if r.value == serial:
                return r
    return None
