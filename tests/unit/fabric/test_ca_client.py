"""The Fabric CA client against an in-process HTTPS fake CA."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from patchledger.app.fabric.ca_client import CAClient, auth_token, make_csr
from patchledger.app.fabric.ca_models import (
    Attribute,
    AttributeRequest,
    Enrollment,
    RegistrationRequest,
)
from patchledger.app.fabric.errors import CAError
from patchledger.app.fabric.identity import Identity
from patchledger.app.fabric.signing import CURVE_ORDERS, EcdsaSigner, is_low_s, verify_signature
from tests.support.fabric.fake_ca import FakeCA


@pytest.fixture
def fake_ca(tmp_path: Path) -> Iterator[FakeCA]:
    with FakeCA(tmp_path) as server:
        yield server


@pytest.fixture
def client(fake_ca: FakeCA) -> CAClient:
    return CAClient(fake_ca.url, tls_ca_certificate=fake_ca.tls_ca_pem, ca_name="ca")


@pytest.fixture
def admin(client: CAClient) -> Enrollment:
    return client.enroll("admin", "adminpw")


def test_cainfo(client: CAClient, fake_ca: FakeCA) -> None:
    info = client.cainfo()
    assert info.ca_name == "ca"
    assert info.ca_chain == fake_ca.ca.cert_pem
    assert fake_ca.requests[0][1] == "/api/v1/cainfo?ca=ca"


def test_enroll_generates_key_locally(client: CAClient, fake_ca: FakeCA) -> None:
    enrollment = client.enroll("admin", "adminpw")
    identity = enrollment.identity("SecOpsMSP")
    assert identity.enrollment_id == "admin"
    assert enrollment.signer.matches(identity.certificate)
    assert enrollment.ca_chain == fake_ca.ca.cert_pem
    _, _, body = fake_ca.requests[-1]
    assert "PRIVATE" not in str(body)
    assert body["caname"] == "ca"


def test_register_then_enroll_with_attributes(
    client: CAClient, admin: Enrollment, fake_ca: FakeCA, tmp_path: Path
) -> None:
    registrar = admin.identity("SecOpsMSP")
    secret = client.register(
        registrar,
        admin.signer,
        RegistrationRequest(
            "alice",
            affiliation="secops",
            attributes=[Attribute("role", "approver", ecert=True), Attribute("team", "red")],
        ),
    )
    assert secret
    default = client.enroll("alice", secret)
    assert default.identity("SecOpsMSP").attributes == {"role": "approver"}
    requested = client.enroll("alice", secret, attr_reqs=[AttributeRequest("team")])
    assert requested.identity("SecOpsMSP").attributes == {"team": "red"}
    msp = requested.write_msp_dir(tmp_path / "alice-msp")
    assert Identity.from_msp_dir(msp, "SecOpsMSP").credentials == requested.certificate
    assert EcdsaSigner.from_msp_dir(msp).matches(requested.identity("SecOpsMSP").certificate)


def test_tls_profile_with_hosts(client: CAClient, admin: Enrollment) -> None:
    secret = client.register(
        admin.identity("SecOpsMSP"), admin.signer, RegistrationRequest("peer0", type="peer")
    )
    tls = client.enroll("peer0", secret, profile="tls", hosts=["localhost", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(tls.certificate)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]


def test_token_is_low_s_and_covers_method_uri_body(admin: Enrollment) -> None:
    identity = admin.identity("SecOpsMSP")
    for i in range(40):
        body = f'{{"n":{i}}}'.encode()
        token = auth_token("POST", "/api/v1/register", body, identity, admin.signer)
        cert_b64, sig_b64 = token.split(".")
        assert base64.b64decode(cert_b64) == identity.credentials
        signature = base64.b64decode(sig_b64)
        assert is_low_s(signature, CURVE_ORDERS["secp256r1"])
        message = f"POST.{base64.b64encode(b'/api/v1/register').decode()}."
        message += f"{base64.b64encode(body).decode()}.{cert_b64}"
        assert verify_signature(identity.certificate, message.encode(), signature)


def test_errors_carry_ca_codes_and_url(
    client: CAClient, admin: Enrollment, fake_ca: FakeCA
) -> None:
    with pytest.raises(CAError) as info:
        client.enroll("admin", "wrong")
    assert info.value.status == 401
    assert info.value.errors == ((20, "Authentication failure"),)
    assert info.value.url == f"{fake_ca.url}/api/v1/enroll"
    registrar = admin.identity("SecOpsMSP")
    client.register(registrar, admin.signer, RegistrationRequest("bob", secret="pw"))
    with pytest.raises(CAError) as dup:
        client.register(registrar, admin.signer, RegistrationRequest("bob", secret="pw"))
    assert dup.value.errors[0][0] == 74
    assert "already registered" in str(dup.value)
    assert "/api/v1/register" in str(dup.value)


def test_enroll_csr_issues_for_a_key_held_elsewhere(
    client: CAClient, admin: Enrollment, fake_ca: FakeCA
) -> None:
    registrar = admin.identity("SecOpsMSP")
    secret = client.register(registrar, admin.signer, RegistrationRequest(
        "host-7", max_enrollments=1, attributes=[Attribute("role", "host", ecert=True)]))
    holder = EcdsaSigner.generate()  # the host's key: only its CSR reaches the client
    pem = client.enroll_csr("host-7", secret, make_csr("host-7", holder))
    cert = x509.load_pem_x509_certificate(pem)
    assert holder.matches(cert)
    assert Identity.from_certificate("SecOpsMSP", cert).attributes == {"role": "host"}
    _, _, body = fake_ca.requests[-1]
    assert "PRIVATE" not in str(body) and body["caname"] == "ca"
    with pytest.raises(CAError, match="common name"):  # the CA binds CN to the enrollment id
        client.enroll_csr("host-7", secret, make_csr("host-8", EcdsaSigner.generate()))


def test_reenroll_revoke_and_list(client: CAClient, admin: Enrollment) -> None:
    registrar = admin.identity("SecOpsMSP")
    client.register(registrar, admin.signer, RegistrationRequest("host1", secret="pw"))
    host = client.enroll("host1", "pw")
    renewed = client.reenroll(host.identity("SecOpsMSP"), host.signer)
    assert renewed.identity("SecOpsMSP").enrollment_id == "host1"
    assert not renewed.signer.matches(host.identity("SecOpsMSP").certificate)  # new key
    ids = {i.enrollment_id for i in client.list_identities(registrar, admin.signer)}
    assert {"admin", "host1"} <= ids
    client.revoke(registrar, admin.signer, enrollment_id="host1", reason="keycompromise")
    with pytest.raises(CAError) as info:
        client.reenroll(renewed.identity("SecOpsMSP"), renewed.signer)
    assert info.value.status == 401


def test_revoke_needs_a_target(client: CAClient, admin: Enrollment) -> None:
    with pytest.raises(ValueError, match="enrollment id"):
        client.revoke(admin.identity("SecOpsMSP"), admin.signer)


def test_untrusted_tls_is_refused(fake_ca: FakeCA) -> None:
    from tests.support.fabric.pki import TestCA

    other = CAClient(fake_ca.url, tls_ca_certificate=TestCA("X").cert_pem)
    with pytest.raises(CAError, match="cannot reach the CA"):
        other.cainfo()


def test_https_requires_tls_roots() -> None:
    with pytest.raises(CAError, match="TLS certificate"):
        CAClient("https://127.0.0.1:1")
    with pytest.raises(CAError, match="http"):
        CAClient("ftp://x")


def test_csr_cn_is_enrollment_id() -> None:
    csr = x509.load_pem_x509_csr(make_csr("carol", EcdsaSigner.generate()))
    assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "carol"
    assert csr.is_signature_valid
