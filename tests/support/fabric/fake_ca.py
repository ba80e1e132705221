"""An in-process fake Fabric CA: the REST endpoints the client uses, over HTTPS on 127.0.0.1.

It enforces what the real server enforces for these calls: Basic auth and CN = enrolment id
on enroll; the ECDSA token (low S, certificate issued by this CA, not revoked) on register,
reenroll, revoke and identities; ``hf.Registrar.Roles`` for register. Certificates carry the
requested attributes in extension 1.2.3.4.5.6.7.8.1 like Fabric CA's.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.app.fabric.signing import verify_signature
from tests.support.fabric.pki import TestCA


@dataclass
class _User:
    secret: str
    type: str
    affiliation: str = ""
    attrs: list[dict[str, Any]] = field(default_factory=list)
    max_enrollments: int = -1
    revoked_serials: set[int] = field(default_factory=set)
    revoked: bool = False


class FakeCA:
    """The fake CA server. Context manager; ``url`` and ``tls_ca_pem`` for the client."""

    def __init__(self, workdir: Path, *, ca_name: str = "ca", msp_id: str = "SecOpsMSP") -> None:
        self.ca_name = ca_name
        self.ca = TestCA(msp_id, f"{ca_name}.{msp_id}")
        self.tls_ca = TestCA(msp_id, f"tlsca.{msp_id}")
        self.users: dict[str, _User] = {
            "admin": _User(
                "adminpw",
                "admin",
                attrs=[
                    {"name": "hf.Registrar.Roles", "value": "*", "ecert": False},
                    {"name": "hf.Revoker", "value": "true", "ecert": False},
                ],
            )
        }
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        server_id = self.tls_ca.issue("localhost", hosts=("localhost", "127.0.0.1"))
        cert_file, key_file = workdir / "tls-cert.pem", workdir / "tls-key.pem"
        cert_file.write_bytes(server_id.identity.credentials)
        key_file.write_bytes(server_id.signer.private_key_pem())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def tls_ca_pem(self) -> bytes:
        """The TLS trust anchor (what the real server writes as ca-cert.pem for TLS)."""
        return self.tls_ca.cert_pem

    def __enter__(self) -> FakeCA:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # --- request handling (called by the handler) ------------------------------------------

    def handle(
        self, method: str, uri: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        path, _, _ = uri.partition("?")
        doc = json.loads(body) if body else {}
        with self._lock:
            self.requests.append((method, uri, doc))
            route = (method, path)
            if route == ("GET", "/api/v1/cainfo"):
                return 200, self._ok(self._server_info())
            if route == ("POST", "/api/v1/enroll"):
                return self._enroll(doc, headers.get("authorization", ""))
            caller = self._authenticate(method, uri, body, headers.get("authorization", ""))
            if caller is None:
                return 401, self._error(20, "Authentication failure")
            if route == ("POST", "/api/v1/register"):
                return self._register(doc, caller)
            if route == ("POST", "/api/v1/reenroll"):
                return self._issue(caller, doc)
            if route == ("POST", "/api/v1/revoke"):
                return self._revoke(doc, caller)
            if route == ("GET", "/api/v1/identities"):
                return 200, self._ok(
                    {
                        "identities": [
                            {
                                "id": name,
                                "type": u.type,
                                "affiliation": u.affiliation,
                                "attrs": u.attrs,
                                "max_enrollments": u.max_enrollments,
                            }
                            for name, u in sorted(self.users.items())
                        ],
                        "caname": self.ca_name,
                    }
                )
        return 404, self._error(0, f"no route {method} {path}")

    def _server_info(self) -> dict[str, Any]:
        chain = base64.b64encode(self.ca.cert_pem).decode()
        return {"CAName": self.ca_name, "CAChain": chain, "Version": "1.5.21-fake"}

    @staticmethod
    def _ok(result: dict[str, Any]) -> dict[str, Any]:
        return {"success": True, "result": result, "errors": [], "messages": []}

    @staticmethod
    def _error(code: int, message: str) -> dict[str, Any]:
        return {
            "success": False,
            "result": None,
            "errors": [{"code": code, "message": message}],
            "messages": [],
        }

    def _enroll(self, doc: dict[str, Any], authorization: str) -> tuple[int, dict[str, Any]]:
        scheme, _, value = authorization.partition(" ")
        try:
            user_id, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return 401, self._error(20, "Authentication failure")
        user = self.users.get(user_id)
        if scheme != "Basic" or user is None or user.secret != secret or user.revoked:
            return 401, self._error(20, "Authentication failure")
        return self._issue(user_id, doc)

    def _issue(self, user_id: str, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        user = self.users[user_id]
        csr = x509.load_pem_x509_csr(doc["certificate_request"].encode())
        cn = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if not cn or cn[0].value != user_id:
            return 403, self._error(0, "The CSR subject common name must equal the enrollment ID")
        attrs: dict[str, str] = {}
        registered = {a["name"]: a for a in user.attrs}
        if "attr_reqs" in doc:
            for request in doc["attr_reqs"]:
                if request["name"] in registered:
                    attrs[request["name"]] = registered[request["name"]]["value"]
                elif not request.get("optional"):
                    return 400, self._error(0, f"Attribute '{request['name']}' was not found")
        else:
            attrs = {a["name"]: a["value"] for a in user.attrs if a.get("ecert")}
        public_key = csr.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        cert = self.ca.sign_public_key(
            public_key,
            user_id,
            attrs=attrs or None,
            hosts=tuple(doc.get("hosts", ())),
            ou=user.type,
        )

        pem = cert.public_bytes(serialization.Encoding.PEM)
        return 201, self._ok(
            {"Cert": base64.b64encode(pem).decode(), "ServerInfo": self._server_info()}
        )

    def _authenticate(self, method: str, uri: str, body: bytes, token: str) -> str | None:
        try:
            cert_b64, sig_b64 = token.split(".")
            cert = x509.load_pem_x509_certificate(base64.b64decode(cert_b64))
            signature = base64.b64decode(sig_b64)
        except ValueError:
            return None
        message = f"{method}.{base64.b64encode(uri.encode()).decode()}."
        message += f"{base64.b64encode(body).decode()}.{cert_b64}"
        if cert.issuer != self.ca.certificate.subject:
            return None
        try:
            cert.verify_directly_issued_by(self.ca.certificate)
        except Exception:
            return None
        if not verify_signature(cert, message.encode(), signature):  # low S required
            return None
        user_id = str(cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)
        user = self.users.get(user_id)
        if user is None or user.revoked or cert.serial_number in user.revoked_serials:
            return None
        return user_id

    def _register(self, doc: dict[str, Any], caller: str) -> tuple[int, dict[str, Any]]:
        roles = {a["name"]: a["value"] for a in self.users[caller].attrs}.get("hf.Registrar.Roles")
        if roles != "*" and doc.get("type", "client") not in (roles or "").split(","):
            return 403, self._error(
                0, f"Identity '{caller}' may not register type '{doc.get('type')}'"
            )
        if doc["id"] in self.users:
            return 409, self._error(74, f"Identity '{doc['id']}' is already registered")
        secret = doc.get("secret") or secrets.token_hex(8)
        self.users[doc["id"]] = _User(
            secret,
            doc.get("type", "client"),
            doc.get("affiliation", ""),
            list(doc.get("attrs", [])),
            int(doc.get("max_enrollments", -1)),
        )
        return 201, self._ok({"secret": secret})

    def _revoke(self, doc: dict[str, Any], caller: str) -> tuple[int, dict[str, Any]]:
        del caller
        target = self.users.get(doc.get("id", ""))
        if target is None:
            return 404, self._error(63, f"Identity '{doc.get('id')}' not found")
        target.revoked = True
        return 200, self._ok({"RevokedCerts": [], "CRL": ""})


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCA

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, doc = self.fake.handle(self.command, self.path, body, headers)
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _serve
    do_POST = _serve
