"""The dpkg backend with real .deb packages built by ``dpkg-deb --build``, installed by dpkg
into a temporary root: install, upgrade, verify, a failing postinst rolled back to the kept
previous version, a crash at every step and a kill -9 in the middle of dpkg recovered, a
change that could not be undone refused, a dry run that changes nothing."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from patchledger.agent.backends.dpkg import DpkgBackend, split_artifact
from patchledger.agent.errors import ArtifactFormatError, BackendError, LockError, RollbackError
from tests.unit.agent.debs import FAILING_POSTINST, build_deb, needs_dpkg


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch and clean up)."""


@pytest.fixture
def debs(tmp_path: Path) -> dict[str, bytes]:
    needs_dpkg()
    out = tmp_path / "debs"
    out.mkdir()
    return {
        "1.0": build_deb(out, "1.0"),
        "1.1": build_deb(out, "1.1"),
        "bad": build_deb(out, "1.2", postinst=FAILING_POSTINST),
    }


def backend_for(tmp_path: Path, **kwargs: object) -> DpkgBackend:
    return DpkgBackend(tmp_path / "root", tmp_path / "state", scripts="chrootless",
                       **kwargs)  # type: ignore[arg-type]


def payload(b: DpkgBackend) -> str:
    return (b.root / "usr/share/plhello/version").read_text()


def installed(b: DpkgBackend, first: bytes) -> DpkgBackend:
    b.install(first, "P-0")  # stage, apply, verify
    b.commit()
    return b


def test_install_upgrade_verify_commit(tmp_path: Path, debs: dict[str, bytes]) -> None:
    b = backend_for(tmp_path)
    plan = b.install(debs["1.0"], "P-0")
    assert (plan.added, plan.replaced) == (("plhello 1.0",), ())
    pending = b.pending()
    assert pending is not None
    assert [(c.package, c.action, c.previous_version) for c in pending.changes] == [
        ("plhello", "install", "")]
    b.verify()
    b.commit()
    assert b.pending() is None
    assert b.checkpoint() is None
    assert b.installed_version("plhello") == "1.0"
    before = b.inventory_digest()

    plan = b.install(debs["1.1"], "P-1")
    assert plan.replaced == ("plhello 1.0 -> 1.1",)
    (change,) = b.pending().changes  # type: ignore[union-attr]
    assert (change.action, change.previous_version) == ("upgrade", "1.0")
    assert Path(change.previous_deb).read_bytes() == debs["1.0"]  # the kept previous .deb
    b.commit()
    assert payload(b) == "hello 1.1\n"
    assert b.inventory_digest() != before
    log = (b.root / "var/log/plhello.log").read_text().splitlines()
    assert log == ["postinst configure  plhello", "postinst configure 1.0 plhello"]


def test_a_failing_postinst_is_rolled_back_to_the_kept_version(
    tmp_path: Path, debs: dict[str, bytes]
) -> None:
    b = installed(backend_for(tmp_path), debs["1.0"])
    digest = b.inventory_digest()
    with pytest.raises(BackendError, match="configuration failed"):
        b.install(debs["bad"], "P-2")
    assert b.checkpoint()["step"] == "apply"  # type: ignore[index]
    assert b.installed_version("plhello") == ""  # half-configured, not installed
    b.rollback()
    assert b.installed_version("plhello") == "1.0"
    assert payload(b) == "hello 1.0\n"
    assert b.inventory_digest() == digest
    assert b.checkpoint() is None


def test_a_failed_verify_rolls_back_an_upgrade(tmp_path: Path, debs: dict[str, bytes]) -> None:
    b = installed(backend_for(tmp_path), debs["1.0"])
    b.stage(debs["1.1"], "P-1")
    b.apply()
    (b.root / "usr/share/plhello/version").write_text("tampered\n")
    with pytest.raises(BackendError, match=r"dpkg --verify plhello: \?\?5\?+ +/usr/share"):
        b.verify()
    b.rollback()
    assert payload(b) == "hello 1.0\n"


def test_a_new_package_rolls_back_by_purge(tmp_path: Path, debs: dict[str, bytes]) -> None:
    b = backend_for(tmp_path)
    b.install(debs["1.0"], "P-0")
    b.rollback()
    assert b.installed_version("plhello") == ""
    assert not (b.root / "usr/share/plhello/version").exists()


def test_no_kept_previous_deb_refuses_before_any_change(
    tmp_path: Path, debs: dict[str, bytes]
) -> None:
    b = installed(backend_for(tmp_path), debs["1.0"])
    for kept in (b.archive).glob("*.deb"):
        kept.unlink()
    assert not b.packages(debs["1.1"]).undoable
    with pytest.raises(RollbackError, match=r"no kept \.deb of the installed plhello 1\.0"):
        b.stage(debs["1.1"], "P-1")
    assert b.checkpoint() is None
    assert payload(b) == "hello 1.0\n"


def test_apts_cache_in_the_root_is_a_rollback_source(
    tmp_path: Path, debs: dict[str, bytes]
) -> None:
    b = installed(backend_for(tmp_path), debs["1.0"])
    for kept in (b.archive).glob("*.deb"):
        kept.unlink()
    cache = b.root / "var/cache/apt/archives"
    cache.mkdir(parents=True)
    (cache / "plhello_1.0_all.deb").write_bytes(debs["1.0"])
    (cache / "plhello_0.9_all.deb").write_bytes(debs["1.1"])  # a lying file name is not used
    (change,) = b.packages(debs["1.1"]).changes
    assert change.previous_deb == str(cache / "plhello_1.0_all.deb")
    b.stage(debs["1.1"], "P-1")
    b.apply()
    for cached in cache.iterdir():  # apt-get clean, while the change is pending
        cached.unlink()
    b.rollback()  # from the copy the stage took into the archive
    assert (b.installed_version("plhello"), payload(b)) == ("1.0", "hello 1.0\n")


@pytest.mark.parametrize("step", ["staged", "installing", "installed"])
def test_a_crash_at_every_apply_step_is_recovered(
    tmp_path: Path, debs: dict[str, bytes], step: str
) -> None:
    installed(backend_for(tmp_path), debs["1.0"])

    def crash_at(name: str) -> None:
        if name == step:
            raise Crash(name)

    with pytest.raises(Crash):
        backend_for(tmp_path, on_step=crash_at).install(debs["1.1"], "P-1")
    b = backend_for(tmp_path)
    recovery = b.recover()
    assert recovery.interrupted.endswith("P-1")
    expected = "discarded-staging" if step == "staged" else "restored-previous"
    assert recovery.action == expected
    assert b.installed_version("plhello") == "1.0"
    assert payload(b) == "hello 1.0\n"
    assert b.recover().action == "none"
    installed(b, debs["1.1"])  # and the next run can apply again
    assert payload(b) == "hello 1.1\n"


def test_a_crash_during_rollback_is_finished_by_recovery(
    tmp_path: Path, debs: dict[str, bytes]
) -> None:
    installed(backend_for(tmp_path), debs["1.0"])
    b = backend_for(tmp_path, on_step=lambda n: (_ for _ in ()).throw(Crash(n))
                    if n == "rolled-back-installs" else None)
    b.install(debs["1.1"], "P-1")
    with pytest.raises(Crash):
        b.rollback()
    again = backend_for(tmp_path)
    assert again.checkpoint()["op"] == "rollback"  # type: ignore[index]
    assert again.recover().action == "restored-previous"
    assert payload(again) == "hello 1.0\n"


CHILD = """
import sys
from pathlib import Path
from patchledger.agent.backends.dpkg import DpkgBackend
b = DpkgBackend(Path(sys.argv[1]), Path(sys.argv[2]), scripts="chrootless")
with b.lock():
    b.install(Path(sys.argv[3]).read_bytes(), "P-1")
"""

SLOW_POSTINST = """#!/bin/sh
touch "$DPKG_ROOT/postinst-started"
sleep 60
"""


def test_kill_9_in_the_middle_of_dpkg_is_recovered(tmp_path: Path, debs: dict[str, bytes]) -> None:
    installed(backend_for(tmp_path), debs["1.0"])
    slow = tmp_path / "slow.deb"
    slow.write_bytes(build_deb(tmp_path / "debs", "1.1", postinst=SLOW_POSTINST))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "root"), str(tmp_path / "state"),
         str(slow)], start_new_session=True)
    marker = tmp_path / "root/postinst-started"
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "the slow postinst never started"
    os.killpg(child.pid, signal.SIGKILL)  # the agent, dpkg and the script, all at once
    child.wait()
    b = backend_for(tmp_path)
    assert b.installed_version("plhello") == ""  # dpkg was left half-way
    with b.lock():  # the dead run's lock is gone with it
        recovery = b.recover()
    assert (recovery.action, recovery.interrupted) == ("restored-previous", "apply/apply P-1")
    assert b.installed_version("plhello") == "1.0"
    assert payload(b) == "hello 1.0\n"
    subprocess.run(["dpkg", f"--root={b.root}", "--audit"], check=True)  # nothing left broken


def test_a_concurrent_run_is_refused(tmp_path: Path) -> None:
    b = backend_for(tmp_path)
    with b.lock(), pytest.raises(LockError), backend_for(tmp_path).lock():
        pass


def test_a_dry_run_changes_nothing(tmp_path: Path, debs: dict[str, bytes]) -> None:
    b = backend_for(tmp_path)
    assert [(c.package, c.version, c.action) for c in b.packages(debs["1.0"]).changes] == [
        ("plhello", "1.0", "install")]
    assert b.plan(debs["1.0"]).added == ("plhello 1.0",)
    assert not (tmp_path / "root").exists()
    assert not (tmp_path / "state").exists()


def tar_of(members: dict[str, bytes], *, link: bool = False) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo("evil.deb")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return out.getvalue()


def test_a_tar_of_debs_installs_each(tmp_path: Path, debs: dict[str, bytes]) -> None:
    other = build_deb(tmp_path / "debs", "2.0", package="plworld", source=None)
    b = backend_for(tmp_path)
    plan = b.install(tar_of({"plhello.deb": debs["1.0"], "plworld.deb": other}), "P-0")
    assert sorted(plan.added) == ["plhello 1.0", "plworld 2.0"]
    b.rollback()
    assert b.installed_version("plworld") == b.installed_version("plhello") == ""


@pytest.mark.parametrize(("artifact", "problem"), [
    (b"not a package", "neither a .deb nor a tar"),
    (tar_of({}), "no .deb file"),
    (tar_of({"notes.txt": b"x"}), "not a regular .deb"),
    (tar_of({"a.deb": b"not ar"}), "not a .deb archive"),
    (tar_of({}, link=True), "not a regular .deb"),
    (b"!<arch>\ngarbage", "control fields"),
])
def test_bad_artifacts_are_refused_before_any_change(
    tmp_path: Path, artifact: bytes, problem: str
) -> None:
    needs_dpkg()
    b = backend_for(tmp_path)
    with pytest.raises(ArtifactFormatError, match=problem):
        b.stage(artifact, "P-9")
    assert b.checkpoint() is None
    assert not (tmp_path / "root").exists()


def test_split_artifact_keeps_a_single_deb_whole(debs: dict[str, bytes]) -> None:
    assert split_artifact(debs["1.0"]) == (debs["1.0"],)


def test_nothing_to_verify_or_commit_without_an_apply(tmp_path: Path) -> None:
    b = backend_for(tmp_path)
    with pytest.raises(BackendError, match="nothing to verify"):
        b.verify()
    with pytest.raises(BackendError, match="nothing to commit"):
        b.commit()
    with pytest.raises(RollbackError, match="no change pending"):
        b.rollback()


CHROOT_POSTINST = """#!/bin/sh
echo "postinst $* root=[$DPKG_ROOT]" >> /var/log/plhello.log
"""


def minimal_system(root: Path) -> None:
    """A root dpkg can chroot into: dash as /bin/sh with its libraries, /var/log."""
    dash = Path("/usr/bin/dash")
    if os.geteuid() != 0 or not dash.exists():
        pytest.skip("chroot mode needs root privileges and /usr/bin/dash")
    libs = subprocess.run(["ldd", str(dash)], capture_output=True, text=True, check=True).stdout
    for lib in (word for word in libs.split() if word.startswith("/")):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lib, dest)  # with its mode: the loader must be executable
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(dash, root / "bin/sh")
    (root / "var/log").mkdir(parents=True, exist_ok=True)


def test_chroot_mode_runs_maintainer_scripts_inside_the_root(tmp_path: Path) -> None:
    needs_dpkg()
    minimal_system(tmp_path / "root")
    out = tmp_path / "debs"
    out.mkdir()
    old = build_deb(out, "1.0", postinst=CHROOT_POSTINST)
    new = build_deb(out, "1.1", postinst=CHROOT_POSTINST)
    bad = build_deb(out, "1.2", postinst=FAILING_POSTINST)
    b = DpkgBackend(tmp_path / "root", tmp_path / "state")  # scripts="chroot", the default
    installed(b, old)
    installed(b, new)
    log = (b.root / "var/log/plhello.log").read_text().splitlines()
    assert log == ["postinst configure  root=[]", "postinst configure 1.0 root=[]"]
    with pytest.raises(BackendError, match="configuration failed"):
        b.install(bad, "P-2")
    b.rollback()
    assert (b.installed_version("plhello"), payload(b)) == ("1.1", "hello 1.1\n")
