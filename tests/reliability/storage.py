"""Storage faults for tests: a small tmpfs of the test's own (a full disk, a read-only file
system), mounted as root and always unmounted.

Root ignores permission bits (``chmod 0500`` does not stop it), so a read-only directory is a
file system remounted read-only (``EROFS``), which stops root too; a full disk is a 64 KiB tmpfs
filled to its last page (``ENOSPC``).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SIZE = "64k"
FILLER = ".filler"


@contextmanager
def small_tmpfs(mount_point: Path, size: str = SIZE) -> Iterator[Path]:
    """A tmpfs of ``size`` (64 KiB by default) at ``mount_point`` (created); skips the test
    when mounting is not permitted; unmounted (lazily if busy) on exit."""
    if os.geteuid() != 0:
        pytest.skip("storage faults mount a tmpfs, which needs root (run as root or in CI)")
    mount_point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(mount_point)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True,
                          check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def fill(fs: Path, *, leave_pages: int = 0) -> None:
    """Fill ``fs`` until a write fails with ENOSPC, then free ``leave_pages`` 4 KiB pages."""
    filler = fs / FILLER
    with filler.open("ab", buffering=0) as out:  # unbuffered: closing writes nothing more
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    if leave_pages:
        os.truncate(filler, max(filler.stat().st_size - leave_pages * 4096, 0))


def make_read_only(fs: Path) -> None:
    """Remount ``fs`` read-only."""
    subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True, capture_output=True)


def restore(fs: Path, fault: str) -> None:
    """Undo the fault named ``fault`` on ``fs``: remount it read-write, or free the filler."""
    if fault == "read-only":
        subprocess.run(["mount", "-o", "remount,rw", str(fs)], check=True, capture_output=True)
    else:
        (fs / FILLER).unlink()


#: The two faults: each turns a prepared file system into a faulty one.
FAULTS: dict[str, Callable[[Path], None]] = {"full-disk": fill, "read-only": make_read_only}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (but the filler) by relative path, with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != FILLER}
