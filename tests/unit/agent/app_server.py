"""A small, real HTTPS server on 127.0.0.1 implementing the agent protocol of docs/agent.md,
for the agent's tests: TLS from a test CA, mutual TLS with host certificates, one-time
enrollment tokens that issue a certificate from a CSR, poll / desired state with an ETag,
inventory, reports, and the content-addressed artifact store with ``Range`` and faults (a
connection cut mid-body, ranges ignored, garbage answers, an outage).

It is the protocol's reference for the tests, not the org app: state is in memory; the
attestations it relays come from a callable the test gives (the lifecycle core's answer
endorsed as Fabric peers endorse, ``attestation_support``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchledger.chaincode.lifecycle.identity import FABRIC_ATTRS_OID, certificate_attributes
from tests.support.chaincode_runtime import IssuedCertificate, make_certificate

PREFIX = "/api/v1/agent"
TEST_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
MSP = "ITOpsMSP"


@dataclass
class Pki:
    """The test PKI: a TLS CA (server certificate for 127.0.0.1) and the organization CA
    that issues host certificates; other organizations' roots."""

    tls_ca: IssuedCertificate
    server: IssuedCertificate
    org_ca: IssuedCertificate
    other_roots: dict[str, bytes]

    def write(self, directory: Path) -> dict[str, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        files = {"ca": directory / "tls-ca.pem", "cert": directory / "server.pem",
                 "key": directory / "server.key"}
        files["ca"].write_bytes(self.tls_ca.cert_pem)
        files["cert"].write_bytes(self.server.cert_pem)
        files["key"].write_bytes(self.server.key_pem)
        return files


def make_pki(other_roots: dict[str, bytes] | None = None,
             org_ca: IssuedCertificate | None = None) -> Pki:
    """Fresh CAs; ``org_ca`` issues host certificates (default: a fresh one), ``other_roots``
    are the other organizations' roots the bundle serves (default: fresh ones)."""
    tls_ca = make_certificate("tls-ca.itops", is_ca=True)
    server = make_certificate("app.itops", issuer=tls_ca, sans=["127.0.0.1", "localhost"])
    org_ca = org_ca or make_certificate("ca.itops", is_ca=True)
    others = other_roots if other_roots is not None else {
        m: make_certificate(f"ca.{m}", is_ca=True).cert_pem for m in ("SecOpsMSP", "ComplianceMSP")
    }
    return Pki(tls_ca, server, org_ca, others)


def issue_host_certificate(org_ca: IssuedCertificate, csr: x509.CertificateSigningRequest,
                           host_id: str) -> bytes:
    """What the org app's CA does with an enrollment CSR: role=host, host_id attribute."""
    issuer = x509.load_pem_x509_certificate(org_ca.cert_pem)
    key = serialization.load_pem_private_key(org_ca.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    attrs = {"attrs": {"hf.EnrollmentID": host_id, "role": "host", "host_id": host_id}}
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_id)]))
        .issuer_name(issuer.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(TEST_EPOCH)  # valid at the lifecycle tests' clock (NOW, 2025) too
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.UnrecognizedExtension(FABRIC_ATTRS_OID,
                                                  json.dumps(attrs).encode()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Faults:
    """What the artifact store and the API do wrong, for the next requests."""

    cut_after: int | None = None  # bytes of an artifact body sent before the cut
    cuts: int = 0  # how many artifact responses are cut
    ignore_range: bool = False
    range_shift: int = 0  # a 206 that starts this many bytes before the asked offset
    garbage: int = 0  # API answers that are not JSON
    outage: int = 0  # API answers 503 with Retry-After
    no_nonce_echo: bool = False
    reports_down: bool = False  # POST /reports answers 503


@dataclass
class AppState:
    """The server's memory."""

    pki: Pki
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch)
    used_tokens: set[str] = field(default_factory=set)
    enrolled: dict[str, bytes] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    desired: dict[str, Any] = field(default_factory=lambda: {"assignments": []})
    poll_interval: int = 60
    inventory_wanted: bool = False
    inventories: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    #: AttestDeployment(host_id, rollout_id, nonce) -> endorsed bundle (the ledger's peers)
    attest_deployment: Callable[[str, str, str], dict[str, Any]] | None = None
    #: AttestChannelRoots(nonce) -> endorsed bundle, served in the enrollment bundle
    attest_roots: Callable[[str], dict[str, Any]] | None = None
    #: relays a batch of reports to the ledger (ReportDeployments) before acknowledging
    relay_reports: Callable[[list[dict[str, Any]]], Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bundle_roots(self) -> dict[str, list[str]]:
        roots = {MSP: [self.pki.org_ca.cert_pem.decode()]}
        roots.update({m: [pem.decode()] for m, pem in self.pki.other_roots.items()})
        return roots

    @property
    def etag(self) -> str:
        body = json.dumps(self.desired, sort_keys=True).encode()
        return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


_RANGE = re.compile(r"^bytes=(\d+)-$")


class Handler(BaseHTTPRequestHandler):
    server: AppServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # ------------------------------------------------------------ helpers

    @property
    def app(self) -> AppState:
        return self.server.state

    def _peer_host(self) -> str | None:
        """The host id of the client certificate: its Fabric CA ``host_id`` attribute (the
        CN of a CA-issued certificate is the enrollment id, which may differ)."""
        der = self.connection.getpeercert(binary_form=True)
        if not der:
            return None
        cert = x509.load_der_x509_certificate(der)
        host_id = certificate_attributes(cert).get("host_id")
        if host_id:
            return host_id
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else None

    def _send(self, status: int, doc: Any = None, *, headers: dict[str, str] | None = None,
              raw: bytes | None = None) -> None:
        body = raw if raw is not None else (b"" if doc is None else json.dumps(doc).encode())
        self.send_response(status)
        nonce = self.headers.get("X-Patchledger-Nonce", "")
        if nonce and not self.app.faults.no_nonce_echo:
            self.send_header("X-Patchledger-Nonce", nonce)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status != 304:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        self.app.bodies.append(raw)
        return json.loads(raw or b"null")

    def _protocol_checks(self, *, needs_cert: bool) -> str | None:
        """Nonce, time and client certificate; returns the host id, or None after an error
        answer was sent."""
        nonce = self.headers.get("X-Patchledger-Nonce", "")
        with self.app.lock:
            self.app.requests.append((self.command, self.path, dict(self.headers.items()),
                                      self._peer_host() or ""))
            if not re.fullmatch(r"[0-9a-f]{32}", nonce):
                self._send(400, {"error": "nonce", "message": "missing or malformed nonce"})
                return None
            if nonce in self.app.nonces:
                self.app.log.append(f"replayed nonce {nonce}")
                self._send(409, {"error": "replay", "message": "nonce already used"})
                return None
            self.app.nonces.add(nonce)
        try:
            skew = abs(time.time() - int(self.headers.get("X-Patchledger-Time", "0")))
        except ValueError:
            skew = float("inf")
        if skew > 300:
            self._send(400, {"error": "clock", "message": "request time off by more than 300 s"})
            return None
        host = self._peer_host()
        if needs_cert and host is None:
            self._send(401, {"error": "certificate", "message": "a host certificate is needed"})
            return None
        return host or ""

    def _api_fault(self) -> bool:
        faults = self.app.faults
        if faults.outage:
            faults.outage -= 1
            self._send(503, {"error": "unavailable"}, headers={"Retry-After": "7"})
            return True
        if faults.garbage:
            faults.garbage -= 1
            self._send(200, raw=b"<html>proxy error</html>")
            return True
        return False

    # ------------------------------------------------------------ routes

    def do_GET(self) -> None:
        if self.path.startswith(f"{PREFIX}/artifacts/"):
            self._artifact()
            return
        if self.path.startswith(f"{PREFIX}/enrollment-bundle?nonce="):
            nonce = self.path.rsplit("=", 1)[-1]
            if self._protocol_checks(needs_cert=False) is None:
                return
            if not re.fullmatch(r"[0-9a-f]{64}", nonce):
                self._send(400, {"error": "nonce", "message": "nonce must be 64 hex digits"})
                return
            attestation = self.app.attest_roots(nonce) if self.app.attest_roots else None
            self._send(200, {"msp_id": MSP, "roots": self.app.bundle_roots(),
                             "attestation": attestation})
            return
        host = self._protocol_checks(needs_cert=True)
        if host is None or self._api_fault():
            return
        if self.path == f"{PREFIX}/poll":
            self._send(200, {"etag": self.app.etag, "poll_interval": self.app.poll_interval,
                             "inventory_wanted": self.app.inventory_wanted})
        elif self.path == f"{PREFIX}/desired-state":
            etag = self.app.etag
            if self.headers.get("If-None-Match") == etag:
                self._send(304, headers={"ETag": etag})
            else:
                self._send(200, self.app.desired, headers={"ETag": etag})
        else:
            self._send(404, {"error": "not found"})

    def do_PUT(self) -> None:
        host = self._protocol_checks(needs_cert=True)
        if host is None or self._api_fault():
            return
        if self.path != f"{PREFIX}/inventory":
            self._send(404, {"error": "not found"})
            return
        doc = self._body()
        self.app.inventories.append({"host": host, **doc})
        self.app.inventory_wanted = False
        self._send(200, {"sha256": doc["sha256"]})

    def do_POST(self) -> None:
        if self.path == f"{PREFIX}/enroll":
            if self._protocol_checks(needs_cert=False) is not None:
                self._enroll()
            return
        host = self._protocol_checks(needs_cert=True)
        if host is None or self._api_fault():
            return
        if self.path == f"{PREFIX}/attestations/deployment":
            doc = self._body()
            if self.app.attest_deployment is None:
                self._send(503, {"error": "unavailable", "message": "no peers"})
                return
            try:
                answer = self.app.attest_deployment(host, doc["rollout_id"], doc["nonce"])
            except Exception as exc:  # the peers refused or failed: the agent must see why
                self.app.log.append(f"attestation failed: {exc}")
                self._send(502, {"error": "peers", "message": str(exc)[:500]})
                return
            self._send(200, answer)
            return
        if self.path != f"{PREFIX}/reports":
            self._send(404, {"error": "not found"})
            return
        if self.app.faults.reports_down:
            self._send(503, {"error": "unavailable"})
            return
        acknowledged = []
        batch = self._body()["reports"]
        if self.app.relay_reports is not None:
            self.app.relay_reports(batch)
        for item in batch:
            report = item["report"]
            if report["host_id"] != host:
                self._send(403, {"error": "forbidden", "message": "report for another host"})
                return
            self.app.reports[(host, report["sequence"])] = item
            acknowledged.append(report["sequence"])
        self._send(200, {"acknowledged": acknowledged})

    def _enroll(self) -> None:
        doc = self._body()
        token, host_id = doc.get("token", ""), doc.get("host_id", "")
        with self.app.lock:
            expiry = self.app.tokens.get(token)
            if token in self.app.used_tokens:
                self.app.log.append(f"reused token for {host_id}")
                self._send(403, {"error": "token", "message": "token already used"})
                return
            if expiry is None or expiry < time.time():
                self.app.log.append(f"{'expired' if expiry else 'unknown'} token for {host_id}")
                self._send(403, {"error": "token", "message": "token unknown or expired"})
                return
            self.app.used_tokens.add(token)
        csr = x509.load_pem_x509_csr(doc["csr_pem"].encode())
        cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        if cn != host_id or not csr.is_signature_valid:
            self._send(400, {"error": "csr", "message": "CSR CN must be the host id"})
            return
        cert = issue_host_certificate(self.app.pki.org_ca, csr, host_id)
        self.app.enrolled[host_id] = cert
        self._send(200, {"host_id": host_id, "msp_id": MSP, "certificate_pem": cert.decode(),
                         "poll_interval": self.app.poll_interval})

    def _artifact(self) -> None:
        host = self._protocol_checks(needs_cert=True)
        if host is None:
            return
        sha = self.path.rsplit("/", 1)[-1]
        data = self.app.artifacts.get(sha)
        if data is None:
            self._send(404, {"error": "not found"})
            return
        faults = self.app.faults
        start = 0
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and not faults.ignore_range:
            start = max(0, int(match.group(1)) - faults.range_shift)
            if start >= len(data):
                self._send(416, {"error": "range"},
                           headers={"Content-Range": f"bytes */{len(data)}"})
                return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if faults.cuts and faults.cut_after is not None:
            faults.cuts -= 1
            self.wfile.write(body[: faults.cut_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.close()
            return
        self.wfile.write(body)


#: Test servers listen on 127.0.0.1 in [base, base + 400); the base is
#: $PATCHLEDGER_AGENT_TEST_PORT_BASE (default 22500), so parallel sessions can be kept apart.
PORT_SPAN = 400


def _free_port() -> int:
    base = int(os.environ.get("PATCHLEDGER_AGENT_TEST_PORT_BASE", "22500"))
    for port in range(base, base + PORT_SPAN):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 in [{base}, {base + PORT_SPAN})")


class AppServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: AppState, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", _free_port()), Handler)
        self.state = state
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # refused handshakes and cut connections are what the tests do


@contextmanager
def running(tmp: Path, pki: Pki | None = None) -> Iterator[tuple[AppServer, Path]]:
    """A running server; yields it and the TLS CA file the agent pins."""
    pki = pki or make_pki()
    files = pki.write(tmp / "server-tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(files["cert"]), str(files["key"]))
    ca_bundle = tmp / "server-tls" / "client-cas.pem"
    ca_bundle.write_bytes(pki.org_ca.cert_pem)
    context.load_verify_locations(cafile=str(ca_bundle))  # host certs are issued by org_ca
    context.verify_mode = ssl.CERT_OPTIONAL  # /enroll comes without one
    server = AppServer(AppState(pki), context)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server, files["ca"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def host_files(server: AppServer, tmp: Path, host_id: str) -> tuple[Path, Path]:
    """A host certificate and key issued directly (as if enrolled), for tests of the other
    endpoints."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_id)]))
           .sign(key, hashes.SHA256()))
    cert = issue_host_certificate(server.state.pki.org_ca, csr, host_id)
    cert_file, key_file = tmp / f"{host_id}.pem", tmp / f"{host_id}.key"
    cert_file.write_bytes(cert)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def ledger_pki() -> Pki:
    """The PKI of the lifecycle tests' organizations (``lifecycle_support``): host
    certificates issued by ITOps' test CA, the bundle serving the three organizations' roots,
    so attestations endorsed by their test peers verify."""
    from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, ITOPS, SECOPS, org_ca

    itops = org_ca(ITOPS)
    issuer = IssuedCertificate(itops.cert_pem, itops.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return make_pki({m: org_ca(m).cert_pem for m in (SECOPS, COMPLIANCE)}, issuer)


def roots_attestation(nonce: str) -> dict[str, Any]:
    """An honest ``AttestChannelRoots(nonce)`` bundle endorsed by the three organizations'
    test peers, over the lifecycle tests' roots."""
    from patchledger.chaincode.lifecycle.attestation import attest_channel_roots
    from patchledger.chaincode.lifecycle.canonical import canonical_json
    from tests.unit.agent.attestation_support import (
        ALL_PEERS,
        bundle,
        proposal,
        response_payload,
    )
    from tests.unit.lifecycle.lifecycle_support import NOW, TRUST

    prop = proposal("AttestChannelRoots", [nonce])
    answer = canonical_json(attest_channel_roots(TRUST, nonce, now=NOW))
    return bundle(prop, response_payload(prop, answer), ALL_PEERS)
