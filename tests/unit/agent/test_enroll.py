"""Enrollment against the local test app: the key is made here with mode 0600 and only a CSR
leaves; roots are pinned only when a fingerprint (or the attested-roots verifier) confirms
them, before the token is spent; reused, expired and unknown tokens are refused; a
certificate for another key, host or role, or from another CA is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from patchledger.agent.enroll import (
    EnrollmentError,
    RootsVerifier,
    attested_roots,
    build_csr,
    enroll,
    fingerprint,
    load_enrollment,
    load_or_create_key,
    parse_fingerprints,
)
from patchledger.agent.transport import Transport, client_context
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from tests.unit.agent import app_server
from tests.unit.agent.app_server import MSP, AppServer, running
from tests.unit.agent.attestation_support import CHAINCODE, CHANNEL
from tests.unit.lifecycle.lifecycle_support import ORGS, SECOPS, TRUST


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[AppServer, Path]]:
    with running(tmp_path) as (srv, ca):
        srv.state.tokens["tok-1"] = time.time() + 600
        yield srv, ca


def fingerprints_of(srv: AppServer, *, own_only: bool = False) -> dict[str, str]:
    pki = srv.state.pki
    fps = {"": fingerprint(x509.load_pem_x509_certificate(pki.org_ca.cert_pem))}
    if not own_only:
        fps.update({m: fingerprint(x509.load_pem_x509_certificate(p))
                    for m, p in pki.other_roots.items()})
    return fps


def do_enroll(server: tuple[AppServer, Path], state: Path, *, token: str = "tok-1",
              host_id: str = "web-01", **kwargs):
    srv, ca = server
    kwargs.setdefault("fingerprints", fingerprints_of(srv))
    return enroll(Transport(srv.url, client_context(ca)), host_id=host_id, token=token,
                  state_dir=state, tls_ca_pem=ca.read_bytes(), now=int(time.time()), **kwargs)


def test_enrollment_stores_a_local_key_a_checked_certificate_and_pinned_roots(
    server, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    enrolled = do_enroll(server, state)
    assert (enrolled.host_id, enrolled.msp_id) == ("web-01", MSP)
    assert (state / "host.key").stat().st_mode & 0o777 == 0o600
    assert enrolled.roots.organizations == ("ComplianceMSP", "ITOpsMSP", "SecOpsMSP")
    srv, _ = server
    sent = b"".join(srv.state.bodies) + str(srv.state.requests).encode()
    assert b"PRIVATE KEY" not in sent  # only the CSR left the host
    assert b"CERTIFICATE REQUEST" in sent
    assert load_enrollment(state).certificate == enrolled.certificate
    # the stored identity works for mutual TLS at once
    context = client_context(state / "tls-ca.pem", enrolled.cert_file, enrolled.key_file)
    answer = Transport(srv.url, context).request("GET", "/api/v1/agent/poll")
    assert answer.status == 200
    assert srv.state.requests[-1][3] == "web-01"


def test_a_reused_token_is_refused_and_logged(server, tmp_path: Path) -> None:
    do_enroll(server, tmp_path / "a")
    with pytest.raises(EnrollmentError, match="token already used"):
        do_enroll(server, tmp_path / "b", host_id="web-02")
    assert "reused token for web-02" in server[0].state.log
    assert not (tmp_path / "b" / "enrollment.json").exists()


def test_an_expired_or_unknown_token_is_refused(server, tmp_path: Path) -> None:
    server[0].state.tokens["old"] = time.time() - 1
    with pytest.raises(EnrollmentError, match="unknown or expired"):
        do_enroll(server, tmp_path / "a", token="old")
    with pytest.raises(EnrollmentError, match="unknown or expired"):
        do_enroll(server, tmp_path / "b", token="never-issued")


def test_a_wrong_fingerprint_refuses_before_the_token_is_spent(server, tmp_path: Path) -> None:
    fps = fingerprints_of(server[0])
    fps[""] = "sha256:" + "0" * 64
    with pytest.raises(EnrollmentError, match=r"ITOpsMSP's root .* not the sha256:0000"):
        do_enroll(server, tmp_path / "a", fingerprints=fps)
    assert "tok-1" not in server[0].state.used_tokens
    assert not (tmp_path / "a" / "host.key").exists()
    do_enroll(server, tmp_path / "b")  # the token still works


def test_roots_without_fingerprint_or_attestation_are_not_pinned(server, tmp_path) -> None:
    with pytest.raises(EnrollmentError, match="ComplianceMSP, SecOpsMSP are confirmed neither"):
        do_enroll(server, tmp_path / "a", fingerprints=fingerprints_of(server[0], own_only=True))
    assert "tok-1" not in server[0].state.used_tokens


@pytest.fixture
def attested(tmp_path: Path) -> Iterator[tuple[AppServer, Path]]:
    with running(tmp_path, app_server.ledger_pki()) as (srv, ca):
        srv.state.tokens["tok-1"] = time.time() + 600
        srv.state.attest_roots = app_server.roots_attestation
        yield srv, ca


def admins_verifier(fp: str = "") -> RootsVerifier:
    return attested_roots(fingerprint=fp or roots_fingerprint(TRUST), channel=CHANNEL,
                          chaincode=CHAINCODE, now=int(time.time()))


def test_the_attested_roots_are_pinned_with_the_admins_fingerprint(attested, tmp_path) -> None:
    enrolled = do_enroll(attested, tmp_path / "a", fingerprints={},
                         verifier=admins_verifier())
    assert enrolled.roots.organizations == tuple(sorted(ORGS))
    assert all(enrolled.roots.roots[m] == TRUST.roots[m] for m in ORGS)
    assert load_enrollment(tmp_path / "a").roots.organizations == tuple(sorted(ORGS))


def test_roots_substituted_by_the_app_are_refused(attested, tmp_path: Path) -> None:
    srv, _ = attested
    srv.state.pki.other_roots[SECOPS] = app_server.make_pki().org_ca.cert_pem
    with pytest.raises(EnrollmentError, match="other roots of SecOpsMSP than the peers attest"):
        do_enroll(attested, tmp_path / "a", fingerprints={}, verifier=admins_verifier())
    assert "tok-1" not in srv.state.used_tokens


def test_another_fingerprint_or_a_replayed_attestation_is_refused(attested, tmp_path) -> None:
    srv, _ = attested
    with pytest.raises(EnrollmentError, match="does not verify: the attested roots have"):
        do_enroll(attested, tmp_path / "a", fingerprints={},
                  verifier=admins_verifier("0" * 64))
    old = app_server.roots_attestation("b" * 64)
    srv.state.attest_roots = lambda nonce: old  # a genuine bundle, for another nonce
    with pytest.raises(EnrollmentError, match="does not verify"):
        do_enroll(attested, tmp_path / "b", fingerprints={}, verifier=admins_verifier())
    srv.state.attest_roots = None
    with pytest.raises(EnrollmentError, match="served no attestation"):
        do_enroll(attested, tmp_path / "c", fingerprints={}, verifier=admins_verifier())
    assert "tok-1" not in srv.state.used_tokens


def test_a_certificate_from_another_ca_is_refused(server, tmp_path: Path, monkeypatch) -> None:
    rogue = app_server.make_pki().org_ca
    real = app_server.issue_host_certificate
    monkeypatch.setattr(app_server, "issue_host_certificate",
                        lambda ca, csr, host: real(rogue, csr, host))
    with pytest.raises(EnrollmentError, match="not issued by ITOpsMSP's verified root"):
        do_enroll(server, tmp_path / "a")
    assert not (tmp_path / "a" / "enrollment.json").exists()


def test_the_key_is_reused_after_a_failed_attempt_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "state" / "host.key"
    key = load_or_create_key(path)
    again = load_or_create_key(path)
    assert key.private_numbers() == again.private_numbers()
    path.chmod(0o644)
    with pytest.raises(EnrollmentError, match="mode 644; it must be 0600"):
        load_or_create_key(path)


def test_the_csr_names_the_host_and_carries_our_key(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "k")
    csr = x509.load_pem_x509_csr(build_csr(key, "db-7"))
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=db-7"
    assert csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert b"PRIVATE" not in build_csr(key, "db-7")


def test_enrolling_twice_and_bad_host_ids_are_refused(server, tmp_path: Path) -> None:
    do_enroll(server, tmp_path / "a")
    server[0].state.tokens["tok-2"] = time.time() + 600
    with pytest.raises(EnrollmentError, match="already holds an enrollment"):
        do_enroll(server, tmp_path / "a", token="tok-2")
    with pytest.raises(EnrollmentError, match="host id"):
        do_enroll(server, tmp_path / "b", token="tok-2", host_id="../etc")


def test_fingerprint_options() -> None:
    fp = "sha256:" + "ab" * 32
    assert parse_fingerprints([fp, f"SecOpsMSP={fp.upper()}"]) == {"": fp, "SecOpsMSP": fp}
    with pytest.raises(EnrollmentError, match="not \\[MSP=\\]sha256"):
        parse_fingerprints(["md5:abc"])


def test_not_enrolled_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnrollmentError, match="not enrolled"):
        load_enrollment(tmp_path)
