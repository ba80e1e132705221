"""HTTPS to the organization's app: one place that opens connections, sets the protocol
headers and turns every failure into a :class:`TransportError` naming the endpoint.

- HTTPS only; the server is checked against the pinned CA file (the organization's TLS root,
  never the system store) and its host name. With the host certificate and key, the
  connection is mutual TLS: the app knows the host by its certificate.
- Every request carries ``X-Patchledger-Nonce`` (128 random bits, hex) and
  ``X-Patchledger-Time`` (seconds since the epoch); JSON API answers must echo the nonce in
  ``X-Patchledger-Nonce`` (docs/agent.md), else :class:`ProtocolError`.
- Answers are read up to a size cap; a longer body is refused, not truncated.

The standard library's ``http.client`` is used directly (no extra dependency): the download
needs the raw response for ``Range`` and to notice a connection cut in the middle of a body.
"""

from __future__ import annotations

import http.client
import json
import secrets
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from patchledger.agent.errors import AgentError, ConfigError

__all__ = [
    "NONCE_HEADER",
    "TIME_HEADER",
    "ProtocolError",
    "Response",
    "Transport",
    "TransportError",
    "client_context",
    "new_nonce",
]

NONCE_HEADER = "X-Patchledger-Nonce"
TIME_HEADER = "X-Patchledger-Time"
#: Largest JSON answer read.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
USER_AGENT = "patchledger-agent/1"


class TransportError(AgentError):
    """The app could not be reached or answered with an error.

    Attributes:
        endpoint: ``METHOD URL``.
        status: the HTTP status (0 when there was no answer).
        retryable: trying again later may succeed (connection errors, 429, 5xx).
        retry_after: seconds the server asked to wait (``Retry-After``), ``None`` if not.
    """

    def __init__(self, endpoint: str, problem: str, *, status: int = 0, retryable: bool = True,
                 retry_after: float | None = None) -> None:
        self.endpoint = endpoint
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"{endpoint}: {problem}")


class ProtocolError(TransportError):
    """The app answered, but not in the protocol (garbage JSON, a missing nonce echo, a
    field of the wrong type)."""


@dataclass(frozen=True)
class Response:
    """A complete answer: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self, endpoint: str) -> Any:
        """The body as JSON.

        Raises:
            ProtocolError: it is not JSON.
        """
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(endpoint, f"answer is not JSON: {self.body[:80]!r}",
                                status=self.status) from exc


def new_nonce() -> str:
    """A fresh request nonce: 128 random bits as hex."""
    return secrets.token_hex(16)


def client_context(ca_file: Path, cert_file: Path | None = None,
                   key_file: Path | None = None) -> ssl.SSLContext:
    """A TLS client context trusting only ``ca_file``, with the host certificate for mutual
    TLS when given. TLS 1.2 or newer, host names checked.

    Raises:
        ConfigError: a file is missing or not a certificate/key.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(ca_file))
        if cert_file is not None:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS files {ca_file}, {cert_file}, {key_file}: {exc}") from exc
    return context


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: not worth parsing; the backoff applies


class Transport:
    """Requests to one app (``base_url``, ``https://host:port``)."""

    def __init__(self, base_url: str, context: ssl.SSLContext, *, timeout: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        """Raises:
        ConfigError: the URL is not ``https://host[:port][/prefix]``.
        """
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError(f"server URL must be https://host[:port], not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or 443
        self._prefix = parts.path.rstrip("/")
        self._context = context
        self._timeout = timeout
        self._clock = clock

    def endpoint(self, method: str, path: str) -> str:
        """``METHOD URL`` for messages."""
        return f"{method} {self.base_url}{path}"

    @contextmanager
    def open(self, method: str, path: str, *, body: bytes | None = None,
             headers: Mapping[str, str] | None = None,
             nonce: str | None = None) -> Iterator[tuple[http.client.HTTPResponse, str]]:
        """Send a request; yields the raw response (body unread) and the nonce sent.

        Raises:
            TransportError: no connection, TLS failure, no answer.
        """
        nonce = nonce or new_nonce()
        sent = {
            "Host": self._host if self._port == 443 else f"{self._host}:{self._port}",
            "User-Agent": USER_AGENT,
            NONCE_HEADER: nonce,
            TIME_HEADER: str(int(self._clock())),
            **(headers or {}),
        }
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        where = self.endpoint(method, path)
        connection = http.client.HTTPSConnection(self._host, self._port, context=self._context,
                                                 timeout=self._timeout)
        try:
            try:
                connection.request(method, self._prefix + path, body=body, headers=sent)
                response = connection.getresponse()
            except ssl.SSLCertVerificationError as exc:
                raise TransportError(where, f"the server's certificate does not verify against"
                                     f" the pinned CA: {exc.verify_message}",
                                     retryable=False) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise TransportError(where, f"no answer: {type(exc).__name__}: {exc}") from exc
            yield response, nonce
        finally:
            connection.close()

    def request(self, method: str, path: str, *, document: Any = None,
                headers: Mapping[str, str] | None = None,
                ok: tuple[int, ...] = (200,)) -> Response:
        """A JSON API call: the whole answer, its nonce echo checked.

        Args:
            document: the JSON body (``None``: no body).
            ok: the statuses that are answers (others raise).

        Raises:
            TransportError: no answer, a status outside ``ok`` (retryable for 408, 429 and
                5xx, with ``Retry-After``), an answer over the size cap.
            ProtocolError: the nonce is not echoed.
        """
        body = None if document is None else json.dumps(document, sort_keys=True).encode()
        where = self.endpoint(method, path)
        with self.open(method, path, body=body, headers=headers) as (raw, nonce):
            try:
                data = raw.read(MAX_ANSWER_BYTES + 1)
            except (OSError, http.client.HTTPException) as exc:
                raise TransportError(where, f"answer cut off: {exc}", status=raw.status) from exc
            answer = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data)
        if len(data) > MAX_ANSWER_BYTES:
            raise ProtocolError(where, f"answer larger than {MAX_ANSWER_BYTES} bytes",
                                status=answer.status)
        if answer.status not in ok:
            raise TransportError(
                where, f"HTTP {answer.status}: {_summary(answer)}", status=answer.status,
                retryable=answer.status in (408, 429) or answer.status >= 500,
                retry_after=_retry_after(answer.headers.get("retry-after")),
            )
        if answer.headers.get(NONCE_HEADER.lower()) != nonce:
            raise ProtocolError(where, f"the answer does not echo the request's nonce"
                                f" ({NONCE_HEADER})", status=answer.status)
        return answer


def _summary(answer: Response) -> str:
    try:
        doc = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        return answer.body[:200].decode("utf-8", errors="replace") or "(empty)"
    if isinstance(doc, dict) and "error" in doc:
        error = doc["error"]
        if isinstance(error, dict):  # the org app's {"error": {"code", "message"}}
            return str(error.get("message") or error)[:300]
        return str(doc.get("message") or error)[:300]
    return str(doc)[:200]
