"""Attacks on the file-tree installer: links already in the target, decompression bombs,
member floods and duplicate members. Each test performs the attack against the real backend
on a real file system and checks that nothing outside the target (or in it) changed."""

from __future__ import annotations

import io
import tarfile
import time
import tracemalloc
from pathlib import Path

import pytest

from patchledger.agent.backends import FileTreeBackend, _tree
from patchledger.agent.backends._tree import ArtifactFile, ArtifactLimits, read_artifact
from patchledger.agent.errors import ArtifactFormatError, TargetLinkError
from tests.unit.agent.agent_support import make_tar

MiB = 1024 * 1024


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A target holding ``lib -> <outside>`` and a file, and the outside directory."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"do not touch")
    target = tmp_path / "srv" / "app"
    target.mkdir(parents=True)
    (target / "keep.txt").write_bytes(b"kept")
    (target / "lib").symlink_to(outside, target_is_directory=True)
    return target, outside


@pytest.mark.parametrize("member", ["lib/x", "lib/deeper/x", "lib/secret"])
def test_an_artifact_cannot_write_through_a_link_in_the_target(
    world: tuple[Path, Path], member: str
) -> None:
    target, outside = world
    backend = FileTreeBackend(target)
    with pytest.raises(TargetLinkError, match="symbolic link at 'lib'") as info:
        backend.install(make_tar({member: b"planted", "ok.txt": b"fine"}), "P-1")
    assert (info.value.link, info.value.path) == ("lib", member)
    assert files_under(outside) == {"secret": b"do not touch"}
    assert files_under(target) == {"keep.txt": b"kept"}
    assert (target / "lib").is_symlink()
    assert backend.checkpoint() is None and not backend.staging.exists()


def test_the_dry_run_reports_the_link_instead_of_a_plain_added(
    world: tuple[Path, Path],
) -> None:
    target, outside = world
    with pytest.raises(TargetLinkError, match="'lib/x' would be written through it"):
        FileTreeBackend(target).plan(make_tar({"lib/x": b"planted"}))
    assert files_under(outside) == {"secret": b"do not touch"}


def test_a_link_swapped_in_after_the_check_is_not_followed(
    world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write itself walks the path with O_NOFOLLOW descriptors: even when the tree
    changes between the check and the write (the check is skipped here to simulate the
    race), nothing is written through the link."""
    target, outside = world
    monkeypatch.setattr(_tree, "check_paths", lambda root, files: None)
    with pytest.raises(TargetLinkError):
        _tree.write_files(target, (ArtifactFile("lib/x", b"planted", 0o644),))
    assert files_under(outside) == {"secret": b"do not touch"}


def test_a_link_as_the_file_itself_is_replaced_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"do not touch")
    target = tmp_path / "app"
    (target / "etc").mkdir(parents=True)
    (target / "etc" / "tool.conf").symlink_to(outside)
    backend = FileTreeBackend(target)
    backend.install(make_tar({"etc/tool.conf": b"new conf"}), "P-1")
    backend.commit()
    assert outside.read_bytes() == b"do not touch"
    assert not (target / "etc" / "tool.conf").is_symlink()
    assert (target / "etc" / "tool.conf").read_bytes() == b"new conf"
    backend.rollback()  # the kept copy has the link back; the outside file never changed
    assert (target / "etc" / "tool.conf").is_symlink() and outside.read_bytes() == b"do not touch"


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, produced on demand (the bomb is built without holding it)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = b"\0" * n
        self.left -= n
        return n


def _bomb(size: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=9) as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros(size)))
    return out.getvalue()


def test_a_decompression_bomb_is_refused_without_reading_it_into_memory() -> None:
    bomb = _bomb(192 * MiB)
    assert len(bomb) < 400 * 1024  # about 190 KB on the wire
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ArtifactFormatError, match="unpacks to more than 67108864 bytes"):
            read_artifact(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB  # the declared size is checked before the data is read
    assert time.monotonic() - started < 10


def test_the_caps_are_the_backends(tmp_path: Path) -> None:
    small = FileTreeBackend(tmp_path / "app", limits=ArtifactLimits(max_total_bytes=10))
    with pytest.raises(ArtifactFormatError, match="more than 10 bytes"):
        small.plan(make_tar({"a": b"123456", "b": b"123456"}))
    few = FileTreeBackend(tmp_path / "app", limits=ArtifactLimits(max_members=3))
    with pytest.raises(ArtifactFormatError, match="more than 3 members"):
        few.plan(make_tar({f"f{i}": b"" for i in range(4)}))
    assert not (tmp_path / "app").exists()


def _tar(*members: tuple[str, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(("artifact", "message"), [
    (_tar(("a", b"first"), ("a", b"second")), "'a' is given twice"),
    (_tar(("a", b"first"), ("./a", b"second")), "'a' is given twice"),
    (_tar(("a", b"file"), ("a/b", b"below it")), "'a' is both a file and a directory"),
    (_tar(("a", None), ("a", b"file")), "'a' is both a file and a directory"),
], ids=["same-name", "dot-slash", "file-then-child", "dir-and-file"])
def test_duplicate_members_are_refused(tmp_path: Path, artifact: bytes, message: str) -> None:
    target = tmp_path / "app"
    target.mkdir()
    with pytest.raises(ArtifactFormatError, match=message):
        FileTreeBackend(target).install(artifact, "P-1")
    assert list(target.iterdir()) == []
