"""Signed approval statements: an approver's decision on one exact artifact.

A statement is a canonical JSON document (``record_type`` ``ApprovalStatement``) naming the
patch id, the artifact's SHA-256, the decision (``approve`` or ``reject``), the approver's
organization (MSP id) and enrollment id, an expiry and an optional comment. The approver signs
``statement.to_json()`` (the canonical bytes, ``record_type`` and ``schema_version`` included)
with the private key of their enrollment certificate, ECDSA P-256/SHA-256, low S.

Rules enforced by :func:`verify_statement`:

1. the signature verifies against the given certificate and has a low S;
2. the statement names exactly the patch id and artifact digest it is used for (a statement for
   another patch or another build of it is refused);
3. the statement has not expired (``now < expires_at``) and does not reach further into the
   future than the policy allows.

Agents verify the same statements offline before applying a patch (DESIGN.md section 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from patchledger.chaincode.lifecycle.errors import ExpiredError, SignatureError, ValidationError
from patchledger.chaincode.lifecycle.fields import choice, identifier, integer, sha256_hex, text
from patchledger.chaincode.lifecycle.record import Document
from patchledger.chaincode.lifecycle.signatures import decode_b64, encode_b64, verify

DECISIONS = ("approve", "reject")


@dataclass(frozen=True, kw_only=True)
class ApprovalStatement(Document):
    """What an approver signs."""

    RECORD_TYPE = "ApprovalStatement"
    patch_id: str
    artifact_sha256: str
    decision: str
    msp_id: str
    approver: str
    expires_at: int
    comment: str = ""

    def validate(self) -> None:
        """Check the statement's fields.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("patch_id", self.patch_id)
        sha256_hex("artifact_sha256", self.artifact_sha256)
        choice("decision", self.decision, DECISIONS)
        identifier("msp_id", self.msp_id)
        text("approver", self.approver, limit=256)
        integer("expires_at", self.expires_at, minimum=1)
        text("comment", self.comment, optional=True)


@dataclass(frozen=True)
class SignedStatement:
    """A statement with its base64 DER signature, as carried in transactions and bundles."""

    statement: ApprovalStatement
    signature: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``{"statement": {...}, "signature": "..."}``."""
        return {"statement": self.statement.to_dict(), "signature": self.signature}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a signed statement.

        Raises:
            ValidationError: missing or malformed parts.
        """
        if not isinstance(data, Mapping):
            raise ValidationError("statement", "must be an object")
        body = data.get("statement")
        if not isinstance(body, Mapping) or body.get("record_type") != "ApprovalStatement":
            raise ValidationError("statement", "must be an ApprovalStatement object")
        signature = data.get("signature")
        if not isinstance(signature, str) or not signature:
            raise ValidationError("signature", "must be a base64 string")
        return cls(ApprovalStatement.from_dict(body), signature)

    @classmethod
    def create(cls, statement: ApprovalStatement, signature_der: bytes) -> Self:
        """Wrap a statement and its DER signature."""
        return cls(statement, encode_b64(signature_der))


def verify_statement(
    signed: SignedStatement,
    cert_pem: bytes,
    *,
    patch_id: str,
    artifact_sha256: str,
    now: int,
    max_validity: int,
) -> None:
    """Check a signed statement's signature, binding and expiry (rules in the module docstring).

    Raises:
        SignatureError: forged, altered, high-S, or bound to another patch or artifact.
        ExpiredError: expired, or valid for longer than ``max_validity`` seconds.
        ValidationError: the certificate is not PEM.
    """
    statement = signed.statement
    what = f"statement of {statement.approver!r} ({statement.msp_id}) on {statement.patch_id!r}"
    verify(cert_pem, statement.to_json(), decode_b64(signed.signature, what), what)
    if statement.patch_id != patch_id or statement.artifact_sha256 != artifact_sha256:
        raise SignatureError(
            f"{what}: bound to patch {statement.patch_id!r} artifact "
            f"{statement.artifact_sha256[:12]}..., not to patch {patch_id!r} artifact "
            f"{artifact_sha256[:12]}..."
        )
    if now >= statement.expires_at:
        raise ExpiredError(f"{what}: expired at {statement.expires_at} (now {now})")
    if statement.expires_at - now > max_validity:
        raise ExpiredError(f"{what}: valid for longer than the policy's {max_validity} s")
