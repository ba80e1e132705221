"""Signed statements and host reports: forged, altered, expired, replayed and high-S refused."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from patchledger.chaincode.lifecycle import (
    AuthorizationError,
    ExpiredError,
    ReplayError,
    SignatureError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.host_report import MAX_CLOCK_SKEW, SignedReport, verify_report
from patchledger.chaincode.lifecycle.identity import (
    caller_from_certificate,
    certificate_attributes,
    load_certificate,
)
from patchledger.chaincode.lifecycle.signatures import (
    HALF_ORDER,
    P256_ORDER,
    decode_b64,
    sign,
    to_low_s,
    verify,
)
from patchledger.chaincode.lifecycle.statement import SignedStatement, verify_statement
from tests.unit.lifecycle.lifecycle_support import (
    ARTIFACT,
    NOW,
    SECOPS,
    host_identity,
    identity,
    make_certificate,
    report,
    statement,
    who,
)

APPROVER = who(SECOPS, "approver")
VALIDITY = 30 * 86_400


def check(signed: dict[str, Any], cert: bytes = APPROVER.cert_pem, **kw: Any) -> None:
    args: dict[str, Any] = {
        "patch_id": "P-1",
        "artifact_sha256": ARTIFACT,
        "now": NOW,
        "max_validity": VALIDITY,
    }
    args.update(kw)
    verify_statement(SignedStatement.from_dict(signed), cert, **args)


def high_s(signature_b64: str) -> str:
    r, s = decode_dss_signature(base64.b64decode(signature_b64))
    assert s <= HALF_ORDER
    return base64.b64encode(encode_dss_signature(r, P256_ORDER - s)).decode()


def test_genuine_statement_verifies() -> None:
    check(statement(APPROVER))


def test_high_s_twin_of_a_valid_signature_is_refused() -> None:
    signed = statement(APPROVER)
    signed["signature"] = high_s(signed["signature"])
    with pytest.raises(SignatureError, match="high S"):
        check(signed)


def test_sign_always_produces_low_s() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for i in range(20):
        _, s = decode_dss_signature(sign(key, b"payload %d" % i))
        assert s <= HALF_ORDER
    r, s = decode_dss_signature(key.sign(b"x", ec.ECDSA(hashes.SHA256())))
    high = encode_dss_signature(r, max(s, P256_ORDER - s))
    assert decode_dss_signature(to_low_s(high))[1] == min(s, P256_ORDER - s)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("decision", "reject"),
        ("expires_at", NOW + 2 * 86_400),
        ("comment", "edited"),
        ("artifact_sha256", "ef" * 32),
        ("patch_id", "P-2"),
    ],
)
def test_altered_statement_is_refused(field: str, value: Any) -> None:
    signed = statement(APPROVER)
    signed["statement"][field] = value
    with pytest.raises(SignatureError):
        check(
            signed,
            patch_id=signed["statement"]["patch_id"],
            artifact_sha256=signed["statement"]["artifact_sha256"],
        )


def test_statement_verified_with_another_certificate_is_refused() -> None:
    with pytest.raises(SignatureError, match="does not verify"):
        check(statement(APPROVER), cert=who(SECOPS, "operator").cert_pem)


@pytest.mark.parametrize(("patch_id", "artifact"), [("P-2", ARTIFACT), ("P-1", "aa" * 32)])
def test_statement_is_bound_to_patch_and_artifact(patch_id: str, artifact: str) -> None:
    with pytest.raises(SignatureError, match="bound to"):
        check(statement(APPROVER), patch_id=patch_id, artifact_sha256=artifact)


def test_expired_and_overlong_statements_are_refused() -> None:
    with pytest.raises(ExpiredError, match="expired"):
        check(statement(APPROVER, expires_at=NOW))
    with pytest.raises(ExpiredError, match="longer"):
        check(statement(APPROVER, expires_at=NOW + VALIDITY + 1))


@pytest.mark.parametrize("signature", ["!!!not base64", base64.b64encode(b"\x30\x02junk").decode()])
def test_malformed_signatures_are_refused(signature: str) -> None:
    signed = statement(APPROVER)
    signed["signature"] = signature
    with pytest.raises(SignatureError):
        check(signed)


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"statement": {"record_type": "HostReport"}, "signature": "x"},
        {"statement": {"record_type": "ApprovalStatement"}, "signature": ""},
    ],
)
def test_malformed_envelopes_are_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SignedStatement.from_dict(broken)
    with pytest.raises(ValidationError):
        SignedReport.from_dict({"report": broken.get("statement"), "signature": ""})


def test_rsa_certificate_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = make_certificate(key, "rsa", {"role": "approver"})
    with pytest.raises(SignatureError, match="P-256"):
        verify(pem, b"x", b"y", "test")
    with pytest.raises(ValidationError, match="PEM"):
        verify(b"not a cert", b"x", b"y", "test")


def test_identity_attributes() -> None:
    pem = make_certificate(APPROVER.key, "plain", {"hf.EnrollmentID": "alice", "role": "feed"})
    assert caller_from_certificate("X", pem).name == "alice"
    with pytest.raises(AuthorizationError):
        caller_from_certificate("X", make_certificate(APPROVER.key, "n", {"role": "boss"}))
    bare = identity(SECOPS, "auditor").cert_pem
    assert certificate_attributes(load_certificate(bare))["role"] == "auditor"


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=200))
def test_any_single_byte_change_of_a_report_breaks_it(noise: bytes, position: int) -> None:
    host = host_identity("ITOpsMSP", "h1")
    signed = SignedReport.from_dict(report(host, 5))
    payload = bytearray(signed.report.to_json())
    position %= len(payload)
    payload[position] ^= noise[0] or 1
    with pytest.raises(SignatureError):
        verify(host.cert_pem, bytes(payload), decode_b64(signed.signature, "r"), "report")


def test_reports_replayed_forged_or_from_the_future_are_refused() -> None:
    h1, h2 = host_identity("ITOpsMSP", "h1"), host_identity("ITOpsMSP", "h2")
    good = SignedReport.from_dict(report(h1, 3))
    verify_report(good, h1.cert_pem, last_sequence=2, now=NOW)
    with pytest.raises(ReplayError):
        verify_report(good, h1.cert_pem, last_sequence=3, now=NOW)
    with pytest.raises(SignatureError):
        verify_report(good, h2.cert_pem, last_sequence=0, now=NOW)
    late = SignedReport.from_dict(report(h1, 4, reported_at=NOW + MAX_CLOCK_SKEW + 1))
    with pytest.raises(ExpiredError):
        verify_report(late, h1.cert_pem, last_sequence=0, now=NOW)
    swapped = dataclasses.replace(good, body=good.report.evolve(sequence=9))
    with pytest.raises(SignatureError):
        verify_report(swapped, h1.cert_pem, last_sequence=0, now=NOW)
