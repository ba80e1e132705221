"""Content-addressed artifact storage.

An artifact is stored under its SHA-256 (lower-case hex). Writes stream: the content is
hashed and counted chunk by chunk while it goes to a temporary file, so a size limit stops an
oversized upload at the first byte over it, whatever the client claimed; the digest is
compared with the expected one (the patch record's ``artifact_sha256``) before the file
becomes visible. A visible file is complete: temp file in the store, fsync, rename, fsync of
the directory. Storing the same content twice keeps one file. Reads serve byte ranges (HTTP
range requests of agents resuming a download).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from patchledger.app.errors import UserError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20
#: Default limit of one artifact (2 GiB).
DEFAULT_MAX_SIZE = 2 << 30


class ArtifactError(UserError):
    """Base of the store's refusals; nothing was stored."""


class InvalidDigest(ArtifactError):
    """A digest is not 64 lower-case hex characters."""


class DigestMismatch(ArtifactError):
    """The content's SHA-256 is not the expected one."""

    def __init__(self, expected: str, actual: str, size: int) -> None:
        super().__init__(
            f"artifact digest mismatch: expected sha256 {expected}, the {size} bytes "
            f"received hash to {actual}; nothing was stored"
        )
        self.expected, self.actual, self.size = expected, actual, size


class ArtifactTooLarge(ArtifactError):
    """The content exceeds the size limit (or the expected size)."""

    def __init__(self, limit: int, what: str = "size limit") -> None:
        super().__init__(
            f"artifact larger than the {what} of {limit} bytes; the upload was stopped "
            "and nothing was stored"
        )
        self.limit = limit


class SizeMismatch(ArtifactError):
    """The content's size is not the expected one."""


class ArtifactNotFound(ArtifactError):
    """No artifact with that digest is stored."""


class RangeNotSatisfiable(ArtifactError):
    """A byte range outside the artifact (HTTP 416); ``size`` is the artifact's size."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


@dataclass(frozen=True)
class StoredArtifact:
    """A stored artifact: its digest and size; ``created`` is False when it was already
    stored (same content)."""

    sha256: str
    size: int
    created: bool = False


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range ``start..end`` of an artifact."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The HTTP ``Content-Range`` value, e.g. ``bytes 0-99/1000``."""
        return f"bytes {self.start}-{self.end}/{size}"


def check_digest(value: str, field: str = "sha256") -> str:
    """``value`` if it is a SHA-256 in lower-case hex.

    Raises:
        InvalidDigest: naming ``field`` and the value.
    """
    if not isinstance(value, str) or not _SHA256.match(value):
        raise InvalidDigest(f"invalid {field} {value!r}: must be 64 lower-case hex characters")
    return value


def parse_range_header(value: str, size: int) -> ByteRange:
    """The byte range of an HTTP ``Range`` header for an artifact of ``size`` bytes: one
    range, ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` (the last n bytes); an end past the
    artifact is clamped as RFC 9110 says.

    Raises:
        RangeNotSatisfiable: malformed, several ranges, or starting past the end.
    """
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value or "")
    if match is None or (not match.group(1) and not match.group(2)):
        raise RangeNotSatisfiable(
            f"unsupported Range {value!r}: use one range bytes=START-END, START- or -SUFFIX",
            size,
        )
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"Range {value!r} selects no byte of {size}", size)
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(
            f"Range {value!r} is outside the artifact of {size} bytes", size
        )
    return ByteRange(start, min(end, size - 1))


class ArtifactStore(Protocol):
    """What the API, the dispatcher and the CLI need from an artifact store."""

    def put(
        self,
        content: BinaryIO | Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
    ) -> StoredArtifact:
        """Store streamed content, durably, under its SHA-256.

        Raises:
            InvalidDigest: ``expected_sha256`` is malformed.
            ArtifactTooLarge: over the store's limit or ``expected_size``.
            SizeMismatch: shorter than ``expected_size``.
            DigestMismatch: the content's digest is not ``expected_sha256``.
        """
        ...

    def stat(self, sha256: str) -> StoredArtifact:
        """The stored artifact's size.

        Raises:
            InvalidDigest, ArtifactNotFound.
        """
        ...

    def exists(self, sha256: str) -> bool:
        """True when the artifact is stored (False for malformed digests)."""
        ...

    def read(self, sha256: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        """The content (or the inclusive range), in chunks.

        Raises:
            InvalidDigest, ArtifactNotFound, RangeNotSatisfiable.
        """
        ...

    def delete(self, sha256: str) -> bool:
        """Remove the artifact; False when it was not stored.

        Raises:
            InvalidDigest.
        """
        ...


class FilesystemStore:
    """Artifacts as files ``<root>/sha256/<ab>/<digest>`` (``ab``: the first two hex digits).

    Temporary files are written in ``<root>/tmp`` (same file system, so the rename is atomic)
    and removed on any failure; leftovers of a crash are removed when the store opens.
    """

    def __init__(self, root: str | Path, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if max_size < 0:
            raise ValueError("max_size must be >= 0")
        self.root = Path(root)
        self.max_size = max_size
        self._objects = self.root / "sha256"
        self._tmp = self.root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.glob("upload-*"):
            leftover.unlink(missing_ok=True)

    def path_of(self, sha256: str) -> Path:
        """Where the artifact ``sha256`` is (or would be) stored.

        Raises:
            InvalidDigest.
        """
        check_digest(sha256)
        return self._objects / sha256[:2] / sha256

    def put(
        self,
        content: BinaryIO | Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
    ) -> StoredArtifact:
        """See :meth:`ArtifactStore.put`."""
        if expected_sha256 is not None:
            check_digest(expected_sha256, "expected sha256")
        limit, what = self.max_size, "store's size limit"
        if expected_size is not None:
            if expected_size < 0:
                raise SizeMismatch(f"invalid expected size {expected_size}: must be >= 0")
            if expected_size > self.max_size:
                raise ArtifactTooLarge(self.max_size, what)
            limit, what = expected_size, "expected size"
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _chunks(content):
                    size += len(chunk)
                    if size > limit:
                        raise ArtifactTooLarge(limit, what)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if expected_size is not None and size != expected_size:
                raise SizeMismatch(
                    f"artifact size mismatch: expected {expected_size} bytes, received "
                    f"{size}; nothing was stored"
                )
            if expected_sha256 is not None and actual != expected_sha256:
                raise DigestMismatch(expected_sha256, actual, size)
            final = self.path_of(actual)
            if final.exists() and final.stat().st_size == size:
                return StoredArtifact(actual, size, created=False)
            final.parent.mkdir(exist_ok=True)
            tmp.chmod(0o644)
            tmp.replace(final)
            _fsync_dir(final.parent)
            return StoredArtifact(actual, size, created=True)
        except OSError as exc:
            if exc.filename is not None:
                raise
            # a write or fsync error names no file: name the store (a full disk)
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.root)) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def stat(self, sha256: str) -> StoredArtifact:
        """See :meth:`ArtifactStore.stat`."""
        path = self.path_of(sha256)
        try:
            return StoredArtifact(sha256, path.stat().st_size)
        except FileNotFoundError:
            raise ArtifactNotFound(f"no artifact with sha256 {sha256} is stored") from None

    def exists(self, sha256: str) -> bool:
        """See :meth:`ArtifactStore.exists`."""
        try:
            return self.path_of(sha256).is_file()
        except InvalidDigest:
            return False

    def read(self, sha256: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        """See :meth:`ArtifactStore.read`. The file is opened before this returns, so a
        missing artifact raises here, not during iteration."""
        size = self.stat(sha256).size
        if byte_range is not None and (
            byte_range.start < 0 or byte_range.end < byte_range.start or byte_range.end >= size
        ):
            raise RangeNotSatisfiable(
                f"range {byte_range.start}-{byte_range.end} is outside the artifact of "
                f"{size} bytes", size)
        try:
            handle = self.path_of(sha256).open("rb")
        except FileNotFoundError:
            raise ArtifactNotFound(f"no artifact with sha256 {sha256} is stored") from None
        start = byte_range.start if byte_range else 0
        remaining = byte_range.length if byte_range else size
        return _read(handle, start, remaining)

    def verify(self, sha256: str) -> bool:
        """True when the stored file still hashes to its name (detects tampering with the
        store; agents verify on the host anyway).

        Raises:
            InvalidDigest, ArtifactNotFound.
        """
        digest = hashlib.sha256()
        for chunk in self.read(sha256):
            digest.update(chunk)
        return digest.hexdigest() == sha256

    def delete(self, sha256: str) -> bool:
        """See :meth:`ArtifactStore.delete`."""
        path = self.path_of(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True


def _chunks(content: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    read = getattr(content, "read", None)
    if read is not None:
        while True:
            chunk = read(CHUNK)
            if not chunk:
                return
            yield bytes(chunk)
    else:
        for chunk in content:
            if chunk:
                yield bytes(chunk)


def _read(handle: BinaryIO, start: int, remaining: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
