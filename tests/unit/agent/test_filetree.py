"""The file-tree backend: atomic apply with a kept copy, rollback, crash recovery at every
step, the lock against concurrent runs, and a dry run that changes nothing."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

from patchledger.agent.backends import FileTreeBackend
from patchledger.agent.errors import ArtifactFormatError, BackendError, LockError, RollbackError
from patchledger.agent.health import CommandCheck
from tests.unit.agent.agent_support import make_tar

OLD = {"a.txt": b"old a", "keep.txt": b"untouched"}
ARTIFACT = make_tar({"a.txt": b"new a", "sub/c.txt": b"new c"})
NEW = {"a.txt": b"new a", "keep.txt": b"untouched", "sub/c.txt": b"new c"}


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch and clean up)."""


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else b"",
                                             p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def target(tmp_path: Path) -> Path:
    t = tmp_path / "srv" / "app"
    t.mkdir(parents=True)
    for name, data in OLD.items():
        (t / name).write_bytes(data)
    return t


def test_apply_swaps_in_the_new_tree_and_keeps_the_old_one(target: Path) -> None:
    backend = FileTreeBackend(target)
    plan = backend.install(ARTIFACT, "P-1")
    assert (plan.added, plan.replaced) == (("sub/c.txt",), ("a.txt",))
    assert tree(target) == NEW
    assert tree(backend.previous) == OLD
    assert backend.checkpoint() == {"op": "apply", "step": "applied", "label": "P-1"}
    backend.commit()
    assert backend.checkpoint() is None
    assert not backend.staging.exists()
    assert not backend.discard.exists()


def test_rollback_restores_the_kept_copy(target: Path) -> None:
    backend = FileTreeBackend(target)
    before = backend.inventory_digest()
    backend.install(ARTIFACT, "P-1")
    assert backend.inventory_digest() != before
    backend.rollback()
    assert tree(target) == OLD
    assert backend.inventory_digest() == before
    assert backend.checkpoint() is None
    with pytest.raises(RollbackError, match="no kept copy"):
        backend.rollback()


def test_a_failed_health_check_rolls_back(target: Path) -> None:
    backend = FileTreeBackend(target)
    backend.install(ARTIFACT, "P-1")
    result = CommandCheck([sys.executable, "-c", "import sys; sys.exit(3)"])(target)
    assert not result.healthy
    assert result.detail.startswith("exit 3")
    backend.rollback()
    assert tree(target) == OLD


def test_a_healthy_command_check(target: Path) -> None:
    check = CommandCheck([sys.executable, "-c", "import pathlib; "
                          "assert pathlib.Path('a.txt').read_bytes() == b'old a'"])
    assert check(target).healthy
    assert not CommandCheck(["/nonexistent/health-check"])(target).healthy


def test_a_committed_patch_can_be_rolled_back_on_order(target: Path) -> None:
    backend = FileTreeBackend(target)
    backend.install(ARTIFACT, "P-1")
    backend.commit()
    backend.rollback()
    assert tree(target) == OLD


def test_a_second_apply_keeps_only_the_tree_before_it(target: Path) -> None:
    backend = FileTreeBackend(target)
    backend.install(ARTIFACT, "P-1")
    backend.commit()
    backend.install(make_tar({"a.txt": b"newer a"}), "P-2")
    backend.commit()
    assert tree(backend.previous) == NEW
    backend.rollback()
    assert tree(target) == NEW


def test_a_missing_target_is_created(tmp_path: Path) -> None:
    backend = FileTreeBackend(tmp_path / "fresh")
    backend.install(ARTIFACT, "P-1")
    assert tree(tmp_path / "fresh") == {"a.txt": b"new a", "sub/c.txt": b"new c"}
    backend.rollback()
    assert tree(tmp_path / "fresh") == {}


@pytest.mark.parametrize("step", ["staged", "moved-aside", "swapped"])
def test_a_crash_during_apply_is_recovered_on_the_next_run(target: Path, step: str) -> None:
    def crash(at: str) -> None:
        if at == step:
            raise Crash(at)

    with pytest.raises(Crash):
        FileTreeBackend(target, on_step=crash).install(ARTIFACT, "P-1")
    after_crash = FileTreeBackend(target)  # the next run
    with pytest.raises(BackendError, match="unfinished change is pending"):
        after_crash.install(ARTIFACT, "P-1")
    recovery = after_crash.recover()
    assert recovery.interrupted.endswith("P-1")
    assert recovery.action == ("discarded-staging" if step == "staged" else "restored-previous")
    assert tree(target) == OLD
    for leftover in (after_crash.staging, after_crash.discard, after_crash.checkpoint_path):
        assert not leftover.exists()
    after_crash.install(ARTIFACT, "P-1")
    assert tree(target) == NEW


def test_a_crash_after_apply_before_the_health_check_is_rolled_back(target: Path) -> None:
    FileTreeBackend(target).install(ARTIFACT, "P-1")  # then the process dies
    recovery = FileTreeBackend(target).recover()
    assert (recovery.action, recovery.interrupted) == ("restored-previous", "apply/applied P-1")
    assert tree(target) == OLD


def test_a_crash_during_rollback_is_recovered(target: Path) -> None:
    def crash(at: str) -> None:
        if at == "rollback-moved-aside":
            raise Crash(at)

    backend = FileTreeBackend(target, on_step=crash)
    backend.install(ARTIFACT, "P-1")
    with pytest.raises(Crash):
        backend.rollback()
    assert not target.exists()  # mid-rollback: the target was moved aside
    recovery = FileTreeBackend(target).recover()
    assert recovery.interrupted == "rollback/swap P-1"
    assert tree(target) == OLD


def test_nothing_to_recover(target: Path) -> None:
    assert FileTreeBackend(target).recover().action == "none"
    assert tree(target) == OLD


def test_a_concurrent_run_is_refused(target: Path) -> None:
    held = r"another agent run holds the lock .*\.app\.lock \(pid \d+\)"
    with FileTreeBackend(target).lock(), pytest.raises(LockError, match=held):
        FileTreeBackend(target).lock().__enter__()
    with FileTreeBackend(target).lock():  # released with its holder
        pass


def test_the_dry_run_changes_nothing(target: Path) -> None:
    parent = target.parent
    before = snapshot(parent)
    plan = FileTreeBackend(target).plan(ARTIFACT)
    assert (plan.added, plan.replaced, plan.unchanged) == (("sub/c.txt",), ("a.txt",), ())
    assert snapshot(parent) == before


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def _symlink(name: str, to: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = to
    return info


@pytest.mark.parametrize("artifact", [
    _tar_with(tarfile.TarInfo("../escape.txt"), b"x"),
    _tar_with(tarfile.TarInfo("/etc/passwd"), b"x"),
    _tar_with(_symlink("link", "/etc")),
    b"not a tar.gz",
], ids=["dotdot", "absolute", "symlink", "garbage"])
def test_an_unsafe_artifact_is_refused_before_any_change(target: Path, artifact: bytes) -> None:
    before = snapshot(target.parent)
    with pytest.raises(ArtifactFormatError):
        FileTreeBackend(target).install(artifact, "P-1")
    assert snapshot(target.parent) == before
