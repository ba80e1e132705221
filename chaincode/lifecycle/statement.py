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

from dataclasses import dataclass

from patchledger.chaincode.lifecycle.envelope import Signed
from patchledger.chaincode.lifecycle.errors import ExpiredError, SignatureError
from patchledger.chaincode.lifecycle.fields import choice, identifier, integer, sha256_hex, text
from patchledger.chaincode.lifecycle.record import Document

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
class SignedStatement(Signed[ApprovalStatement]):
    """A statement with its base64 DER signature, as carried in transactions and bundles:
    ``{"statement": {...}, "signature": "..."}`` (see :class:`~..envelope.Signed`)."""

    BODY = "statement"
    DOCUMENT = ApprovalStatement

    @property
    def statement(self) -> ApprovalStatement:
        """The signed statement."""
        return self.body


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
    signed.verify_signature(cert_pem, what)
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
