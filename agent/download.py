"""Download an artifact from the app's content-addressed store: resumable, capped, and
checked against its SHA-256 before anyone may read it.

``GET /api/v1/agent/artifacts/<sha256>`` (docs/agent.md). Files, in the download directory:

- ``<sha256>.part``: bytes received so far. Never read as an artifact.
- ``<sha256>``: only ever created by renaming a ``.part`` whose SHA-256 **and** size were
  just checked (and fsynced first), so a file under this name is complete and genuine; it is
  hashed again when reused.

Resuming: with a ``.part`` of ``n`` bytes the request carries ``Range: bytes=n-``. A ``206``
whose ``Content-Range`` starts at ``n`` is appended; a ``200`` (the server ignores ranges)
restarts from zero with its body; a ``206`` for another offset drops the part (the next
attempt asks for everything); ``416`` means the part already holds the
whole resource (it is checked). A connection cut in the middle of a body keeps what arrived
and the next attempt continues from there (``attempts`` per call, immediately; the caller's
backoff spaces the calls).

Caps: the expected size (the ledger's record) when given, and ``max_bytes`` always. A
``Content-Length``/``Content-Range`` total over the cap is refused before the body is read; a
body that grows past it is cut and its part deleted. A wrong digest deletes the part (the
store served other bytes: :class:`~agent.errors.ArtifactMismatchError`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
from dataclasses import dataclass
from pathlib import Path

from patchledger.agent.durable import fsync_dir
from patchledger.agent.errors import ArtifactMismatchError
from patchledger.agent.transport import Transport, TransportError

__all__ = ["DEFAULT_MAX_BYTES", "DownloadError", "Downloader", "Fetched"]

#: Default cap on an artifact's size.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
CHUNK = 64 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class DownloadError(TransportError):
    """The artifact could not be downloaded (retryable unless over the cap or refused)."""


@dataclass(frozen=True)
class Fetched:
    """A complete, checked artifact.

    Attributes:
        path: the file (named by its SHA-256).
        size: its size.
        resumed_from: bytes that were already there from an earlier attempt (0: fresh).
        requests: HTTP requests this call made.
    """

    path: Path
    size: int
    resumed_from: int
    requests: int


class Downloader:
    """Fetch artifacts by digest into ``directory`` (module docstring)."""

    def __init__(self, transport: Transport, directory: Path, *,
                 max_bytes: int = DEFAULT_MAX_BYTES, attempts: int = 3) -> None:
        self.transport = transport
        self.directory = directory
        self.max_bytes = max_bytes
        self.attempts = max(1, attempts)

    def path_of(self, sha256: str) -> Path:
        """Where the complete artifact lives."""
        return self.directory / sha256

    def part_of(self, sha256: str) -> Path:
        """Where its partial download lives."""
        return self.directory / f"{sha256}.part"

    def fetch(self, sha256: str, size: int | None = None, *, label: str = "") -> Fetched:
        """The artifact with this digest, downloaded or resumed as needed.

        Args:
            sha256: lowercase hex SHA-256 (the ledger's record).
            size: the expected size (the ledger's record), a tighter cap than ``max_bytes``.
            label: the patch id, for messages (default: the digest).

        Raises:
            ValueError: ``sha256`` is not 64 lowercase hex digits.
            DownloadError: over the cap (not retryable), or every attempt was cut short
                (retryable; the part is kept for the next call).
            ArtifactMismatchError: the bytes' digest or size is not the expected one (the
                part is deleted).
            TransportError: the server refused (404, 403, ...) or is unreachable.
        """
        if not _SHA256.match(sha256):
            raise ValueError(f"artifact digest {sha256!r} is not 64 lowercase hex digits")
        cap = min(self.max_bytes, size) if size is not None else self.max_bytes
        done = self.path_of(sha256)
        if done.is_file():
            if _digest(done) == sha256 and (size is None or done.stat().st_size == size):
                return Fetched(done, done.stat().st_size, done.stat().st_size, 0)
            done.unlink()  # not what its name says (a disk fault): fetch again
        self.directory.mkdir(parents=True, exist_ok=True)
        part = self.part_of(sha256)
        resumed_from = part.stat().st_size if part.exists() else 0
        requests = 0
        last: DownloadError | None = None
        for _ in range(self.attempts):
            requests += 1
            try:
                self._attempt(sha256, part, cap)
            except DownloadError as exc:
                if not exc.retryable:
                    raise
                last = exc
                continue
            return self._finish(sha256, part, size, resumed_from, requests, label or sha256)
        assert last is not None
        raise last

    def _attempt(self, sha256: str, part: Path, cap: int) -> None:
        """One request; returns once the part holds the whole resource (as far as the
        server's lengths tell; the digest decides)."""
        path = f"/api/v1/agent/artifacts/{sha256}"
        where = self.transport.endpoint("GET", path)
        have = part.stat().st_size if part.exists() else 0
        if have > cap:
            part.unlink()
            have = 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.transport.open("GET", path, headers=headers) as (response, _nonce):
            status = response.status
            if status == 416 and have:
                return  # the part already holds everything: _finish checks it
            if status == 200:
                start, total = 0, _length(response)
            elif status == 206 and have:
                start, total = _range(response, where)
            else:
                response.read(4096)
                raise DownloadError(where, f"HTTP {status}", status=status,
                                    retryable=status in (408, 429) or status >= 500)
            if status == 206 and start != have:
                part.unlink(missing_ok=True)  # another range than asked: the next try is whole
                raise DownloadError(where, f"206 for bytes from {start}, asked from {have};"
                                    " starting over", status=206)
            if start != have:
                have = 0  # the server sent the whole body: start over
            if total is not None and total > cap:
                part.unlink(missing_ok=True)
                raise DownloadError(where, f"artifact is {total} bytes, over the cap of {cap}",
                                    status=status, retryable=False)
            self._receive(response, part, have, cap, where)
        size = part.stat().st_size
        if total is not None and size < total:
            raise DownloadError(where, f"connection cut: body ended at {size} of {total} bytes")

    def _receive(self, response: http.client.HTTPResponse, part: Path, have: int, cap: int,
                 where: str) -> None:
        mode = "ab" if have else "wb"
        with part.open(mode) as out:
            received = have
            try:
                while chunk := response.read(CHUNK):
                    received += len(chunk)
                    if received > cap:
                        out.close()
                        part.unlink(missing_ok=True)
                        raise DownloadError(where, f"body exceeds the cap of {cap} bytes",
                                            retryable=False)
                    out.write(chunk)
            except (OSError, http.client.HTTPException) as exc:
                out.flush()
                os.fsync(out.fileno())
                raise DownloadError(where, f"connection cut after {received} bytes:"
                                    f" {type(exc).__name__}") from exc
            out.flush()
            os.fsync(out.fileno())

    def _finish(self, sha256: str, part: Path, size: int | None, resumed_from: int,
                requests: int, label: str) -> Fetched:
        actual = _digest(part)
        length = part.stat().st_size
        if actual != sha256 or (size is not None and length != size):
            part.unlink()
            field, expected, got = (("sha256", sha256, actual) if actual != sha256
                                    else ("size", str(size), str(length)))
            raise ArtifactMismatchError(label, field, expected, got)
        done = self.path_of(sha256)
        part.replace(done)
        fsync_dir(self.directory)
        return Fetched(done, length, resumed_from, requests)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _length(response: http.client.HTTPResponse) -> int | None:
    value = response.getheader("Content-Length")
    return int(value) if value and value.isdigit() else None


def _range(response: http.client.HTTPResponse, where: str) -> tuple[int, int | None]:
    match = _CONTENT_RANGE.match(response.getheader("Content-Range") or "")
    if not match:
        raise DownloadError(where, f"206 with a malformed Content-Range"
                            f" {response.getheader('Content-Range')!r}", status=206)
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total

