"""ECDSA signing as Fabric expects it: SHA-256 digests, DER signatures, low S.

A *signer* is any ``Callable[[bytes], bytes]`` taking a digest (SHA-256 of the bytes to sign)
and returning a DER-encoded signature; the Gateway calls it for proposals, transactions and
requests. :class:`EcdsaSigner` is the software implementation. Fabric's verifier rejects a
signature whose ``s`` is above half the curve order, so every signature made here is
normalised to low S, and the Gateway normalises every other signer's output (and offline
signatures) with :func:`normalise_for`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509 import Certificate

from patchledger.app.fabric.errors import IdentityError, SigningError

#: A signer takes a digest and returns a DER signature over it.
Signer = Callable[[bytes], bytes]
#: A hash function from message to digest (SHA-256 for every Fabric MSP of the SHA2 family).
HashFn = Callable[[bytes], bytes]

CURVE_ORDERS: dict[str, int] = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


def sha256(message: bytes) -> bytes:
    """Return the SHA-256 digest of ``message`` (the default hash)."""
    return hashlib.sha256(message).digest()


def curve_order(curve: ec.EllipticCurve) -> int:
    """Return the order of a supported curve.

    Raises:
        SigningError: the curve is neither P-256 nor P-384.
    """
    try:
        return CURVE_ORDERS[curve.name]
    except KeyError:
        raise SigningError(f"unsupported curve {curve.name}") from None


def to_low_s(signature: bytes, order: int) -> bytes:
    """Return ``signature`` (DER) with ``s`` replaced by ``n - s`` when ``s > n/2``."""
    r, s = decode_dss_signature(signature)
    if s > order >> 1:
        return encode_dss_signature(r, order - s)
    return signature


def normalise_for(certificate: Certificate, signature: bytes) -> bytes:
    """Return ``signature`` in the low-S form Fabric requires, for ``certificate``'s key.

    Signatures from any signer (a custom callable, an HSM, an offline signing step) pass
    through here before they are sent: the curve order comes from the certificate's EC key.
    A certificate whose key is not EC (Ed25519 MSPs of Fabric 3) leaves the signature as is.

    Raises:
        SigningError: the signature is not a DER ECDSA signature, or the curve is unsupported.
    """
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return signature
    order = curve_order(key.curve)
    try:
        return to_low_s(signature, order)
    except ValueError as exc:
        raise SigningError(f"the signature is not a DER-encoded ECDSA signature: {exc}") from exc


def is_low_s(signature: bytes, order: int) -> bool:
    """Tell whether a DER signature has ``s <= n/2``, as Fabric requires."""
    _, s = decode_dss_signature(signature)
    return s <= order >> 1


class EcdsaSigner:
    """Signs digests with an ECDSA private key, returning low-S DER signatures.

    Instances are callables, usable wherever a :data:`Signer` is expected.
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._key = private_key
        self._order = curve_order(private_key.curve)
        # Fabric hashes with SHA-256 for the SHA2 family whatever the key size.
        self._algorithm = ec.ECDSA(Prehashed(hashes.SHA256()))

    @classmethod
    def generate(cls) -> EcdsaSigner:
        """Create a signer with a fresh P-256 key."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, data: bytes, password: bytes | None = None) -> EcdsaSigner:
        """Load a PEM private key (PKCS#8 or SEC1).

        Raises:
            IdentityError: the data is not an EC private key.
        """
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"invalid private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise IdentityError("the private key is not an ECDSA key")
        return cls(key)

    @classmethod
    def from_pem_file(cls, path: str | Path) -> EcdsaSigner:
        """Load a PEM private key file.

        Raises:
            IdentityError: the file cannot be read or holds no EC private key.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise IdentityError(f"cannot read private key {path}: {exc}") from exc
        return cls.from_pem(data)

    @classmethod
    def from_msp_dir(cls, path: str | Path) -> EcdsaSigner:
        """Load the key of an MSP directory: the single ``keystore/*_sk`` file.

        Raises:
            IdentityError: no key, several keys, or an invalid key.
        """
        keystore = Path(path) / "keystore"
        files = sorted(p for p in keystore.glob("*_sk") if p.is_file()) if keystore.is_dir() else []
        if len(files) != 1:
            raise IdentityError(f"{keystore}: expected exactly one *_sk key, found {len(files)}")
        return cls.from_pem_file(files[0])

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """The private key."""
        return self._key

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key."""
        return self._key.public_key()

    def private_key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (as fabric-ca-client writes it)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __call__(self, digest: bytes) -> bytes:
        """Sign a 32-byte SHA-256 digest; returns a low-S DER signature.

        Raises:
            SigningError: the digest is not 32 bytes long.
        """
        if len(digest) != 32:
            raise SigningError(f"expected a 32-byte SHA-256 digest, got {len(digest)} bytes")
        return to_low_s(self._key.sign(digest, self._algorithm), self._order)

    def sign_message(self, message: bytes) -> bytes:
        """Hash ``message`` with SHA-256 and sign the digest."""
        return self(sha256(message))

    def matches(self, certificate: Certificate) -> bool:
        """Tell whether this key is the private half of ``certificate``'s public key."""
        cert_key = certificate.public_key()
        return isinstance(cert_key, ec.EllipticCurvePublicKey) and (
            cert_key.public_numbers() == self.public_key.public_numbers()
        )


def verify_signature(
    certificate: Certificate, message: bytes, signature: bytes, *, require_low_s: bool = True
) -> bool:
    """Verify a Fabric ECDSA signature over SHA-256(``message``) with a certificate's key.

    Returns False (never raises) for a wrong signature, a malformed one, a non-EC key, or,
    when ``require_low_s``, a high-S signature that Fabric would reject.
    """
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        if require_low_s and not is_low_s(signature, curve_order(key.curve)):
            return False
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, SigningError):
        return False
    return True
