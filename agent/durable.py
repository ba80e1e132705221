"""The agent's durable writes: a file replaced atomically and flushed to disk.

:func:`write_durably` is :func:`patchledger.common.durable.write_atomic`, the one durable write
of the project: a temporary file with a unique name in the same directory (so two writers, or
a crashed earlier write's leftover, never share or clobber a temporary name), flushed
(``fsync``), renamed over the destination (atomic on POSIX), the directory flushed; after a
crash the file holds either the old or the new content, never a mix, and the new content
survives power loss once the call returned. A failed write (a full disk, a read-only state
directory) removes its temporary file, leaves the destination untouched and raises an
:class:`OSError` naming the destination.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from patchledger.common.durable import fsync_dir, write_atomic

__all__ = ["fsync_dir", "write_durably", "write_json_durably"]


def write_durably(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably (module docstring).

    Raises:
        OSError: the directory or the file cannot be written (``path`` is unchanged; the
            error's ``filename`` is ``path``).
    """
    write_atomic(path, data, mode)


def write_json_durably(path: Path, document: dict[str, Any]) -> None:
    """:func:`write_durably` of ``document`` as JSON (sorted keys).

    Raises:
        OSError: as :func:`write_durably`.
    """
    write_durably(path, json.dumps(document, sort_keys=True).encode("utf-8"))
