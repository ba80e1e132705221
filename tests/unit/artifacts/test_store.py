"""The filesystem artifact store: content addressing, streaming size limits, digest checks
that store nothing on mismatch, durable atomic writes, and byte ranges."""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchledger.app.artifacts import (
    ArtifactNotFound,
    ArtifactStore,
    ArtifactTooLarge,
    ByteRange,
    DigestMismatch,
    FilesystemStore,
    InvalidDigest,
    RangeNotSatisfiable,
    parse_range_header,
)
from patchledger.app.artifacts.store import SizeMismatch

CONTENT = b"xz-utils_5.4.5-0.3_amd64.deb " * 100_000  # ~2.9 MB: several chunks
DIGEST = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "artifacts", max_size=4 << 20)


def _files(store: FilesystemStore) -> list[Path]:
    return sorted(p for p in store.root.rglob("*") if p.is_file())


def test_put_and_read_back_by_digest(store: FilesystemStore) -> None:
    stored = store.put(io.BytesIO(CONTENT), expected_sha256=DIGEST,
                       expected_size=len(CONTENT))
    assert (stored.sha256, stored.size, stored.created) == (DIGEST, len(CONTENT), True)
    assert b"".join(store.read(DIGEST)) == CONTENT
    assert store.path_of(DIGEST) == store.root / "sha256" / DIGEST[:2] / DIGEST
    assert store.stat(DIGEST).size == len(CONTENT) and store.exists(DIGEST)
    assert store.verify(DIGEST)
    again = store.put(iter([CONTENT[:10], CONTENT[10:]]))  # an iterable of chunks
    assert (again.sha256, again.created) == (DIGEST, False)
    assert _files(store) == [store.path_of(DIGEST)]  # one file, no temp left


def test_a_wrong_digest_stores_nothing(store: FilesystemStore) -> None:
    wrong = hashlib.sha256(b"what the patch record says").hexdigest()
    with pytest.raises(DigestMismatch) as raised:
        store.put(io.BytesIO(CONTENT), expected_sha256=wrong)
    assert raised.value.actual == DIGEST and wrong in str(raised.value)
    assert _files(store) == [] and not store.exists(DIGEST)


def test_an_oversized_stream_is_stopped_at_the_limit(store: FilesystemStore) -> None:
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        for _ in itertools.count():
            pulled += 1
            yield b"\0" * 65536

    with pytest.raises(ArtifactTooLarge, match=f"size limit of {4 << 20} bytes"):
        store.put(endless())
    assert pulled == (4 << 20) // 65536 + 1  # stopped at the first chunk over the limit
    assert _files(store) == []


def test_expected_size_is_a_limit_and_a_check(store: FilesystemStore) -> None:
    with pytest.raises(ArtifactTooLarge, match="expected size of 10 bytes"):
        store.put(io.BytesIO(b"x" * 11), expected_size=10)
    with pytest.raises(SizeMismatch, match="expected 10 bytes, received 9"):
        store.put(io.BytesIO(b"x" * 9), expected_size=10)
    with pytest.raises(ArtifactTooLarge):
        store.put(io.BytesIO(b""), expected_size=5 << 20)  # above the store's limit
    assert _files(store) == []


@pytest.mark.parametrize("bad", ["", "ABC", "g" * 64, DIGEST.upper(), DIGEST[:63], "../" * 21])
def test_malformed_digests_are_refused(store: FilesystemStore, bad: str) -> None:
    with pytest.raises(InvalidDigest, match="64 lower-case hex"):
        store.read(bad)
    with pytest.raises(InvalidDigest):
        store.put(io.BytesIO(b"x"), expected_sha256=bad)
    assert not store.exists(bad)


def test_missing_artifacts(store: FilesystemStore) -> None:
    with pytest.raises(ArtifactNotFound, match=DIGEST):
        store.read(DIGEST)
    with pytest.raises(ArtifactNotFound):
        store.stat(DIGEST)
    assert store.delete(DIGEST) is False


def test_byte_ranges(store: FilesystemStore) -> None:
    store.put(io.BytesIO(CONTENT))
    size = len(CONTENT)
    for header, expected in [
        ("bytes=0-99", CONTENT[:100]),
        ("bytes=100-", CONTENT[100:]),
        ("bytes=-50", CONTENT[-50:]),
        (f"bytes={size - 10}-{size + 1000}", CONTENT[-10:]),  # end clamped
        ("bytes=1048570-1048590", CONTENT[1048570:1048591]),  # across a chunk boundary
    ]:
        byte_range = parse_range_header(header, size)
        assert b"".join(store.read(DIGEST, byte_range)) == expected, header
    assert parse_range_header("bytes=0-99", size).content_range(size) == f"bytes 0-99/{size}"
    for bad in ["bytes=0-1,5-9", "items=0-1", f"bytes={size}-", "bytes=9-3", "bytes=-0", ""]:
        with pytest.raises(RangeNotSatisfiable) as raised:
            parse_range_header(bad, size)
        assert raised.value.size == size
    with pytest.raises(RangeNotSatisfiable):
        store.read(DIGEST, ByteRange(0, size))


def test_tampering_in_the_store_is_detected(store: FilesystemStore) -> None:
    store.put(io.BytesIO(CONTENT))
    path = store.path_of(DIGEST)
    path.chmod(0o644)
    path.write_bytes(b"evil" + CONTENT[4:])
    assert store.verify(DIGEST) is False


def test_leftover_temp_files_are_removed_on_open(tmp_path: Path) -> None:
    FilesystemStore(tmp_path)
    (tmp_path / "tmp" / "upload-crashed").write_bytes(b"partial")
    FilesystemStore(tmp_path)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_filesystem_store_is_an_artifact_store(store: FilesystemStore) -> None:
    typed: ArtifactStore = store
    assert typed.put(io.BytesIO(b"a")).sha256 == hashlib.sha256(b"a").hexdigest()
    assert typed.delete(hashlib.sha256(b"a").hexdigest()) is True
