"""HTTP(S) fetching of feeds: conditional GET, rate limits, retries with backoff, paging.

The :class:`Fetcher` uses only ``urllib`` from the standard library. It sends
``If-None-Match``/``If-Modified-Since`` from its cache and returns the cached body on
``304 Not Modified``; honours ``Retry-After`` on 429 and 503; retries 5xx answers and
connection failures with exponential backoff; refuses bodies over a size limit. The sleep
function is injectable so tests need not wait.

A body counts only when it is complete: one shorter than its ``Content-Length`` or a
connection cut mid-body (a reset, a timeout, a TLS error, a chunked body that ends early) is
retried like a connection failure and never returned or cached. Every failure of
:meth:`Fetcher.get` surfaces as one :class:`~patchledger.app.feeds.errors.FetchError` naming
the URL (as python-tuf's fetcher turns every transport problem into one download error). A
body with neither ``Content-Length`` nor chunked framing ends when the server closes the
connection, so a cut there cannot be told from the end: feeds served that way (none of the
public ones are) are checked only by their parsers (truncated JSON, a declared count, a DSA
list that ends mid-line).
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from patchledger.app.feeds.errors import FetchError
from patchledger.app.feeds.jsontext import load_json

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """Transport settings. ``backoff`` is the first retry delay in seconds; it doubles."""

    timeout: float = 30.0
    max_bytes: int = 512 * 1024 * 1024
    retries: int = 4
    backoff: float = 1.0
    max_delay: float = 120.0
    user_agent: str = "patchledger-feeds/0.1"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """What a conditional request needs: validators and the body they validate."""

    body: bytes
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A fetched body; ``not_modified`` is true when it came from the cache after a 304."""

    url: str
    body: bytes
    status: int
    not_modified: bool = False


class Fetcher:
    """Fetches URLs with conditional requests, retries and rate-limit handling.

    The cache is a plain mapping from URL to :class:`CacheEntry` (in memory by default);
    pass a persistent mapping to keep validators across runs.
    """

    def __init__(
        self,
        config: FetchConfig | None = None,
        *,
        cache: dict[str, CacheEntry] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or FetchConfig()
        if self.config.retries < 0 or self.config.backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        self.cache: dict[str, CacheEntry] = {} if cache is None else cache
        self._sleep = sleep
        self.requests = 0

    def get(self, url: str) -> FetchResult:
        """GET ``url``; return the new body, or the cached one on 304.

        Raises:
            FetchError: the only error raised, always naming ``url``: a non-HTTP(S) URL, a 4xx
                other than 429, a status other than 200/304, a body over the size limit, a TLS
                certificate not accepted, or retries exhausted on 429/5xx, connection
                failures and bodies cut short (nothing of those is returned or cached).
        """
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise FetchError(url, f"scheme {scheme!r} is not http or https")
        attempt = 0
        while True:
            try:
                return self._attempt(url)
            except _Retry as retry:
                if attempt >= self.config.retries:
                    raise FetchError(
                        url, f"giving up after {attempt + 1} attempts: {retry.reason}", retry.status
                    ) from None
                delay = retry.delay if retry.delay is not None else self.config.backoff * 2**attempt
                delay = min(delay, self.config.max_delay)
                log.info("%s: %s; retrying in %.1fs", url, retry.reason, delay)
                self._sleep(delay)
                attempt += 1

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` with the fetcher's sleep function (between NVD pages, say)."""
        self._sleep(seconds)

    def _attempt(self, url: str) -> FetchResult:
        """One request. A body is kept (and cached) only once it is known to be complete."""
        cached = self.cache.get(url)
        request = urllib.request.Request(url, headers=self._headers(cached))  # noqa: S310
        self.requests += 1
        try:
            # the scheme was checked in get(): only http and https reach urlopen
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:  # noqa: S310
                status = response.status
                if status != 200:
                    raise FetchError(url, f"unexpected HTTP status {status}", status)
                body = self._read(url, response)
                entry = CacheEntry(
                    body, response.headers.get("ETag"), response.headers.get("Last-Modified")
                )
        except urllib.error.HTTPError as exc:
            return self._http_error(url, exc, cached)
        except urllib.error.URLError as exc:
            # raised while connecting: DNS, refused, TLS handshake and certificate checks
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise FetchError(url, f"TLS certificate not accepted: {exc.reason}") from exc
            raise _Retry(f"connection failed: {exc.reason}") from exc
        except (ValueError, http.client.InvalidURL) as exc:
            # a URL http.client refuses (a port that is not a number, say)
            raise FetchError(url, f"cannot request: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            # raised while reading: a reset or cut connection, a timeout, a TLS error, a
            # chunked body that ends early (IncompleteRead), a malformed status line
            raise _Retry(f"connection failed while reading: {_describe(exc)}") from exc
        if entry.etag or entry.last_modified:
            self.cache[url] = entry
        return FetchResult(url, body, 200)

    def _http_error(
        self, url: str, exc: urllib.error.HTTPError, cached: CacheEntry | None
    ) -> FetchResult:
        exc.close()
        if exc.code == 304 and cached is not None:
            return FetchResult(url, cached.body, 304, not_modified=True)
        if exc.code == 429 or exc.code >= 500:
            delay = retry_after(exc.headers.get("Retry-After"))
            raise _Retry(f"HTTP {exc.code}", exc.code, delay)
        raise FetchError(url, f"HTTP {exc.code} {exc.reason}", exc.code)

    def _headers(self, cached: CacheEntry | None) -> dict[str, str]:
        headers = {"User-Agent": self.config.user_agent, "Accept-Encoding": "identity"}
        headers.update(self.config.headers)
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        return headers

    def _read(self, url: str, response: Any) -> bytes:
        """The whole body, checked against the size limit and its ``Content-Length``.

        Raises:
            FetchError: ``Content-Length`` over the limit, not a number, or the body over it.
            _Retry: the body is shorter than its ``Content-Length`` (the connection was cut).
        """
        limit = self.config.max_bytes
        length_text = response.headers.get("Content-Length")
        length: int | None = None
        if length_text is not None:
            if not length_text.strip().isdigit():
                raise FetchError(url, f"Content-Length {length_text!r} is not a number")
            length = int(length_text)
            if length > limit:
                raise FetchError(url, f"body of {length} bytes is over the limit of {limit}")
        body: bytes = response.read(limit + 1)
        if len(body) > limit:
            raise FetchError(url, f"body is over the limit of {limit} bytes")
        if length is not None and len(body) != length:
            # http.client returns what arrived before the connection closed without an error
            raise _Retry(f"body cut short: {len(body)} of the {length} bytes of its Content-Length")
        return body


class _Retry(Exception):
    def __init__(self, reason: str, status: int | None = None, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.delay = delay


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"body cut short after {len(exc.partial)} bytes"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or ``None``."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


# --- NVD CVE API 2.0 paging ------------------------------------------------------------------

#: The NVD API refuses lastModStartDate/lastModEndDate windows longer than 120 days.
NVD_MAX_WINDOW = timedelta(days=120)


def nvd_windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Split ``[start, end]`` into consecutive windows the NVD API accepts."""
    if end < start:
        raise ValueError("end is before start")
    cursor = start
    while cursor < end:
        stop = min(cursor + NVD_MAX_WINDOW, end)
        yield cursor, stop
        cursor = stop


def nvd_pages(
    fetcher: Fetcher,
    base_url: str,
    *,
    last_mod_start: datetime | None = None,
    last_mod_end: datetime | None = None,
    results_per_page: int = 2000,
    page_delay: float = 6.0,
) -> Iterator[FetchResult]:
    """Yield every page of an NVD CVE API 2.0 query, following ``startIndex``/``totalResults``.

    With ``last_mod_start``/``last_mod_end`` the range is split into 120-day windows, each
    paged in turn. ``page_delay`` seconds pass between requests (NVD asks for 6 s without an
    API key).

    Raises:
        FetchError: on transport failure or a page that is not an NVD API response.
    """
    if (last_mod_start is None) != (last_mod_end is None):
        raise ValueError("give both last_mod_start and last_mod_end, or neither")
    windows: list[tuple[datetime, datetime] | None]
    if last_mod_start is not None and last_mod_end is not None:
        windows = list(nvd_windows(last_mod_start, last_mod_end))
    else:
        windows = [None]
    first = True
    for window in windows:
        start_index = 0
        while True:
            params: dict[str, str] = {
                "startIndex": str(start_index),
                "resultsPerPage": str(results_per_page),
            }
            if window is not None:
                params["lastModStartDate"] = _nvd_time(window[0])
                params["lastModEndDate"] = _nvd_time(window[1])
            if not first and page_delay:
                fetcher.pause(page_delay)
            first = False
            url = _with_query(base_url, params)
            page = fetcher.get(url)
            total, count = _page_counts(url, page.body)
            yield page
            start_index += count
            if count == 0 or start_index >= total:
                break


def _page_counts(url: str, body: bytes) -> tuple[int, int]:
    try:
        doc = load_json(body)
        total = int(doc["totalResults"])
        count = len(doc["vulnerabilities"])
    except (ValueError, KeyError, TypeError, OverflowError) as exc:  # MalformedJSON: a ValueError
        raise FetchError(url, f"not an NVD API page: {exc}") from exc
    return total, count


def _nvd_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def _with_query(base_url: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(base_url)
    query = urllib.parse.parse_qsl(parts.query) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
