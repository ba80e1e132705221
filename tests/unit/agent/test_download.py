"""Downloads from a real HTTPS server on 127.0.0.1 (test CA, mutual TLS with a host
certificate) that supports Range and cuts connections mid-body: resume, restart when ranges
are ignored, the size cap, a wrong digest, partial files never taken for complete ones."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchledger.agent.download import Downloader, DownloadError
from patchledger.agent.errors import ArtifactMismatchError, ConfigError
from patchledger.agent.transport import Transport, TransportError, client_context
from tests.unit.agent.app_server import AppServer, host_files, make_pki, running

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[AppServer, Path]]:
    with running(tmp_path) as (srv, ca):
        srv.state.artifacts[SHA] = DATA
        yield srv, ca


def downloader(server: tuple[AppServer, Path], tmp_path: Path, **kwargs: int) -> Downloader:
    srv, ca = server
    cert, key = host_files(srv, tmp_path, "h1")
    transport = Transport(srv.url, client_context(ca, cert, key), timeout=10)
    return Downloader(transport, tmp_path / "downloads", **kwargs)


def ranges(srv: AppServer) -> list[str]:
    return [h.get("Range", "") for method, path, h, _ in srv.state.requests
            if "/artifacts/" in path]


def test_a_download_is_checked_and_named_by_its_digest(server, tmp_path: Path) -> None:
    got = downloader(server, tmp_path).fetch(SHA, len(DATA))
    assert got.path.read_bytes() == DATA
    assert got.path.name == SHA
    assert (got.resumed_from, got.requests) == (0, 1)
    assert not list((tmp_path / "downloads").glob("*.part"))
    assert server[0].state.requests[-1][3] == "h1"  # the server saw the host certificate


def test_a_cut_connection_is_resumed_with_a_range(server, tmp_path: Path) -> None:
    srv, _ = server
    srv.state.faults.cut_after, srv.state.faults.cuts = 100_000, 1
    got = downloader(server, tmp_path).fetch(SHA, len(DATA))
    assert got.path.read_bytes() == DATA
    assert got.requests == 2
    assert ranges(srv) == ["", "bytes=100000-"]


def test_a_partial_file_survives_a_restart_and_is_never_the_artifact(server, tmp_path) -> None:
    srv, _ = server
    srv.state.faults.cut_after, srv.state.faults.cuts = 50_000, 2
    d = downloader(server, tmp_path, attempts=1)
    with pytest.raises(DownloadError, match="cut") as failure:
        d.fetch(SHA, len(DATA))
    assert failure.value.retryable
    assert not d.path_of(SHA).exists()
    assert d.part_of(SHA).stat().st_size == 50_000
    with pytest.raises(DownloadError):  # a new agent process, cut again: 100 000 now
        downloader(server, tmp_path, attempts=1).fetch(SHA, len(DATA))
    assert d.part_of(SHA).stat().st_size == 100_000
    got = downloader(server, tmp_path).fetch(SHA, len(DATA))
    assert got.resumed_from == 100_000
    assert got.path.read_bytes() == DATA
    assert ranges(srv) == ["", "bytes=50000-", "bytes=100000-"]


def test_a_server_ignoring_ranges_restarts_from_zero(server, tmp_path: Path) -> None:
    srv, _ = server
    srv.state.faults.cut_after, srv.state.faults.cuts = 70_000, 1
    srv.state.faults.ignore_range = True
    got = downloader(server, tmp_path).fetch(SHA, len(DATA))
    assert got.path.read_bytes() == DATA


def test_a_206_for_another_offset_is_not_appended(server, tmp_path: Path) -> None:
    srv, _ = server
    srv.state.faults.cut_after, srv.state.faults.cuts = 100_000, 1
    srv.state.faults.range_shift = 10
    got = downloader(server, tmp_path).fetch(SHA, len(DATA))
    assert got.path.read_bytes() == DATA
    assert ranges(srv) == ["", "bytes=100000-", ""]  # dropped the part, then asked for all


def test_over_the_cap_is_refused_before_the_body(server, tmp_path: Path) -> None:
    d = downloader(server, tmp_path, max_bytes=1000)
    with pytest.raises(DownloadError, match="over the cap of 1000") as failure:
        d.fetch(SHA)
    assert not failure.value.retryable
    assert not d.part_of(SHA).exists()
    with pytest.raises(DownloadError, match="over the cap of 10"):  # the ledger's size
        downloader(server, tmp_path).fetch(SHA, 10)


def test_wrong_bytes_are_refused_and_deleted(server, tmp_path: Path) -> None:
    srv, _ = server
    srv.state.artifacts[SHA] = DATA[:-1] + bytes([DATA[-1] ^ 1])  # the store lies
    d = downloader(server, tmp_path)
    with pytest.raises(ArtifactMismatchError, match="sha256") as failure:
        d.fetch(SHA, len(DATA), label="P-1")
    assert failure.value.patch_id == "P-1"
    assert not d.part_of(SHA).exists()
    assert not d.path_of(SHA).exists()


def test_a_corrupt_complete_file_is_fetched_again(server, tmp_path: Path) -> None:
    d = downloader(server, tmp_path)
    d.fetch(SHA, len(DATA))
    d.path_of(SHA).write_bytes(b"bit rot")
    assert d.fetch(SHA, len(DATA)).path.read_bytes() == DATA


def test_a_complete_file_is_reused_without_a_request(server, tmp_path: Path) -> None:
    d = downloader(server, tmp_path)
    d.fetch(SHA, len(DATA))
    assert d.fetch(SHA, len(DATA)).requests == 0


def test_unknown_artifacts_and_bad_digests(server, tmp_path: Path) -> None:
    d = downloader(server, tmp_path)
    with pytest.raises(DownloadError, match="HTTP 404") as failure:
        d.fetch("0" * 64)
    assert not failure.value.retryable
    with pytest.raises(ValueError, match="not 64 lowercase hex"):
        d.fetch("../../etc/passwd")


def test_a_server_with_another_ca_is_refused(server, tmp_path: Path) -> None:
    srv, _ = server
    stranger = tmp_path / "stranger-ca.pem"
    stranger.write_bytes(make_pki().tls_ca.cert_pem)
    d = Downloader(Transport(srv.url, client_context(stranger)), tmp_path / "d")
    with pytest.raises(TransportError, match="does not verify against the pinned CA"):
        d.fetch(SHA)


def test_without_a_host_certificate_the_store_refuses(server, tmp_path: Path) -> None:
    srv, ca = server
    d = Downloader(Transport(srv.url, client_context(ca)), tmp_path / "d")
    with pytest.raises(DownloadError, match="HTTP 401"):
        d.fetch(SHA)


def test_plain_http_is_not_accepted(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_pki().tls_ca.cert_pem)
    with pytest.raises(ConfigError, match="https"):
        Transport("http://127.0.0.1:1", client_context(ca))


def test_a_server_that_is_down_is_a_retryable_error(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_pki().tls_ca.cert_pem)
    d = Downloader(Transport("https://127.0.0.1:22999", client_context(ca), timeout=2),
                   tmp_path / "d")
    with pytest.raises(TransportError, match="no answer") as failure:
        d.fetch(SHA)
    assert failure.value.retryable


def test_error_messages_of_either_error_shape_reach_the_log() -> None:
    from patchledger.agent.transport import Response, _summary

    flat = Response(403, {}, b'{"error": "token", "message": "token already used"}')
    nested = Response(401, {}, b'{"error": {"code": 401, "message": "token was used"}}')
    assert _summary(flat) == "token already used"
    assert _summary(nested) == "token was used"
    assert _summary(Response(502, {}, b"<html>bad gateway</html>")) == "<html>bad gateway</html>"
