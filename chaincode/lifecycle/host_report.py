"""Signed host reports: a host's own account of one deployment.

A report is a canonical JSON document (``record_type`` ``HostReport``) naming the host, the
rollout, the patch, the deployment outcome, a per-host sequence number, the digest of the host's
inventory after the change and the host's clock time. The host signs ``report.to_json()`` with
the key of its CA-issued certificate, the one registered in its Host record.

Rules enforced by :func:`verify_report`:

1. the signature verifies against the certificate registered for ``host_id``, low S: a host
   (or anyone) cannot report for another host;
2. the sequence number is strictly above the last one accepted from this host (replays and
   reordering are refused);
3. the report is not dated more than :data:`MAX_CLOCK_SKEW` seconds after the transaction time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from patchledger.chaincode.lifecycle.errors import ExpiredError, ReplayError, ValidationError
from patchledger.chaincode.lifecycle.fields import choice, identifier, integer, sha256_hex, text
from patchledger.chaincode.lifecycle.record import Document
from patchledger.chaincode.lifecycle.signatures import decode_b64, encode_b64, verify

MAX_CLOCK_SKEW = 300
REPORTABLE = ("DISPATCHED", "APPLIED", "VERIFIED", "FAILED", "ROLLED_BACK")


@dataclass(frozen=True, kw_only=True)
class HostReport(Document):
    """What a host signs about one deployment."""

    RECORD_TYPE = "HostReport"
    host_id: str
    rollout_id: str
    patch_id: str
    outcome: str
    sequence: int
    inventory_sha256: str
    reported_at: int
    detail: str = ""

    def validate(self) -> None:
        """Check the report's fields.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("host_id", self.host_id)
        identifier("rollout_id", self.rollout_id)
        identifier("patch_id", self.patch_id)
        choice("outcome", self.outcome, REPORTABLE)
        integer("sequence", self.sequence, minimum=1)
        sha256_hex("inventory_sha256", self.inventory_sha256)
        integer("reported_at", self.reported_at)
        text("detail", self.detail, optional=True)


@dataclass(frozen=True)
class SignedReport:
    """A report with its base64 DER signature."""

    report: HostReport
    signature: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``{"report": {...}, "signature": "..."}``."""
        return {"report": self.report.to_dict(), "signature": self.signature}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a signed report.

        Raises:
            ValidationError: missing or malformed parts.
        """
        if not isinstance(data, Mapping):
            raise ValidationError("report", "must be an object")
        body = data.get("report")
        if not isinstance(body, Mapping) or body.get("record_type") != "HostReport":
            raise ValidationError("report", "must be a HostReport object")
        signature = data.get("signature")
        if not isinstance(signature, str) or not signature:
            raise ValidationError("signature", "must be a base64 string")
        return cls(HostReport.from_dict(body), signature)

    @classmethod
    def create(cls, report: HostReport, signature_der: bytes) -> Self:
        """Wrap a report and its DER signature."""
        return cls(report, encode_b64(signature_der))


def verify_report(
    signed: SignedReport, host_cert_pem: bytes, *, last_sequence: int, now: int
) -> None:
    """Check a host report (rules in the module docstring).

    Raises:
        SignatureError: forged, altered, high-S, or signed by another host's key.
        ReplayError: sequence not above ``last_sequence``.
        ExpiredError: dated too far in the future.
    """
    report = signed.report
    what = f"report {report.sequence} of host {report.host_id!r}"
    verify(host_cert_pem, report.to_json(), decode_b64(signed.signature, what), what)
    if report.sequence <= last_sequence:
        raise ReplayError(f"{what}: sequence must be above {last_sequence} (replayed?)")
    if report.reported_at > now + MAX_CLOCK_SKEW:
        raise ExpiredError(f"{what}: dated {report.reported_at}, after transaction time {now}")
