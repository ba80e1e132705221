"""A body cut short is a fetch error, never a 200, never cached (issue 9, point 8).

A real HTTP server on 127.0.0.1 (a port in 22000-22999) serves the real KEV catalog, but
misbehaves on demand the way a broken proxy or a dropped connection does: it announces the
full ``Content-Length`` and sends only part of the body, or cuts a chunked body, or resets the
connection mid-body.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchledger.app.feeds.errors import FetchError
from patchledger.app.feeds.http import FetchConfig, Fetcher
from patchledger.app.feeds.loader import Loader
from tests.unit.feeds.http_support import serving

_PORTS = range(22400, 23000)


class _CuttingServer:
    """Serves files of the feeds folder; ``mode`` says how the next answers go wrong.

    Modes: ``ok``; ``short`` (Content-Length of the whole body, half of it sent, connection
    closed); ``chunked-cut`` (chunked transfer that stops before the last chunk); ``reset``
    (half the body, then a TCP reset).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modes: list[str] = []
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                server.handle(self)

        self.httpd = _bind(Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        self.requests.append(dict(req.headers.items()))
        body = (self.root / req.path.lstrip("/")).read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        mode = self.modes.pop(0) if self.modes else "ok"
        req.close_connection = True
        if mode == "ok" and req.headers.get("If-None-Match") == etag:
            req.send_response(304)
            req.send_header("ETag", etag)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        req.send_response(200)
        req.send_header("ETag", etag)
        if mode == "chunked-cut":
            req.send_header("Transfer-Encoding", "chunked")
            req.end_headers()
            half = body[: len(body) // 2]
            req.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
            req.wfile.write(f"{len(body) - len(half):x}\r\n".encode() + body[len(half) : -10])
            req.wfile.flush()
            return
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if mode == "ok":
            req.wfile.write(body)
            return
        req.wfile.write(body[: len(body) // 2])
        req.wfile.flush()
        if mode == "reset":
            # SO_LINGER with a zero timeout: close() sends a RST instead of a FIN
            req.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )


def _bind(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 at the first free port of :data:`_PORTS` (below 32768)."""
    last: OSError | None = None
    for port in _PORTS:
        try:
            return ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            last = exc
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1}: {last}")


@pytest.fixture
def server(feeds_dir: Path) -> Iterator[_CuttingServer]:
    srv = _CuttingServer(feeds_dir)
    with serving(srv.httpd):
        yield srv


_KEV = "/kev/known_exploited_vulnerabilities.json"


def _fetcher(retries: int) -> tuple[Fetcher, list[float]]:
    sleeps: list[float] = []
    return Fetcher(
        FetchConfig(retries=retries, backoff=0.25, timeout=10), sleep=sleeps.append
    ), sleeps


@pytest.mark.parametrize("mode", ["short", "chunked-cut", "reset"])
def test_cut_body_is_one_fetch_error_naming_the_url_and_nothing_is_cached(
    server: _CuttingServer, mode: str
) -> None:
    fetcher, sleeps = _fetcher(retries=1)
    server.modes = [mode, mode]
    url = server.base + _KEV
    with pytest.raises(FetchError) as info:
        fetcher.get(url)
    assert info.value.url == url
    assert str(info.value).startswith(f"{url}: giving up after 2 attempts:")
    assert "cut short" in str(info.value) or "connection failed while reading" in str(info.value)
    assert fetcher.cache == {}
    assert len(sleeps) == 1
    # the next request is unconditional (no ETag of the partial body was kept) and complete
    full = fetcher.get(url)
    assert "If-None-Match" not in server.requests[-1]
    assert full.body == (server.root / _KEV.lstrip("/")).read_bytes()
    assert fetcher.cache[url].body == full.body


def test_short_body_message_gives_both_lengths(server: _CuttingServer) -> None:
    fetcher, _ = _fetcher(retries=0)
    server.modes = ["short"]
    size = (server.root / _KEV.lstrip("/")).stat().st_size
    with pytest.raises(FetchError, match=rf"body cut short: {size // 2} of the {size} bytes"):
        fetcher.get(server.base + _KEV)


def test_a_cut_retry_does_not_replace_a_good_cached_body(server: _CuttingServer) -> None:
    fetcher, _ = _fetcher(retries=0)
    url = server.base + _KEV
    good = fetcher.get(url)
    # a changed file would answer 200; the cut answer must leave the cached entry alone
    server.modes = ["short"]
    with pytest.raises(FetchError):
        fetcher.get(url)
    assert fetcher.cache[url].body == good.body
    assert fetcher.get(url).not_modified


def test_retry_after_a_cut_gets_the_whole_body(server: _CuttingServer) -> None:
    fetcher, sleeps = _fetcher(retries=2)
    server.modes = ["short", "reset"]
    result = fetcher.get(server.base + _KEV)
    assert result.status == 200
    assert result.body == (server.root / _KEV.lstrip("/")).read_bytes()
    assert sleeps == [0.25, 0.5]


def test_loader_reports_the_cut_source_and_imports_the_others(server: _CuttingServer) -> None:
    fetcher, _ = _fetcher(retries=0)
    cut = server.base + _KEV
    good = server.base + "/osv-almalinux9-2024/ALSA-2024_0001.json"
    server.modes = ["short"]
    report = Loader(fetcher=fetcher).load([cut, good])
    assert report.records_by_source() == {"osv": 1}
    assert [(e.origin, e.record) for e in report.errors] == [(cut, None)]
    assert "body cut short" in report.errors[0].reason
    assert cut not in fetcher.cache


def test_tls_handshake_failure_is_a_fetch_error(server: _CuttingServer) -> None:
    # an https URL to a plain-HTTP port: the TLS handshake fails (ssl.SSLError)
    fetcher, _ = _fetcher(retries=0)
    url = f"https://127.0.0.1:{server.httpd.server_address[1]}{_KEV}"
    with pytest.raises(FetchError) as info:
        fetcher.get(url)
    assert info.value.url == url
    assert fetcher.cache == {}


def _self_signed(cert_path: Path, key_path: Path) -> None:
    """A P-256 certificate for 127.0.0.1 that signs itself (no trusted CA issued it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_untrusted_tls_certificate_is_one_fetch_error_without_retries(
    feeds_dir: Path, tmp_path: Path
) -> None:
    # a TLS server whose certificate no trusted CA issued (an interception proxy, say)
    _self_signed(tmp_path / "cert.pem", tmp_path / "key.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    srv = _CuttingServer(feeds_dir)
    srv.httpd.socket = context.wrap_socket(srv.httpd.socket, server_side=True)
    url = f"https://127.0.0.1:{srv.httpd.server_address[1]}{_KEV}"
    fetcher, sleeps = _fetcher(retries=3)
    with serving(srv.httpd), pytest.raises(FetchError) as info:
        fetcher.get(url)
    assert str(info.value).startswith(f"{url}: TLS certificate not accepted:")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert sleeps == []  # not a transient failure: no retry
    assert srv.requests == [] and fetcher.cache == {}


def test_malformed_url_is_a_fetch_error() -> None:
    fetcher, _ = _fetcher(retries=0)
    with pytest.raises(FetchError, match=re.escape("http://127.0.0.1:notaport/x: cannot request")):
        fetcher.get("http://127.0.0.1:notaport/x")
