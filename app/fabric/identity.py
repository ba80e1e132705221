"""X.509 identities as Fabric serialises them.

An identity is an MSP id plus the PEM bytes of the enrolment certificate. Its serialised form,
``msp.SerializedIdentity{mspid, id_bytes}``, is the *creator* that appears in every signed
header, in commit-status and chaincode-event requests, and in the transaction-id input.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from patchledger.app.fabric._protos import identities_pb2
from patchledger.app.fabric.errors import IdentityError

_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


@dataclass(frozen=True)
class Identity:
    """An X.509 identity of a Fabric MSP.

    Attributes:
        msp_id: the MSP id, e.g. ``SecOpsMSP``.
        credentials: the certificate in PEM form (peers expect PEM, not DER).
    """

    msp_id: str
    credentials: bytes

    def __post_init__(self) -> None:
        if not self.msp_id:
            raise IdentityError("an identity needs a non-empty MSP id")
        load_certificate(self.credentials)  # validates

    @classmethod
    def from_certificate(cls, msp_id: str, certificate: x509.Certificate) -> Identity:
        """Build an identity from a parsed certificate."""
        return cls(msp_id, certificate.public_bytes(serialization.Encoding.PEM))

    @classmethod
    def from_pem_file(cls, msp_id: str, path: str | Path) -> Identity:
        """Load an identity from a PEM certificate file.

        Raises:
            IdentityError: the file is missing or holds no valid certificate.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise IdentityError(f"cannot read certificate {path}: {exc}") from exc
        return cls(msp_id, _first_pem_certificate(data, str(path)))

    @classmethod
    def from_msp_dir(cls, path: str | Path, msp_id: str) -> Identity:
        """Load the identity of an MSP directory as written by ``fabric-ca-client enroll``.

        The certificate is the single file in ``signcerts/``.

        Raises:
            IdentityError: ``signcerts/`` is missing, empty, ambiguous or invalid.
        """
        signcerts = Path(path) / "signcerts"
        files = sorted(p for p in signcerts.glob("*") if p.is_file()) if signcerts.is_dir() else []
        if len(files) != 1:
            raise IdentityError(
                f"{signcerts}: expected exactly one certificate file, found {len(files)}"
            )
        return cls.from_pem_file(msp_id, files[0])

    @functools.cached_property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate."""
        return load_certificate(self.credentials)

    @functools.cached_property
    def creator(self) -> bytes:
        """The serialised ``msp.SerializedIdentity`` used as creator in every header."""
        return serialize_identity(self.msp_id, self.credentials)

    @property
    def enrollment_id(self) -> str:
        """The certificate's subject common name (the CA enrolment id)."""
        names = self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    @property
    def attributes(self) -> dict[str, str]:
        """Fabric CA attributes carried by the certificate (extension 1.2.3.4.5.6.7.8.1)."""
        return certificate_attributes(self.certificate)


def serialize_identity(msp_id: str, credentials: bytes) -> bytes:
    """Serialise ``msp.SerializedIdentity{mspid, id_bytes}``."""
    return bytes(
        identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=credentials).SerializeToString()
    )


def parse_serialized_identity(creator: bytes) -> tuple[str, bytes]:
    """Parse a serialised identity into ``(msp_id, certificate PEM)``.

    Raises:
        IdentityError: the bytes are not a SerializedIdentity.
    """
    try:
        sid = identities_pb2.SerializedIdentity.FromString(creator)
    except Exception as exc:  # protobuf raises DecodeError
        raise IdentityError(f"malformed serialized identity: {exc}") from exc
    return str(sid.mspid), bytes(sid.id_bytes)


def load_certificate(data: bytes) -> x509.Certificate:
    """Parse a PEM (or DER) certificate.

    Raises:
        IdentityError: the data is not a certificate.
    """
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise IdentityError(f"invalid certificate: {exc}") from exc


def certificate_attributes(cert: x509.Certificate) -> dict[str, str]:
    """Return the Fabric CA attributes of a certificate (empty when it carries none)."""

    try:
        ext = cert.extensions.get_extension_for_oid(_ATTRS_OID)
    except x509.ExtensionNotFound:
        return {}
    raw = ext.value
    data = raw.value if isinstance(raw, x509.UnrecognizedExtension) else b""
    try:
        attrs = json.loads(data).get("attrs", {})
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in attrs.items()} if isinstance(attrs, dict) else {}


def _first_pem_certificate(data: bytes, origin: str) -> bytes:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise IdentityError(f"{origin}: no valid PEM certificate: {exc}") from exc
    return certs[0].public_bytes(serialization.Encoding.PEM)
