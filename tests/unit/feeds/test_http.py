"""HTTP connectors against a real local HTTP server (127.0.0.1, port 0) serving the real files."""

from __future__ import annotations

import email.utils
import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from patchledger.app.feeds.errors import FetchError
from patchledger.app.feeds.http import FetchConfig, Fetcher, nvd_pages, retry_after
from patchledger.app.feeds.loader import Loader
from tests.unit.feeds.http_support import serving

_MTIME = email.utils.formatdate(1_700_000_000, usegmt=True)


class _Server:
    """Serves files from the feeds folder plus scripted failures; records every request."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.failures: dict[str, list[tuple[int, dict[str, str]]]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(req.path)
        self.requests.append((req.path, dict(req.headers.items())))
        queue = self.failures.get(parts.path)
        if queue:
            status, headers = queue.pop(0)
            self._send(req, status, b"busy", headers)
            return
        if parts.path == "/rest/json/cves/2.0":
            self._nvd(req, urllib.parse.parse_qs(parts.query))
            return
        path = self.root / parts.path.lstrip("/")
        if not path.is_file():
            self._send(req, 404, b"not found", {})
            return
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if (
            req.headers.get("If-None-Match") == etag
            or req.headers.get("If-Modified-Since") == _MTIME
        ):
            self._send(req, 304, b"", {"ETag": etag})
            return
        self._send(req, 200, body, {"ETag": etag, "Last-Modified": _MTIME})

    def _nvd(self, req: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        page = json.loads(
            (self.root / "nvd-api-2.0" / "vunnel-full-page_2023-10-18.json").read_bytes()
        )
        start, size = int(query["startIndex"][0]), int(query["resultsPerPage"][0])
        items = page["vulnerabilities"]
        page.update(
            startIndex=start,
            resultsPerPage=len(items[start : start + size]),
            totalResults=len(items),
            vulnerabilities=items[start : start + size],
        )
        self._send(req, 200, json.dumps(page).encode(), {})

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        req.send_response(status)
        for key, value in headers.items():
            req.send_header(key, value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if status != 304:
            req.wfile.write(body)


@pytest.fixture
def server(feeds_dir: Path) -> Iterator[_Server]:
    srv = _Server(feeds_dir)
    with serving(srv.httpd):
        yield srv


def _fetcher(sleeps: list[float], retries: int = 3) -> Fetcher:
    return Fetcher(FetchConfig(retries=retries, backoff=0.5, timeout=10), sleep=sleeps.append)


def test_conditional_get_returns_cached_body_on_304(server: _Server) -> None:
    fetcher = _fetcher([])
    url = f"{server.base}/kev/known_exploited_vulnerabilities.json"
    first = fetcher.get(url)
    second = fetcher.get(url)
    assert (first.status, first.not_modified) == (200, False)
    assert (second.status, second.not_modified) == (304, True)
    assert second.body == first.body
    sent = server.requests[-1][1]
    assert sent["If-None-Match"] == fetcher.cache[url].etag
    assert sent["If-Modified-Since"] == _MTIME
    report = Loader(fetcher=fetcher).load([url])
    assert report.records_by_source() == {"kev": 1404}


def test_nvd_paging_follows_total_results_and_windows(server: _Server) -> None:
    fetcher = _fetcher([])
    pages = list(
        nvd_pages(
            fetcher,
            f"{server.base}/rest/json/cves/2.0",
            results_per_page=10,
            last_mod_start=datetime(2023, 10, 1, tzinfo=UTC),
            last_mod_end=datetime(2023, 10, 18, tzinfo=UTC),
            page_delay=0,
        )
    )
    assert len(pages) == 4
    queries = [urllib.parse.parse_qs(urllib.parse.urlsplit(p).query) for p, _ in server.requests]
    assert [q["startIndex"] for q in queries] == [["0"], ["10"], ["20"], ["30"]]
    assert queries[0]["lastModStartDate"] == ["2023-10-01T00:00:00.000+00:00"]
    assert queries[0]["lastModEndDate"] == ["2023-10-18T00:00:00.000+00:00"]
    ids = [v["cve"]["id"] for p in pages for v in json.loads(p.body)["vulnerabilities"]]
    assert len(ids) == len(set(ids)) == 38


def test_nvd_url_import_through_loader(server: _Server) -> None:
    loader = Loader(fetcher=_fetcher([]), nvd_page_delay=0)
    report = loader.load([f"{server.base}/rest/json/cves/2.0?resultsPerPage=999"])
    assert report.all_errors == []
    assert report.records_by_source() == {"nvd": 38}


def test_429_waits_retry_after_then_succeeds(server: _Server) -> None:
    path = "/osv-almalinux9-2024/ALSA-2024_0001.json"
    server.failures[path] = [(429, {"Retry-After": "7"}), (429, {"Retry-After": "3"})]
    sleeps: list[float] = []
    result = _fetcher(sleeps).get(server.base + path)
    assert result.status == 200
    assert sleeps == [7.0, 3.0]
    assert json.loads(result.body)["id"] == "ALSA-2024:0001"


def test_server_errors_are_retried_with_exponential_backoff(server: _Server) -> None:
    path = "/csaf/rhsa-2023_3821.json"
    server.failures[path] = [(500, {}), (502, {}), (503, {})]
    sleeps: list[float] = []
    assert _fetcher(sleeps).get(server.base + path).status == 200
    assert sleeps == [0.5, 1.0, 2.0]


def test_retries_exhausted_and_client_errors(server: _Server) -> None:
    path = "/csaf/rhsa-2023_7025.json"
    server.failures[path] = [(503, {})] * 5
    sleeps: list[float] = []
    with pytest.raises(FetchError, match="giving up after 3 attempts: HTTP 503") as info:
        _fetcher(sleeps, retries=2).get(server.base + path)
    assert info.value.status == 503
    with pytest.raises(FetchError, match="HTTP 404"):
        _fetcher([]).get(server.base + "/missing.json")
    report = Loader(fetcher=_fetcher([])).load([server.base + "/missing.json"])
    assert report.all_errors[0].origin == server.base + "/missing.json"


def test_size_limit_and_scheme(server: _Server) -> None:
    small = Fetcher(FetchConfig(max_bytes=1000, retries=0))
    with pytest.raises(FetchError, match="over the limit"):
        small.get(server.base + "/kev/known_exploited_vulnerabilities.json")
    with pytest.raises(FetchError, match="scheme 'file'"):
        small.get("file:///etc/passwd")


def test_retry_after_http_date() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now) == 30.0
    assert retry_after("120") == 120.0
    assert retry_after("soon") is None
