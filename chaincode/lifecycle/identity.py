"""Callers and their identities: MSP id, role attribute, certificate.

The contract layer builds a :class:`Caller` from the transaction creator (MSP id and the PEM
certificate that Fabric already validated against the organization's MSP). Roles and host ids
come from the Fabric CA attribute extension (OID 1.2.3.4.5.6.7.8.1), a JSON object
``{"attrs": {"role": "approver", "hf.EnrollmentID": "alice", ...}}`` embedded in certificates
issued with ``--enrollment.attrs`` / registered with ``ecert`` attributes.
:func:`certificate_attributes` is the chaincode's one parser of that extension (the runtime's
``ClientIdentity.attributes`` uses it too).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import NameOID

from patchledger.chaincode.lifecycle.errors import AuthorizationError, ValidationError

FABRIC_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


class Role(StrEnum):
    """The ``role`` attribute values the lifecycle knows."""

    ADMIN = "admin"
    APPROVER = "approver"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    FEED = "feed"
    HOST = "host"


@dataclass(frozen=True)
class Caller:
    """The identity behind a transaction.

    Attributes:
        msp_id: the creator's organization (MSP id).
        role: the ``role`` attribute of the creator's certificate.
        name: the enrollment id (``hf.EnrollmentID``, else the subject common name).
        cert_pem: the creator's certificate, PEM; signatures of statements are checked with it.
        host_id: the ``host_id`` attribute, for host identities.
    """

    msp_id: str
    role: Role
    name: str
    cert_pem: bytes = b""
    host_id: str = ""


@functools.lru_cache(maxsize=4096)
def _parse_pem(cert_pem: bytes) -> x509.Certificate:
    # Certificates are immutable: a host's certificate is parsed once per process, not once
    # per report (failures are not cached).
    return x509.load_pem_x509_certificate(cert_pem)


def load_certificate(cert_pem: bytes, field: str = "certificate") -> x509.Certificate:
    """Parse a PEM certificate (cached per process by its bytes).

    Raises:
        ValidationError: not a PEM certificate.
    """
    try:
        return _parse_pem(cert_pem)
    except (ValueError, TypeError) as exc:
        raise ValidationError(field, "is not a PEM X.509 certificate") from exc


def certificate_attributes(cert: x509.Certificate) -> dict[str, str]:
    """The Fabric CA attributes embedded in ``cert`` (empty when it has none).

    Raises:
        ValidationError: the extension is present but is not a JSON object with an
            ``attrs`` object, or the certificate's extensions cannot be parsed.
    """
    try:
        ext = cert.extensions.get_extension_for_oid(FABRIC_ATTRS_OID)
    except x509.ExtensionNotFound:
        return {}
    except ValueError as exc:
        raise ValidationError("certificate.extensions", "cannot be parsed") from exc
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("certificate.attrs", "is not Fabric CA attribute JSON") from exc
    attrs = doc.get("attrs") if isinstance(doc, dict) else None
    if not isinstance(attrs, dict):
        raise ValidationError(
            "certificate.attrs", "is not Fabric CA attribute JSON (no 'attrs' object)"
        )
    return {str(k): str(v) for k, v in attrs.items()}


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def caller_from_certificate(msp_id: str, cert_pem: bytes) -> Caller:
    """Build a :class:`Caller` from a transaction creator.

    Raises:
        ValidationError: the certificate cannot be parsed.
        AuthorizationError: the certificate carries no known ``role`` attribute.
    """
    cert = load_certificate(cert_pem, "creator")
    attrs = certificate_attributes(cert)
    try:
        role = Role(attrs.get("role", ""))
    except ValueError as exc:
        raise AuthorizationError(f"creator of {msp_id} has no recognised role attribute") from exc
    name = attrs.get("hf.EnrollmentID") or _common_name(cert)
    return Caller(msp_id, role, name, cert_pem, attrs.get("host_id", ""))
