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
3. the report is dated within a window around the transaction time: at most
   :data:`MAX_CLOCK_SKEW` seconds after it and at most :data:`MAX_REPORT_AGE` seconds before it
   (an old signed report cannot be held back and played later);
4. the host's certificate is valid at the transaction time (an expired host certificate no
   longer reports).

Sequence numbers are at most :data:`MAX_SEQUENCE` (64-bit signed), so a report with a huge
number is refused on its own, not its whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from patchledger.chaincode.lifecycle.envelope import Signed
from patchledger.chaincode.lifecycle.errors import ExpiredError, ReplayError
from patchledger.chaincode.lifecycle.fields import choice, identifier, integer, sha256_hex, text
from patchledger.chaincode.lifecycle.identity import load_certificate
from patchledger.chaincode.lifecycle.record import Document

MAX_CLOCK_SKEW = 300
MAX_REPORT_AGE = 24 * 3600
MAX_SEQUENCE = (1 << 63) - 1
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
        integer("sequence", self.sequence, minimum=1, maximum=MAX_SEQUENCE)
        sha256_hex("inventory_sha256", self.inventory_sha256)
        integer("reported_at", self.reported_at)
        text("detail", self.detail, optional=True)


@dataclass(frozen=True)
class SignedReport(Signed[HostReport]):
    """A report with its base64 DER signature: ``{"report": {...}, "signature": "..."}``
    (see :class:`~..envelope.Signed`)."""

    BODY = "report"
    DOCUMENT = HostReport

    @property
    def report(self) -> HostReport:
        """The signed report."""
        return self.body


def verify_report(
    signed: SignedReport, host_cert_pem: bytes, *, last_sequence: int, now: int
) -> None:
    """Check a host report (rules in the module docstring).

    Raises:
        SignatureError: forged, altered, high-S, or signed by another host's key.
        ReplayError: sequence not above ``last_sequence``.
        ExpiredError: dated too far in the future or the past, or the host certificate is
            not valid at ``now``.
    """
    report = signed.report
    what = f"report {report.sequence} of host {report.host_id!r}"
    signed.verify_signature(host_cert_pem, what)
    if report.sequence <= last_sequence:
        raise ReplayError(f"{what}: sequence must be above {last_sequence} (replayed?)")
    if report.reported_at > now + MAX_CLOCK_SKEW:
        raise ExpiredError(f"{what}: dated {report.reported_at}, after transaction time {now}")
    if report.reported_at < now - MAX_REPORT_AGE:
        raise ExpiredError(
            f"{what}: dated {report.reported_at}, more than {MAX_REPORT_AGE} s before"
            f" transaction time {now}"
        )
    cert = load_certificate(host_cert_pem, "host certificate")
    if not cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp():
        raise ExpiredError(
            f"{what}: the host certificate is not valid at transaction time {now}"
            f" (valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d})"
        )
