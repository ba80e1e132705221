"""Fuzzing the org app's agent protocol (issue 17, "Fuzzing"; docs/agent.md): mutated
requests to every endpoint under ``/api/v1/agent`` of a real app (SQLite, the dispatcher's
board with an order for the host, an artifact in the store; no peer or CA, so the ledger-backed
steps answer a clean 503 naming what is missing).

Each example starts from a valid request of a drawn endpoint (valid headers: a fresh nonce,
the time, the host certificate as the TLS-terminating proxy passes it) and mutates it: a
protocol header replaced (nonce, time, certificate, ``If-None-Match``, ``Range``,
``Content-Type``) by hostile text, a byte mutation of its valid value, or a bad certificate
(another CA's, self-signed with host attributes, expired, a user's, a host id the protocol
forbids, a certificate PEM cut short or with garbage); the JSON body mutated structurally
(tests/reliability/mutations.py: wrong types, deletions, deep nesting, huge numbers, lone
surrogates) or by bytes; the path's artifact digest replaced. Deterministic cases add replays,
huge bodies (over the app's upload cap, and a deeply nested 8 MiB document) and every bad
certificate on every host endpoint.

The property: no answer is a server error (500, or a 5xx other than the 503 of a missing peer
or CA), every error is the app's JSON error document with its status, and every answer to a
request with a well-formed fresh nonce echoes it.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from apiflask import APIFlask
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from patchledger.agent.enroll import build_csr
from patchledger.app.dispatch.board import Board, Order
from patchledger.app.web.factory import create_app
from patchledger.chaincode.lifecycle.identity import FABRIC_ATTRS_OID
from tests.reliability.budget import Budget
from tests.reliability.mutations import TOKENS, byte_mutations, json_mutations
from tests.support.chaincode_runtime import IssuedCertificate, make_certificate
from tests.unit.webapp.conftest import add_user, make_config

pytestmark = pytest.mark.reliability

MSP = "ITOpsMSP"
HEADER = "X-Client-Cert"
PREFIX = "/api/v1/agent"
HOST = "fz-01"
#: 503s that name configuration this app does not have (no peer, no CA): clean refusals.
MISSING = ("no peer is configured", "no CA is configured", "no trust anchors configured")


def _expired(issuer: IssuedCertificate, host_id: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    ca = x509.load_pem_x509_certificate(issuer.cert_pem)
    ca_key = serialization.load_pem_private_key(issuer.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_id)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now - dt.timedelta(days=1))
            .add_extension(x509.UnrecognizedExtension(FABRIC_ATTRS_OID, json.dumps(
                {"attrs": {"role": "host", "host_id": host_id}}).encode()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Target:
    """The app under test and what a valid request needs."""

    app: APIFlask
    home: Path
    cert: str
    artifact: str
    token: str
    bad_certs: dict[str, str] = field(default_factory=dict)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"X-Patchledger-Nonce": secrets.token_hex(16),
                "X-Patchledger-Time": str(int(time.time())), HEADER: self.cert, **extra}


def _target() -> Target:
    home = Path(tempfile.mkdtemp(prefix="patchledger-agent-fuzz-"))
    org_ca = make_certificate("ca.itops", is_ca=True)
    (home / "msp" / "cacerts").mkdir(parents=True)
    (home / "msp" / "cacerts" / "ca.pem").write_bytes(org_ca.cert_pem)
    config = replace(make_config(home), organization="itops", msp_id=MSP,
                     trust_msp_dirs=((MSP, home / "msp"),), agent_cert_header=HEADER,
                     dispatch_dir=home / "board", agent_poll_interval=30)
    app = create_app(config)
    operator = add_user(app, "fuzz-operator", "operator")
    client = app.test_client()
    up = client.post("/api/v1/artifacts", data=b"artifact bytes " * 64,
                     headers=operator.headers)
    assert up.status_code == 201, up.json
    made = client.post("/api/v1/hosts/enrollment-tokens", json={"host_id": "fz-new"},
                       headers=operator.headers)
    assert made.status_code == 201, made.json
    sha, secret = up.get_json()["sha256"], made.get_json()["secret"]
    Board(home / "board").publish_orders({HOST: Order("apply", "R-1", "P-1", sha)})

    def pem(c: IssuedCertificate | bytes) -> str:
        return quote(c if isinstance(c, bytes) else c.cert_pem)

    host = make_certificate(HOST, issuer=org_ca, attrs={"role": "host", "host_id": HOST})
    rogue = make_certificate("ca.itops", is_ca=True)  # same name, another key
    valid_pem = host.cert_pem.decode()
    bad = {
        "another CA's host": pem(make_certificate(HOST, issuer=rogue,
                                                  attrs={"role": "host", "host_id": HOST})),
        "self-signed host": pem(make_certificate(HOST, attrs={"role": "host",
                                                              "host_id": HOST})),
        "expired host": pem(_expired(org_ca, HOST)),
        "a user's": pem(make_certificate("alice", issuer=org_ca, attrs={"role": "operator"})),
        "no attributes": pem(make_certificate(HOST, issuer=org_ca)),
        "host id with a slash": pem(make_certificate(
            HOST, issuer=org_ca, attrs={"role": "host", "host_id": "../etc"})),
        "host id of 300 characters": pem(make_certificate(
            HOST, issuer=org_ca, attrs={"role": "host", "host_id": "h" * 300})),
        "the CA's own": pem(org_ca),
        "cut short": quote(valid_pem[:len(valid_pem) // 2]),
        "garbage in the base64": quote(valid_pem.replace("A", "!", 3)),
        "bad percent escapes inside": quote(valid_pem).replace("%0A", "%ZZ", 3),
        "empty": "",
    }
    return Target(app, home, pem(host), sha, secret, bad)


TARGET = _target()

# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None

    def send(self) -> Any:
        return TARGET.app.test_client().open(self.path, method=self.method,
                                             headers=self.headers, data=self.body)


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _valid(name: str) -> tuple[Request, Any]:
    """A valid request of endpoint ``name`` and its JSON body (``None``: none)."""
    t = TARGET
    key = ec.generate_private_key(ec.SECP256R1())
    bodies: dict[str, tuple[str, str, Any]] = {
        "poll": ("GET", "/poll", None),
        "desired-state": ("GET", "/desired-state", None),
        "artifact": ("GET", f"/artifacts/{t.artifact}", None),
        "reports": ("POST", "/reports", {"reports": [{"report": {
            "host_id": HOST, "sequence": 1, "rollout_id": "R-1", "patch_id": "P-1",
            "outcome": "VERIFIED"}, "signature": "c2ln"}]}),
        "inventory": ("PUT", "/inventory", {"format": "dpkg-query", "release": "bookworm",
                                            "content": "ii  bash 5.2 amd64\n",
                                            "sha256": "0" * 64}),
        "attestation": ("POST", "/attestations/deployment", {"rollout_id": "R-1",
                                                             "nonce": "a" * 64}),
        "enrollment-bundle": ("GET", f"/enrollment-bundle?nonce={'b' * 64}", None),
        "enroll": ("POST", "/enroll", {"token": t.token, "host_id": "fz-new",
                                       "csr_pem": build_csr(key, "fz-new").decode()}),
    }
    method, path, body = bodies[name]
    headers = t.headers()
    if body is not None:
        headers["Content-Type"] = "application/json"
    return Request(method, PREFIX + path, headers, None if body is None else _json(body)), body


ENDPOINTS = ("poll", "desired-state", "artifact", "reports", "inventory", "attestation",
             "enrollment-bundle", "enroll")
PROTOCOL_HEADERS = ("X-Patchledger-Nonce", "X-Patchledger-Time", HEADER, "If-None-Match",
                    "Range", "Content-Type")

#: Header values that can reach a WSGI app (latin-1, no line breaks: the server parses them).
_latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                blacklist_characters="\x7f"), max_size=300)
_hostile = st.sampled_from([t.decode("latin-1") for t in TOKENS if b"\n" not in t
                            and b"\r" not in t] + [
    "", " ", "0", "-1", "1e999", "NaN", "9" * 5000, str(2**63), "bytes=-", "bytes=5-1",
    "bytes=0-,0-", "bytes=99999999999999999999-", '"' * 200, "*", "W/\"x\"",
    "application/json; charset=utf-16", "text/plain", "a" * 32, "A" * 32, "0" * 32,
    "g" * 32, "%00" * 16])


@st.composite
def _header_value(draw: st.DrawFn, name: str, valid: str) -> str:
    kind = draw(st.sampled_from(("hostile", "text", "bytes", "certificate")
                                if name == HEADER else ("hostile", "text", "bytes")))
    if kind == "hostile":
        return str(draw(_hostile))
    if kind == "text":
        return str(draw(_latin1))
    if kind == "certificate":
        return str(draw(st.sampled_from(sorted(TARGET.bad_certs.values()))))
    mutated = draw(byte_mutations(valid.encode("latin-1")))
    return "".join(chr(b) for b in mutated if b not in (10, 13))


@st.composite
def mutated_requests(draw: st.DrawFn) -> Request:
    request, body = _valid(draw(st.sampled_from(ENDPOINTS)))
    headers = dict(request.headers)
    path, data = request.path, request.body
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(("header", "drop header", "body", "path")))
        if what == "header":
            name = draw(st.sampled_from(PROTOCOL_HEADERS))
            headers[name] = draw(_header_value(name, headers.get(name, "")))
        elif what == "drop header":
            headers.pop(draw(st.sampled_from(PROTOCOL_HEADERS)), None)
        elif what == "body":
            if body is not None and draw(st.booleans()):
                data = draw(json_mutations(body))
            else:
                data = draw(byte_mutations(data or b"{}"))
        elif "/artifacts/" in path:
            path = f"{PREFIX}/artifacts/{quote(draw(_latin1), safe='')}"
        else:
            path = path + draw(st.sampled_from(("/", "/x", "%00", "?nonce=" + "c" * 64,
                                                "/../poll", ";x")))
    return Request(request.method, path, headers, data)


def check(request: Request, response: Any) -> None:
    """No server error, the JSON error document, the nonce echoed."""
    status = response.status_code
    what = (request.method, request.path[:120], status, response.get_data()[:300])
    if status == 503:
        message = response.get_json()["error"]["message"]
        assert any(m in message for m in MISSING), what
    else:
        assert status < 500, what
    if status >= 400 and not (status == 404 and not request.path.startswith(PREFIX + "/")):
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and body["error"]["status"] == status, what
        assert body["error"]["message"], what
    nonce = request.headers.get("X-Patchledger-Nonce", "")
    if (len(nonce) == 32 and all(c in "0123456789abcdef" for c in nonce)
            and response.mimetype == "application/json"
            and request.path.startswith(PREFIX + "/")):
        assert response.headers.get("X-Patchledger-Nonce") in (nonce, None), what
        if status < 400:
            assert response.headers.get("X-Patchledger-Nonce") == nonce, what


def _send(request: Request) -> None:
    check(request, request.send())


def test_valid_requests_are_served(budget: Budget) -> None:
    # the baseline the mutations start from: each endpoint answers its valid request
    expected = {"poll": 200, "desired-state": 200, "artifact": 200, "reports": 200,
                "inventory": 200, "attestation": 503, "enrollment-bundle": 200,
                "enroll": 503}
    for name, status in expected.items():
        request, _ = _valid(name)
        response = request.send()
        assert response.status_code == status, (name, response.get_json())
        check(request, response)


def test_mutated_agent_requests_never_get_a_server_error(budget: Budget) -> None:
    budget.run(mutated_requests(), _send, factor=5)


@pytest.mark.parametrize("name", sorted(TARGET.bad_certs))
def test_a_bad_certificate_is_refused_on_every_host_endpoint(name: str) -> None:
    for endpoint in ENDPOINTS[:6]:
        request, _ = _valid(endpoint)
        request.headers[HEADER] = TARGET.bad_certs[name]
        response = request.send()
        check(request, response)
        assert response.status_code in (401, 403), (name, endpoint, response.get_json())


def test_a_replayed_nonce_and_a_bad_clock_are_refused() -> None:
    request, _ = _valid("poll")
    assert request.send().status_code == 200
    again = request.send()
    check(request, again)
    assert again.status_code == 409 and "replay" in again.get_json()["error"]["message"]
    for sent in ("0", str(int(time.time()) + 3600), "12.5", "", "1e3", str(10**400)):
        late, _ = _valid("poll")
        late.headers["X-Patchledger-Time"] = sent
        answer = late.send()
        check(late, answer)
        assert answer.status_code == 400 and answer.get_json()["error"]["field"] == \
            "X-Patchledger-Time", (sent, answer.get_json())


_HUGE: dict[str, Callable[[], bytes]] = {
    "over the agent cap (72 MB)": lambda: b'{"reports": [' + b'{"a": 1},' * 8_000_000
    + b"{}]}",
    "under the cap (9 MB of objects)": lambda: b'{"reports": [' + b'{"a": 1},' * 1_000_000
    + b"{}]}",
    "deeply nested": lambda: b'{"reports": ' + b"[" * 4_000_000 + b"]" * 4_000_000 + b"}",
    "one huge string": lambda: b'{"content": "' + b"x" * 20_000_000 + b'"}',
}


@pytest.mark.parametrize("name", sorted(_HUGE))
@pytest.mark.parametrize("endpoint", ["reports", "inventory", "attestation", "enroll"])
def test_huge_bodies_are_refused_cleanly(name: str, endpoint: str) -> None:
    request, _ = _valid(endpoint)
    big = replace(request, body=_HUGE[name]())
    response = big.send()
    check(big, response)
    assert 400 <= response.status_code < 500 or response.status_code == 503, \
        response.status_code
