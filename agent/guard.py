"""Run cleanups when a change is interrupted by an exception *or* a signal (certbot's
``ErrorHandler``): inside the block, SIGTERM, SIGINT and SIGHUP raise :class:`Interrupted`;
on any exception the registered cleanups run in LIFO order, then the exception propagates.
Signal handlers are installed only in the main thread (elsewhere only exceptions count) and
are restored on exit."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

__all__ = ["ErrorHandler", "Interrupted"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Interrupted(BaseException):  # like KeyboardInterrupt: not an Exception
    """A termination signal arrived during a change."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by signal {signal.Signals(signum).name}")


class ErrorHandler:
    """``with ErrorHandler(cleanup): ...`` runs ``cleanup`` if the block fails."""

    def __init__(self, *cleanups: Callable[[], Any]) -> None:
        self._cleanups = list(cleanups)
        self._previous: dict[int, Any] = {}

    def register(self, cleanup: Callable[[], Any]) -> None:
        """Add a cleanup (run before the ones registered earlier)."""
        self._cleanups.append(cleanup)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    def __enter__(self) -> ErrorHandler:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Restore the signal handlers; on failure run the cleanups, newest first (a failing
        cleanup does not stop the others; the original exception propagates)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if exc is None:
            return
        for cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as failure:  # keep cleaning up, keep the cause
                exc.add_note(f"cleanup {getattr(cleanup, '__name__', cleanup)} failed: {failure}")
