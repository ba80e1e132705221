"""Health checks run after applying: a callable, or a command run through one subprocess
wrapper (the only place the agent starts processes)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CommandCheck", "HealthCheck", "HealthResult"]


@dataclass(frozen=True)
class HealthResult:
    """The verdict of a health check and what it said."""

    healthy: bool
    detail: str = ""


#: A health check: given the target directory, is the service healthy?
HealthCheck = Callable[[Path], HealthResult]


@dataclass(frozen=True)
class CommandCheck:
    """Run ``argv`` in the target directory; healthy when it exits with status 0.

    Attributes:
        argv: the command and its arguments (no shell).
        timeout: seconds before the check counts as failed.
    """

    argv: Sequence[str]
    timeout: float = 60.0

    def __call__(self, target: Path) -> HealthResult:
        """Run the command; a timeout or a missing program is unhealthy, never an exception."""
        try:
            done = subprocess.run(
                list(self.argv),
                cwd=target,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return HealthResult(False, f"{self.argv[0]}: {exc}")
        tail = (done.stderr or done.stdout).decode("utf-8", errors="replace").strip()[-500:]
        return HealthResult(done.returncode == 0, f"exit {done.returncode}: {tail}".strip())
