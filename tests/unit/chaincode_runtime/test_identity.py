"""Client identity: Fabric CA attributes from a real certificate, ids, malformed input."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchledger.chaincode.runtime import ClientIdentity, IdentityError
from patchledger.chaincode.runtime.identity import (
    FABRIC_CA_ATTRS_OID,
    distinguished_name,
    parse_fabric_ca_attributes,
)
from tests.support.chaincode_runtime import make_certificate, make_creator


def test_attributes_from_fabric_ca_extension() -> None:
    ca = make_certificate("ca.secops", is_ca=True)
    cert = make_certificate(
        "alice", issuer=ca,
        attrs={"role": "auditor", "hf.EnrollmentID": "alice", "hf.Type": "client"},
    )
    loaded = x509.load_pem_x509_certificate(cert.cert_pem)
    ext = loaded.extensions.get_extension_for_oid(FABRIC_CA_ATTRS_OID).value
    assert isinstance(ext, x509.UnrecognizedExtension)
    assert ext.value.startswith(b'{"attrs"')  # raw JSON, as Fabric CA writes it

    ident = ClientIdentity.from_serialized(make_creator("ComplianceMSP", cert.cert_pem))
    assert ident.msp_id == "ComplianceMSP"
    assert ident.attributes == {"role": "auditor", "hf.EnrollmentID": "alice", "hf.Type": "client"}
    assert ident.get_attribute_value("role") == "auditor"
    assert ident.get_attribute_value("host_id") is None
    assert ident.assert_attribute_value("role", "auditor")
    assert not ident.assert_attribute_value("role", "admin")
    assert ident.certificate.subject == loaded.subject


def test_certificate_without_attributes() -> None:
    cert = make_certificate("peer0", ou="peer")
    ident = ClientIdentity.from_serialized(make_creator("ITOpsMSP", cert.cert_pem))
    assert ident.attributes == {}


def test_id_matches_fabric_format() -> None:
    ca = make_certificate("ca.itops", is_ca=True)
    cert = make_certificate("bob", issuer=ca)
    ident = ClientIdentity.from_serialized(make_creator("ITOpsMSP", cert.cert_pem))
    decoded = base64.b64decode(ident.id).decode()
    assert decoded == (
        "x509::CN=bob,OU=client,O=patchledger,C=US::CN=ca.itops,OU=client,O=patchledger,C=US"
    )


def test_distinguished_name_groups_and_escapes() -> None:
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "org1"),
        x509.NameAttribute(NameOID.COMMON_NAME, "a,b"),
    ])
    assert distinguished_name(name) == "CN=a\\,b,OU=client+OU=org1,C=US"


def _cert_with_raw_extension(raw: bytes) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.UnrecognizedExtension(FABRIC_CA_ATTRS_OID, raw), critical=False)
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'{"other":{}}', b'{"attrs":[1]}'])
def test_malformed_attribute_extension_raises(raw: bytes) -> None:
    with pytest.raises(IdentityError):
        parse_fabric_ca_attributes(_cert_with_raw_extension(raw))


def test_malformed_creator_raises() -> None:
    with pytest.raises(IdentityError):
        ClientIdentity.from_serialized(b"\xff\xff\xff")
    ident = ClientIdentity.from_serialized(make_creator("X", b"not a pem"))
    with pytest.raises(IdentityError):
        _ = ident.attributes
