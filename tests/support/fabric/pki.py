"""A throw-away certificate authority issuing Fabric-like identities for tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchledger.app.fabric.identity import Identity
from patchledger.app.fabric.signing import EcdsaSigner

_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


@dataclass(frozen=True)
class TestIdentity:
    """An issued identity with its signer."""

    __test__ = False  # not a pytest test class

    identity: Identity
    signer: EcdsaSigner

    @property
    def msp_id(self) -> str:
        """The identity's MSP id."""
        return self.identity.msp_id

    def write_msp_dir(self, path: Path, ca_cert_pem: bytes | None = None) -> Path:
        """Write ``signcerts/cert.pem`` and ``keystore/<ski>_sk`` like fabric-ca-client."""
        (path / "signcerts").mkdir(parents=True, exist_ok=True)
        (path / "keystore").mkdir(parents=True, exist_ok=True)
        (path / "signcerts" / "cert.pem").write_bytes(self.identity.credentials)
        (path / "keystore" / "0a1b2c_sk").write_bytes(self.signer.private_key_pem())
        if ca_cert_pem is not None:
            (path / "cacerts").mkdir(exist_ok=True)
            (path / "cacerts" / "ca.pem").write_bytes(ca_cert_pem)
        return path


class TestCA:
    """A self-signed P-256 root that issues leaf certificates for one MSP."""

    __test__ = False

    def __init__(self, msp_id: str, common_name: str = "") -> None:
        self.msp_id = msp_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or f"ca.{msp_id}")])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        """The root certificate in PEM form."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        *,
        attrs: dict[str, str] | None = None,
        hosts: tuple[str, ...] = (),
        ou: str = "client",
    ) -> TestIdentity:
        """Issue a leaf certificate with a fresh key."""
        signer = EcdsaSigner.generate()
        cert = self.sign_public_key(signer.public_key, common_name, attrs=attrs, hosts=hosts, ou=ou)
        return TestIdentity(Identity.from_certificate(self.msp_id, cert), signer)

    def sign_public_key(
        self,
        public_key: ec.EllipticCurvePublicKey,
        common_name: str,
        *,
        attrs: dict[str, str] | None = None,
        hosts: tuple[str, ...] = (),
        ou: str = "client",
    ) -> x509.Certificate:
        """Issue a certificate for an existing public key."""

        now = dt.datetime.now(dt.UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
        )
        if attrs:
            value = json.dumps({"attrs": attrs}).encode()
            builder = builder.add_extension(x509.UnrecognizedExtension(_ATTRS_OID, value), False)
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
        return builder.sign(self.key, hashes.SHA256())
