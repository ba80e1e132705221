"""The transaction creator: MSP id, X.509 certificate and Fabric CA attributes.

Fabric CA writes the attributes it issues into a certificate extension with OID
``1.2.3.4.5.6.7.8.1`` whose raw value is JSON ``{"attrs": {"name": "value", ...}}``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.identity import FABRIC_ATTRS_OID, certificate_attributes
from patchledger.chaincode.runtime._protos import DecodeError, identities_pb2
from patchledger.chaincode.runtime.errors import IdentityError

__all__ = ["FABRIC_CA_ATTRS_OID", "ClientIdentity", "parse_fabric_ca_attributes"]

#: Certificate extension in which Fabric CA stores enrollment attributes.
FABRIC_CA_ATTRS_OID = FABRIC_ATTRS_OID

# Order in which Go's pkix.Name emits the well-known attributes (Fabric's client identity id
# is built from that rendering, most specific attribute first).
_DN_ORDER: tuple[tuple[ObjectIdentifier, str], ...] = (
    (NameOID.COUNTRY_NAME, "C"),
    (NameOID.STATE_OR_PROVINCE_NAME, "ST"),
    (NameOID.LOCALITY_NAME, "L"),
    (NameOID.STREET_ADDRESS, "STREET"),
    (NameOID.POSTAL_CODE, "POSTALCODE"),
    (NameOID.ORGANIZATION_NAME, "O"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
    (NameOID.COMMON_NAME, "CN"),
    (NameOID.SERIAL_NUMBER, "SERIALNUMBER"),
)


def parse_fabric_ca_attributes(cert: x509.Certificate) -> dict[str, str]:
    """Return the Fabric CA attributes carried by ``cert`` (empty if it has none), parsed by
    the chaincode's one parser (:func:`chaincode.lifecycle.identity.certificate_attributes`).

    Raises:
        IdentityError: if the extension exists but is not the expected JSON object.
    """
    try:
        return certificate_attributes(cert)
    except ValidationError as exc:
        raise IdentityError(f"Fabric CA attribute extension: {exc.problem}") from exc


def _escape_dn_value(value: str) -> str:
    """Escape an attribute value the way RFC 4514 asks (special characters, edges)."""
    out = []
    for i, ch in enumerate(value):
        special = ch in ',+"\\<>;' or (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " ")
        out.append("\\" + ch if special else ch)
    return "".join(out)


def distinguished_name(name: x509.Name) -> str:
    """Render ``name`` like Go's ``pkix.Name.String()`` (used by Fabric's identity ids).

    Well-known attributes come in Go's fixed order, reversed (CN first), and several values
    of one attribute form a multi-valued RDN joined by ``+``. Other attributes follow.
    """
    known = {oid for oid, _ in _DN_ORDER}
    rdns: list[str] = []
    for oid, label in _DN_ORDER:
        values = [str(a.value) for a in name.get_attributes_for_oid(oid)]
        if values:
            rdns.append("+".join(f"{label}={_escape_dn_value(v)}" for v in values))
    extras = [
        f"{a.oid.dotted_string}={_escape_dn_value(str(a.value))}"
        for a in name
        if a.oid not in known
    ]
    return ",".join(list(reversed(rdns)) + extras)


@dataclass(frozen=True)
class ClientIdentity:
    """The identity that created (signed) the transaction proposal.

    Attributes:
        msp_id: the creator's MSP id, e.g. ``"SecOpsMSP"``.
        id_bytes: the identity bytes, for X.509 identities the certificate in PEM.
    """

    msp_id: str
    id_bytes: bytes

    @classmethod
    def from_serialized(cls, creator: bytes) -> ClientIdentity:
        """Decode a serialized ``msp.SerializedIdentity`` (the signature header's creator).

        Raises:
            IdentityError: if the bytes are not a SerializedIdentity.
        """
        ident = identities_pb2.SerializedIdentity()
        try:
            ident.ParseFromString(creator)
        except DecodeError as exc:
            raise IdentityError("creator is not a serialized identity") from exc
        return cls(msp_id=ident.mspid, id_bytes=bytes(ident.id_bytes))

    @property
    def cert_pem(self) -> str:
        """The creator's certificate as PEM text."""
        return self.id_bytes.decode("ascii", errors="replace")

    @cached_property
    def certificate(self) -> x509.Certificate:
        """The creator's X.509 certificate.

        Raises:
            IdentityError: if the identity bytes are not a PEM certificate.
        """
        try:
            return x509.load_pem_x509_certificate(self.id_bytes)
        except ValueError as exc:
            raise IdentityError("creator identity is not an X.509 PEM certificate") from exc

    @cached_property
    def attributes(self) -> dict[str, str]:
        """Fabric CA attributes from the certificate (empty if none were issued).

        Raises:
            IdentityError: if the certificate or its attribute extension is malformed.
        """
        return parse_fabric_ca_attributes(self.certificate)

    @cached_property
    def id(self) -> str:
        """A unique id for the identity, compatible with Fabric's Go ``cid.GetID()``.

        It is base64 of ``x509::<subject DN>::<issuer DN>``.

        Raises:
            IdentityError: if the identity is not an X.509 certificate.
        """
        cert = self.certificate
        text = f"x509::{distinguished_name(cert.subject)}::{distinguished_name(cert.issuer)}"
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    def get_attribute_value(self, name: str) -> str | None:
        """Return the attribute ``name`` or ``None`` if the certificate lacks it.

        Raises:
            IdentityError: if the certificate is malformed.
        """
        return self.attributes.get(name)

    def assert_attribute_value(self, name: str, value: str) -> bool:
        """Return True when the attribute ``name`` exists and equals ``value``.

        Raises:
            IdentityError: if the certificate is malformed.
        """
        return self.attributes.get(name) == value
