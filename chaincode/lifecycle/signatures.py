"""ECDSA P-256 / SHA-256 signatures over canonical JSON, with Fabric's low-S rule.

Fabric refuses ECDSA signatures whose S value is above half the curve order (every valid
signature has a "high-S" twin; accepting both would make signatures malleable). The same rule
applies here: :func:`verify` refuses high-S signatures, and :func:`sign` always produces
low-S ones. Signatures are DER-encoded ``(r, s)`` pairs, carried base64-encoded in JSON.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from patchledger.chaincode.lifecycle.errors import SignatureError
from patchledger.chaincode.lifecycle.identity import load_certificate

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
HALF_ORDER = P256_ORDER >> 1


def to_low_s(signature: bytes) -> bytes:
    """Rewrite a DER signature so that S is in the lower half of the order."""
    r, s = decode_dss_signature(signature)
    if s > HALF_ORDER:
        s = P256_ORDER - s
    return encode_dss_signature(r, s)


def sign(private_key: ec.EllipticCurvePrivateKey, payload: bytes) -> bytes:
    """Sign ``payload`` with ECDSA/SHA-256; the DER signature is always low-S."""
    return to_low_s(private_key.sign(payload, ec.ECDSA(hashes.SHA256())))


def decode_b64(value: str, what: str) -> bytes:
    """Decode standard base64.

    Raises:
        SignatureError: not valid base64.
    """
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"{what}: signature is not valid base64") from exc


def encode_b64(value: bytes) -> str:
    """Standard base64 text of ``value``."""
    return base64.b64encode(value).decode("ascii")


def public_key_of(cert_pem: bytes, what: str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key of a PEM certificate.

    Raises:
        ValidationError: not a PEM certificate.
        SignatureError: the key is not an EC P-256 key, or cannot be read at all (an unknown key
            type or curve, a malformed point: the certificate parses, its key does not).
    """
    cert = load_certificate(cert_pem, f"{what}.certificate")
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"{what}: certificate key cannot be read ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SignatureError(f"{what}: certificate key is not ECDSA P-256")
    return key


def verify(cert_pem: bytes, payload: bytes, signature: bytes, what: str) -> None:
    """Check that ``signature`` over ``payload`` was made with the key of ``cert_pem``.

    Raises:
        ValidationError: the certificate is not PEM.
        SignatureError: malformed DER, high S, wrong key or altered payload.
    """
    key = public_key_of(cert_pem, what)
    try:
        _, s = decode_dss_signature(signature)
    except ValueError as exc:
        raise SignatureError(f"{what}: signature is not a DER ECDSA signature") from exc
    if s > HALF_ORDER:
        raise SignatureError(f"{what}: signature has a high S value (not canonical)")
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureError(f"{what}: signature does not verify") from exc
