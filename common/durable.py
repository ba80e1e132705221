"""Durable file writes: readers see the old or the new content, never a part, even after a
crash (checkpoints, wallet entries, exports, the network's state, the agent's state files).

A leaf of the import graph (standard library only), so that the Fabric client, the feeds
library, the network tool and the agent share this one implementation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames in it) to disk.

    Raises:
        OSError: the directory cannot be opened or flushed.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new content, never a
    part, even after a crash: write a temporary file with a unique name created with ``mode``
    in the same directory, fsync it, rename it over ``path``, fsync the directory.

    A failed write (a full disk, a read-only or missing directory) removes its temporary file
    and leaves ``path`` as it was.

    Raises:
        OSError: the file cannot be written; its ``filename`` is ``path`` (the destination, not
            the temporary file) and its ``errno`` the system's (``ENOSPC``, ``EROFS``,
            ``EACCES``...), so the message reads ``[Errno 28] No space left on device: '<path>'``.
    """
    raw = data.encode() if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
    except OSError as exc:
        if exc.filename == str(path):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
