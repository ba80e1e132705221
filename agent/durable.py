"""The agent's one durable write: a file replaced atomically and flushed to disk.

:func:`write_durably` writes to a temporary file with a unique name in the same directory
(so two writers, or a crashed earlier write's leftover, never share or clobber a temporary
name), flushes it (``fsync``), renames it over the destination (atomic on POSIX) and flushes
the directory, so after a crash the file holds either the old or the new content, never a
mix, and the new content survives power loss once the call returned. A failed write removes
its temporary file and leaves the destination untouched. (The agent runs on hosts without the
org app, so it has its own helper rather than importing the app's.)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["fsync_dir", "write_durably", "write_json_durably"]


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably (module docstring).

    Raises:
        OSError: the directory or the file cannot be written (``path`` is unchanged).
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_json_durably(path: Path, document: dict[str, Any]) -> None:
    """:func:`write_durably` of ``document`` as JSON (sorted keys).

    Raises:
        OSError: as :func:`write_durably`.
    """
    write_durably(path, json.dumps(document, sort_keys=True).encode("utf-8"))
