"""The installer-backend interface: what the runner needs from any way of installing a patch.

The runner (:func:`agent.runner.run_assignment`) drives a backend through one protocol, so a
dpkg or rpm backend can replace the file-tree one without touching the runner:

====================  ============================================================
``lock()``            a context manager excluding concurrent runs on this target
``recover()``         revert a change a crash left unfinished (run first, under the lock)
``plan(artifact)``    the dry run: what applying would change; reads only
``stage(artifact,     prepare the change without touching the live target (unpack,
label)``              check, copy); announced by a durable checkpoint
``apply()``           make the staged change live (atomically where the backend can)
``verify()``          check the live target holds exactly what was staged
``commit()``          make the applied change final (after the health check passed)
``rollback()``        put the state before the change back
``inventory_digest``  SHA-256 of what is installed now (reported to the ledger)
====================  ============================================================

Every method raises :class:`~agent.errors.BackendError` (or a subclass) for a refusal or a
failed step and may raise ``OSError`` from the system; after either, ``recover()`` restores a
consistent state.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["ApplyPlan", "InstallerBackend", "Recovery"]


@dataclass(frozen=True)
class ApplyPlan:
    """What applying an artifact changes (a dry run returns it without changing anything)."""

    target: str
    added: tuple[str, ...]
    replaced: tuple[str, ...]
    unchanged: tuple[str, ...]


@dataclass(frozen=True)
class Recovery:
    """What :meth:`InstallerBackend.recover` did.

    Attributes:
        action: ``none``, ``discarded-staging`` or ``restored-previous``.
        interrupted: the checkpoint found (``op/step label``), ``""`` when there was none.
    """

    action: str
    interrupted: str = ""


class InstallerBackend(Protocol):
    """How an artifact is installed on this host (table in the module docstring)."""

    @property
    def target(self) -> Path:
        """What the health check inspects (the installed tree, or ``/`` for a package)."""
        ...

    def lock(self) -> AbstractContextManager[object]:
        """The lock against concurrent runs (entering raises LockError when held)."""
        ...

    def recover(self) -> Recovery:
        """Revert an unfinished change."""
        ...

    def plan(self, artifact: bytes) -> ApplyPlan:
        """The dry run; changes nothing."""
        ...

    def stage(self, artifact: bytes, label: str) -> ApplyPlan:
        """Prepare the change; the live target is untouched."""
        ...

    def apply(self) -> None:
        """Make the staged change live."""
        ...

    def verify(self) -> None:
        """Check the live target holds what was staged."""
        ...

    def commit(self) -> None:
        """Make the applied change final."""
        ...

    def rollback(self) -> None:
        """Restore the state before the change."""
        ...

    def inventory_digest(self) -> str:
        """SHA-256 of what is installed now."""
        ...
