"""Durable writes of bytes (the JSON ones are :func:`agent.backends._tree.write_durably`):
a temporary file with its final mode, fsync, rename over the target, fsync of the
directory, so a crash leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import os
from pathlib import Path

from patchledger.agent.backends._tree import fsync_dir

__all__ = ["write_bytes_durably"]


def write_bytes_durably(path: Path, data: bytes, *, mode: int = 0o644,
                        exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` atomically and durably, created with ``mode``.

    Args:
        exclusive: fail if ``path`` exists (for a key that must never be replaced).

    Raises:
        FileExistsError: ``exclusive`` and the file exists.
        OSError: the directory cannot be written.
    """
    if exclusive and path.exists():
        raise FileExistsError(f"{path} exists")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask does not widen or narrow it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if exclusive:
        os.link(tmp, path)  # atomic create-if-absent
        tmp.unlink()
    else:
        tmp.replace(path)
    fsync_dir(path.parent)
