"""A lock file against concurrent agent runs (like certbot's ``LockFile`` and
unattended-upgrades' lock: take it or stop).

The lock is an ``fcntl.flock`` on a file, so the kernel releases it when the holder dies: a
crashed run never leaves a stale lock behind. The holder writes its pid into the file for the
error message of the run it turns away.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from patchledger.agent.errors import LockError

__all__ = ["LockFile"]


class LockFile:
    """An exclusive, non-blocking lock held from ``__enter__`` to ``__exit__``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> LockFile:
        """Take the lock.

        Raises:
            LockError: another run (this process or another) holds it.
            OSError: the lock file cannot be created or written (a read-only or full state
                directory); its ``filename`` is the lock file. Nothing is held then.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.read(fd, 64).decode("ascii", errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockError(str(self.path), f"pid {holder}") from exc
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except OSError as exc:  # a full disk: fail before the run changes anything
            os.close(fd)  # releases the lock
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the lock (the file stays; its content is meaningless once unlocked)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
