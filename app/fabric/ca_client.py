"""A Fabric CA client: REST over HTTPS with the standard library.

Keys and CSRs are made locally (the private key never leaves the process); the CSR's common
name is the enrolment id, as the CA requires. Authenticated calls (register, reenroll,
revoke, identities) carry Fabric CA's token: ``b64(cert) "." b64(sig)`` with ``sig`` a low-S
ECDSA-SHA256 signature over ``METHOD "." b64(uri) "." b64(body) "." b64(cert)``.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from patchledger.app.fabric.ca_models import (
    Attribute,
    AttributeRequest,
    CAInfo,
    Enrollment,
    RegisteredIdentity,
    RegistrationRequest,
    RevocationResult,
)
from patchledger.app.fabric.errors import CAError
from patchledger.app.fabric.identity import Identity
from patchledger.app.fabric.signing import EcdsaSigner


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def auth_token(method: str, uri: str, body: bytes, identity: Identity, signer: EcdsaSigner) -> str:
    """Build the ``Authorization`` header value of an authenticated CA request.

    ``uri`` is the request path with its query string (e.g. ``/api/v1/identities?ca=ca``).
    """
    cert = _b64(identity.credentials)
    message = f"{method}.{_b64(uri.encode())}.{_b64(body)}.{cert}".encode()
    return f"{cert}.{_b64(signer.sign_message(message))}"


def make_csr(enrollment_id: str, signer: EcdsaSigner) -> bytes:
    """A PEM CSR with CN = ``enrollment_id``, signed with ECDSA-SHA256."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, enrollment_id)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name)
    return csr.sign(signer.private_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class CAClient:
    """A client of one CA of a Fabric CA server.

    Args:
        url: base URL, e.g. ``https://127.0.0.1:5052``.
        tls_ca_certificate: PEM of the CA's TLS trust anchor (its ``ca-cert.pem``); required
            for ``https`` URLs (the system trust store is never used).
        ca_name: the CA to address (``--caname``; empty: the server's default CA).
        timeout: seconds per request.
    """

    def __init__(
        self,
        url: str,
        *,
        tls_ca_certificate: bytes | None = None,
        ca_name: str = "",
        timeout: float = 10.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CAError("the CA URL must be http(s)://host:port", url=url)
        self._base = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"
        self._prefix = f"{parsed.path.rstrip('/')}/api/v1"
        self._ca_name = ca_name
        self._timeout = timeout
        self._context: ssl.SSLContext | None = None
        if parsed.scheme == "https":
            if not tls_ca_certificate:
                raise CAError("an https CA URL needs the CA's TLS certificate", url=url)
            try:
                self._context = ssl.create_default_context(
                    cadata=tls_ca_certificate.decode("ascii")
                )
            except (ssl.SSLError, ValueError) as exc:
                raise CAError(f"invalid TLS CA certificate: {exc}", url=url) from exc

    @property
    def ca_name(self) -> str:
        """The addressed CA name."""
        return self._ca_name

    # --- public API -----------------------------------------------------------------------

    def cainfo(self) -> CAInfo:
        """Return the CA's name, chain and version (no authentication).

        Raises:
            CAError: the request failed.
        """
        result = self._request("GET", "cainfo", query=self._ca_query())
        return CAInfo(
            str(result.get("CAName", "")),
            base64.b64decode(result.get("CAChain", "")),
            str(result.get("Version", "")),
        )

    def enroll(
        self,
        enrollment_id: str,
        secret: str,
        *,
        attr_reqs: Sequence[AttributeRequest] = (),
        profile: str = "",
        hosts: Sequence[str] = (),
        signer: EcdsaSigner | None = None,
    ) -> Enrollment:
        """Enroll: generate a key (unless ``signer`` is given), send a CSR, get a certificate.

        Args:
            enrollment_id: the registered id (becomes the certificate's CN).
            secret: its enrolment secret (HTTP Basic auth).
            attr_reqs: attributes to include; without them the CA includes every attribute
                registered with ``ecert=True``.
            profile: signing profile, e.g. ``"tls"``.
            hosts: subject alternative names (TLS certificates).
            signer: reuse an existing key instead of generating one.

        Raises:
            CAError: the CA refused (e.g. wrong secret, enrolment limit) or was unreachable.
        """
        signer = signer or EcdsaSigner.generate()
        body = self._csr_body(enrollment_id, signer, attr_reqs, profile, hosts)
        basic = _b64(f"{enrollment_id}:{secret}".encode())
        result = self._request("POST", "enroll", body=body, authorization=f"Basic {basic}")
        return self._enrollment(result, signer)

    def enroll_csr(
        self,
        enrollment_id: str,
        secret: str,
        csr_pem: bytes,
        *,
        attr_reqs: Sequence[AttributeRequest] = (),
    ) -> bytes:
        """Enroll with a CSR made elsewhere (a host's, whose key never leaves the host); the
        issued certificate (PEM). The CSR's CN must be ``enrollment_id`` (the CA refuses
        otherwise).

        Raises:
            CAError: the CA refused (e.g. wrong secret, CN, enrolment limit) or was
                unreachable.
        """
        body: dict[str, Any] = {"certificate_request": csr_pem.decode("ascii")}
        if attr_reqs:
            body["attr_reqs"] = [{"name": a.name, "optional": a.optional} for a in attr_reqs]
        if self._ca_name:
            body["caname"] = self._ca_name
        basic = _b64(f"{enrollment_id}:{secret}".encode())
        result = self._request("POST", "enroll", body=body, authorization=f"Basic {basic}")
        return base64.b64decode(result.get("Cert", ""))

    def reenroll(
        self,
        identity: Identity,
        signer: EcdsaSigner,
        *,
        new_key: bool = True,
        attr_reqs: Sequence[AttributeRequest] = (),
        profile: str = "",
        hosts: Sequence[str] = (),
    ) -> Enrollment:
        """Renew a certificate, authenticated by the current one (e.g. before it expires).

        Raises:
            CAError: the CA refused (e.g. revoked identity) or was unreachable.
        """
        next_signer = EcdsaSigner.generate() if new_key else signer
        body = self._csr_body(identity.enrollment_id, next_signer, attr_reqs, profile, hosts)
        result = self._request("POST", "reenroll", body=body, auth=(identity, signer))
        return self._enrollment(result, next_signer)

    def register(
        self, registrar: Identity, signer: EcdsaSigner, request: RegistrationRequest
    ) -> str:
        """Register a new identity; return its enrolment secret.

        Raises:
            CAError: the registrar lacks the authority, the id exists, or the call failed.
        """
        result = self._request(
            "POST", "register", body=request.to_json(self._ca_name), auth=(registrar, signer)
        )
        return str(result.get("secret", ""))

    def revoke(
        self,
        registrar: Identity,
        signer: EcdsaSigner,
        *,
        enrollment_id: str = "",
        serial: str = "",
        aki: str = "",
        reason: str = "",
        gen_crl: bool = False,
    ) -> RevocationResult:
        """Revoke every certificate of ``enrollment_id``, or one by ``serial`` + ``aki``.

        Raises:
            ValueError: neither an enrolment id nor a serial/AKI pair was given.
            CAError: the CA refused or was unreachable.
        """
        if not enrollment_id and not (serial and aki):
            raise ValueError("revoke needs an enrollment id, or a serial and an AKI")
        body: dict[str, Any] = {
            "id": enrollment_id,
            "serial": serial,
            "aki": aki,
            "reason": reason,
            "gencrl": gen_crl,
        }
        if self._ca_name:
            body["caname"] = self._ca_name
        result = self._request("POST", "revoke", body=body, auth=(registrar, signer))
        revoked = tuple(
            (str(entry.get("Serial", "")), str(entry.get("AKI", "")))
            for entry in result.get("RevokedCerts") or ()
        )
        crl = base64.b64decode(result.get("CRL", "") or "")
        return RevocationResult(revoked, crl)

    def list_identities(self, registrar: Identity, signer: EcdsaSigner) -> list[RegisteredIdentity]:
        """List the identities the registrar may see.

        Raises:
            CAError: the CA refused or was unreachable.
        """
        result = self._request(
            "GET", "identities", query=self._ca_query(), auth=(registrar, signer)
        )
        identities = []
        for entry in result.get("identities") or ():
            attrs = tuple(
                Attribute(str(a.get("name", "")), str(a.get("value", "")), bool(a.get("ecert")))
                for a in entry.get("attrs") or ()
            )
            identities.append(
                RegisteredIdentity(
                    str(entry.get("id", "")),
                    str(entry.get("type", "")),
                    str(entry.get("affiliation", "")),
                    int(entry.get("max_enrollments", 0) or 0),
                    attrs,
                )
            )
        return identities

    # --- internals ------------------------------------------------------------------------

    def _ca_query(self) -> dict[str, str]:
        return {"ca": self._ca_name} if self._ca_name else {}

    def _csr_body(
        self,
        enrollment_id: str,
        signer: EcdsaSigner,
        attr_reqs: Sequence[AttributeRequest],
        profile: str,
        hosts: Sequence[str],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"certificate_request": make_csr(enrollment_id, signer).decode()}
        if attr_reqs:
            body["attr_reqs"] = [{"name": a.name, "optional": a.optional} for a in attr_reqs]
        if profile:
            body["profile"] = profile
        if hosts:
            body["hosts"] = list(hosts)
        if self._ca_name:
            body["caname"] = self._ca_name
        return body

    @staticmethod
    def _enrollment(result: dict[str, Any], signer: EcdsaSigner) -> Enrollment:
        certificate = base64.b64decode(result.get("Cert", ""))
        chain = base64.b64decode((result.get("ServerInfo") or {}).get("CAChain", "") or "")
        return Enrollment(certificate, signer, chain)

    def _request(
        self,
        method: str,
        endpoint: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        authorization: str = "",
        auth: tuple[Identity, EcdsaSigner] | None = None,
    ) -> dict[str, Any]:
        uri = f"{self._prefix}/{endpoint}"
        if query:
            uri += "?" + urllib.parse.urlencode(query)
        url = f"{self._origin()}{uri}"
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth is not None:
            authorization = auth_token(method, uri, data, auth[0], auth[1])
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            url, data=data if body is not None else None, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self._timeout, context=self._context
            ) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CAError(f"cannot reach the CA: {reason}", url=url) from exc
        return self._result(url, status, raw)

    def _origin(self) -> str:
        parsed = urllib.parse.urlsplit(self._base)
        return f"{parsed.scheme}://{parsed.netloc}"

    @staticmethod
    def _result(url: str, status: int, raw: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            snippet = raw[:200].decode("utf-8", "replace")
            raise CAError(f"unexpected CA response: {snippet!r}", url=url, status=status)
        errors = [
            (int(e.get("code", 0) or 0), str(e.get("message", "")))
            for e in doc.get("errors") or ()
            if isinstance(e, dict)
        ]
        if status >= 400 or not doc.get("success", False):
            message = errors[0][1] if errors else f"request failed with HTTP {status}"
            raise CAError(message, url=url, status=status, errors=errors)
        result = doc.get("result")
        return result if isinstance(result, dict) else {}
