"""Identities, low-S ECDSA signing, MSP directories."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from patchledger.app.fabric._protos import identities_pb2
from patchledger.app.fabric.errors import IdentityError, SigningError
from patchledger.app.fabric.identity import Identity, parse_serialized_identity
from patchledger.app.fabric.signing import (
    CURVE_ORDERS,
    EcdsaSigner,
    is_low_s,
    to_low_s,
    verify_signature,
)
from tests.support.fabric.pki import TestCA, TestIdentity

N = CURVE_ORDERS["secp256r1"]


def test_creator_is_serialized_identity_with_pem(alice: TestIdentity) -> None:
    sid = identities_pb2.SerializedIdentity.FromString(alice.identity.creator)
    assert sid.mspid == "SecOpsMSP"
    assert sid.id_bytes.startswith(b"-----BEGIN CERTIFICATE-----")
    assert parse_serialized_identity(alice.identity.creator) == ("SecOpsMSP", sid.id_bytes)


def test_identity_exposes_enrollment_id_and_attributes(alice: TestIdentity) -> None:
    assert alice.identity.enrollment_id == "alice"
    assert alice.identity.attributes == {"role": "approver"}


def test_identity_rejects_garbage() -> None:
    with pytest.raises(IdentityError):
        Identity("SecOpsMSP", b"not a certificate")
    with pytest.raises(IdentityError):
        Identity("", b"")


def test_every_signature_is_low_s_and_verifies(alice: TestIdentity) -> None:
    cert = alice.identity.certificate
    for i in range(200):
        message = f"message {i}".encode()
        signature = alice.signer(hashlib.sha256(message).digest())
        assert is_low_s(signature, N)
        assert verify_signature(cert, message, signature)
        # the public key verifies it with a plain (non-prehashed) ECDSA-SHA256 check too
        public_key = cert.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_to_low_s_normalises_high_s_and_keeps_low_s() -> None:
    high = encode_dss_signature(12345, N - 7)
    low = to_low_s(high, N)
    assert decode_dss_signature(low) == (12345, 7)
    assert to_low_s(low, N) == low
    assert not is_low_s(high, N)


def test_high_s_signature_is_refused_like_fabric(alice: TestIdentity) -> None:
    message = b"payload"
    r, s = decode_dss_signature(alice.signer.sign_message(message))
    malleated = encode_dss_signature(r, N - s)
    assert not verify_signature(alice.identity.certificate, message, malleated)
    assert verify_signature(alice.identity.certificate, message, malleated, require_low_s=False)


def test_signer_refuses_non_digest(alice: TestIdentity) -> None:
    with pytest.raises(SigningError):
        alice.signer(b"short")


def test_wrong_key_does_not_verify(alice: TestIdentity) -> None:
    other = EcdsaSigner.generate()
    assert not verify_signature(alice.identity.certificate, b"m", other.sign_message(b"m"))
    assert not other.matches(alice.identity.certificate)
    assert alice.signer.matches(alice.identity.certificate)


def test_load_from_msp_dir(tmp_path: Path, secops_ca: TestCA) -> None:
    bob = secops_ca.issue("bob")
    msp = bob.write_msp_dir(tmp_path / "msp", secops_ca.cert_pem)
    identity = Identity.from_msp_dir(msp, "SecOpsMSP")
    signer = EcdsaSigner.from_msp_dir(msp)
    assert identity == bob.identity
    assert signer.matches(identity.certificate)


def test_msp_dir_errors_are_precise(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="signcerts"):
        Identity.from_msp_dir(tmp_path, "SecOpsMSP")
    with pytest.raises(IdentityError, match="keystore"):
        EcdsaSigner.from_msp_dir(tmp_path)
    (tmp_path / "key.pem").write_bytes(b"junk")
    with pytest.raises(IdentityError, match="invalid private key"):
        EcdsaSigner.from_pem_file(tmp_path / "key.pem")


def test_sec1_and_pkcs8_keys_load(alice: TestIdentity) -> None:
    from cryptography.hazmat.primitives import serialization

    sec1 = alice.signer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert EcdsaSigner.from_pem(sec1).matches(alice.identity.certificate)
    assert EcdsaSigner.from_pem(alice.signer.private_key_pem()).matches(alice.identity.certificate)
