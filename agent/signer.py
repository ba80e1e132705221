"""Checks of an approval statement's signer certificate against the pinned organization roots.

The organization of a signer is decided by who issued its certificate, never by what the
statement claims. Rules, for a statement claiming organization ``O`` and approver ``A``:

1. the agent pinned at least one root of ``O`` at enrollment (fail closed otherwise);
2. the certificate is *directly* issued by one of ``O``'s pinned roots that is valid now (a
   rogue CA with ``O``'s name, another organization's CA, a self-signed certificate: refused;
   when another pinned organization issued it, the error says which);
3. it carries the Fabric CA attribute ``role=approver`` and its enrollment id
   (``hf.EnrollmentID``, else the subject common name) is ``A``;
4. it is valid now. A certificate that expired since it signed is not a forgery: the caller
   does not count its statement (:class:`Stale`), like an expired statement.

Pure: no I/O, time is passed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.identity import Role, certificate_attributes, load_certificate
from patchledger.chaincode.lifecycle.trust import OrgTrust

__all__ = ["Stale", "check_signer", "issuing_organizations"]


@dataclass(frozen=True)
class Stale:
    """A genuine signer whose certificate is outside its validity period now."""

    reason: str


def _valid_at(cert: x509.Certificate, moment: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc


def _issued_by(cert: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def issuing_organizations(
    cert: x509.Certificate, roots: OrgTrust, moment: dt.datetime
) -> tuple[str, ...]:
    """The pinned organizations with a root valid at ``moment`` that directly issued
    ``cert``."""
    return tuple(
        msp
        for msp in sorted(roots.roots)
        if any(_valid_at(root, moment) and _issued_by(cert, root) for root in roots.roots[msp])
    )


def _enrollment_id(cert: x509.Certificate, attrs: dict[str, str]) -> str:
    if attrs.get("hf.EnrollmentID"):
        return attrs["hf.EnrollmentID"]
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def check_signer(
    cert_pem: bytes, msp_id: str, approver: str, roots: OrgTrust, now: int
) -> Stale | None:
    """Check the signer certificate of a statement claiming ``msp_id`` and ``approver``.

    Args:
        cert_pem: the signer's certificate from the bundle.
        msp_id: the organization the statement names.
        approver: the approver the statement names.
        roots: the organization roots pinned at enrollment.
        now: the current time, seconds since the epoch.

    Returns:
        ``None`` when the certificate is fine, a :class:`Stale` when it is genuine but not
        valid now.

    Raises:
        ValueError: with the problem, for every other failure (the caller wraps it with the
            statement's index; rules 1-3 of the module docstring).
    """
    try:
        cert = load_certificate(cert_pem, "signer_cert_pem")
    except ValidationError as exc:
        raise ValueError("the signer certificate is not a PEM X.509 certificate") from exc
    if not roots.roots.get(msp_id):
        raise ValueError(f"no root certificate of {msp_id} was pinned at enrollment")
    moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    issuers = issuing_organizations(cert, roots, moment)
    if msp_id not in issuers:
        issuer = cert.issuer.rfc4514_string() or "(empty)"
        if issuers:
            raise ValueError(
                f"the signer certificate was issued by {', '.join(issuers)}'s root, not by"
                f" {msp_id}'s: an approver of one organization cannot sign in another's name"
            )
        raise ValueError(
            f"the signer certificate was not issued by a pinned root of {msp_id} valid now"
            f" (its issuer: {issuer})"
        )
    try:
        attrs = certificate_attributes(cert)
    except ValidationError as exc:
        raise ValueError("the signer certificate's Fabric CA attributes are malformed") from exc
    if attrs.get("role") != Role.APPROVER:
        raise ValueError(
            f"the signer certificate has role {attrs.get('role', '(none)')!r}, not 'approver'"
        )
    enrollment_id = _enrollment_id(cert, attrs)
    if enrollment_id != approver:
        raise ValueError(
            f"the signer certificate is {enrollment_id!r}'s, not the approver's {approver!r}"
        )
    if not _valid_at(cert, moment):
        return Stale(
            f"the signer certificate is not valid now (valid from"
            f" {cert.not_valid_before_utc.isoformat()} until"
            f" {cert.not_valid_after_utc.isoformat()})"
        )
    return None
