"""The file-tree installer backend: an artifact (tar.gz of files) laid over a target directory
by an atomic swap, with the previous tree kept for rollback. It implements
:class:`~agent.backends.base.InstallerBackend`.

Layout, for a target ``<dir>/<name>``, all siblings on the same file system so renames are
atomic: ``.<name>.staging`` (the new tree being built), ``.<name>.previous`` (the kept copy),
``.<name>.discard`` (trees being deleted), ``.<name>.checkpoint.json`` and ``.<name>.lock``.

Install (every step is announced by a durable checkpoint written *before* it)::

    stage()   checkpoint apply/stage    copy the target to staging, write the artifact's files
                                        over it, move the old kept copy to discard
    apply()   checkpoint apply/swap     rename target -> previous, rename staging -> target
              checkpoint apply/applied  (the caller verifies and runs its health check)
    verify()                            every staged file is in the target with its digest
    commit()                            checkpoint removed: the change is final; previous kept

Rollback: ``checkpoint rollback/swap``, rename target -> discard, previous -> target, then the
checkpoint is removed. There is one kept copy: a rollback cannot be repeated.

Crash safety: :meth:`FileTreeBackend.recover` (run at the start of every run, under
the lock) reverts an unfinished change, as certbot's ``recovery_routine`` does: after a crash
in ``stage`` it deletes the staging tree (the target was never touched); in ``swap``,
``applied`` or a rollback it puts the kept copy back as the target when it is there (the
previous tree is restored; if the crash came before the first rename, the target is intact
and nothing moves). Leftover discard and staging trees are deleted.

The artifact's files are added or replaced; files it does not name are kept (an overlay, as a
package upgrade leaves unrelated files alone). A missing target is created empty first, so
there is always a kept copy to roll back to.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from patchledger.agent.backends._tree import (
    DEFAULT_LIMITS,
    ArtifactFile,
    ArtifactLimits,
    check_paths,
    manifest,
    read_artifact,
    write_files,
)
from patchledger.agent.backends.base import ApplyPlan, Recovery
from patchledger.agent.durable import fsync_dir, write_json_durably
from patchledger.agent.errors import BackendError, RollbackError
from patchledger.agent.lock import LockFile
from patchledger.chaincode.lifecycle.canonical import canonical_json

__all__ = ["ApplyPlan", "FileTreeBackend", "Recovery"]


class FileTreeBackend:
    """Apply, commit, roll back and recover one target directory (module docstring)."""

    def __init__(
        self,
        target: Path,
        *,
        limits: ArtifactLimits = DEFAULT_LIMITS,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        """Args:
        target: the directory the artifacts are applied to.
        limits: caps on an artifact's members and unpacked size.
        on_step: called with a step name between the changes (a seam for crash tests).
        """
        self.limits = limits
        self._target = target
        base = target.parent
        self.staging = base / f".{target.name}.staging"
        self.previous = base / f".{target.name}.previous"
        self.discard = base / f".{target.name}.discard"
        self.checkpoint_path = base / f".{target.name}.checkpoint.json"
        self.lock_path = base / f".{target.name}.lock"
        self._on_step = on_step or (lambda step: None)
        self._staged: tuple[str, dict[str, str]] | None = None

    @property
    def target(self) -> Path:
        """The directory the artifacts are applied to."""
        return self._target

    def lock(self) -> LockFile:
        """The lock against concurrent runs on this target (a context manager; entering it
        raises :class:`~agent.errors.LockError` when held)."""
        return LockFile(self.lock_path)

    # ------------------------------------------------------------------ reading

    def plan(self, artifact: bytes) -> ApplyPlan:
        """The changes applying ``artifact`` would make: the dry run; reads only.

        Raises:
            ArtifactFormatError: the artifact is not a safe tar.gz of files, is over the
                caps, or a file would replace a directory or need a file to be a directory.
            TargetLinkError: a file's path crosses a symbolic link in the target.
        """
        return self._plan(read_artifact(artifact, self.limits))

    def _plan(self, files: tuple[ArtifactFile, ...]) -> ApplyPlan:
        check_paths(self.target, files)
        current = manifest(self.target)
        added, replaced, unchanged = [], [], []
        for f in sorted(files, key=lambda f: f.path):
            digest = hashlib.sha256(f.data).hexdigest()
            if f.path not in current:
                added.append(f.path)
            elif current[f.path] != digest:
                replaced.append(f.path)
            else:
                unchanged.append(f.path)
        return ApplyPlan(str(self.target), tuple(added), tuple(replaced), tuple(unchanged))

    def inventory_digest(self) -> str:
        """SHA-256 of the canonical JSON manifest (path -> SHA-256) of the target tree."""
        return hashlib.sha256(canonical_json(manifest(self.target))).hexdigest()

    def checkpoint(self) -> dict[str, Any] | None:
        """The pending checkpoint, ``None`` when no change is unfinished."""
        if not self.checkpoint_path.exists():
            return None
        try:
            value = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackendError(f"checkpoint {self.checkpoint_path} is unreadable: {exc}") from exc
        if not isinstance(value, dict):
            raise BackendError(f"checkpoint {self.checkpoint_path} is not a JSON object")
        return value

    # ------------------------------------------------------------------ changing

    def install(self, artifact: bytes, label: str) -> ApplyPlan:
        """:meth:`stage`, :meth:`apply` and :meth:`verify` in one call; leaves the
        ``apply/applied`` checkpoint until :meth:`commit` or :meth:`rollback`.

        Raises:
            As :meth:`stage`, :meth:`apply` and :meth:`verify`.
        """
        plan = self.stage(artifact, label)
        self.apply()
        self.verify()
        return plan

    def stage(self, artifact: bytes, label: str) -> ApplyPlan:
        """Build the new tree beside the target (the target is untouched).

        Raises:
            BackendError: an unfinished change is pending (run :meth:`recover`).
            ArtifactFormatError: the artifact is not a safe tar.gz of files (nothing changed).
            TargetLinkError: a file's path crosses a symbolic link in the target (nothing
                changed).
            OSError: the file system failed (the checkpoint says where; recover).
        """
        if self.checkpoint() is not None:
            raise BackendError(f"an unfinished change is pending on {self.target}: recover first")
        files = read_artifact(artifact, self.limits)
        plan = self._plan(files)
        self._mark("apply", "stage", label)
        self.target.mkdir(parents=True, exist_ok=True)
        _remove(self.staging)
        shutil.copytree(self.target, self.staging, symlinks=True)
        write_files(self.staging, files)
        if self.previous.exists():
            _remove(self.discard)
            self.previous.rename(self.discard)
        self._on_step("staged")
        self._staged = (label, {f.path: hashlib.sha256(f.data).hexdigest() for f in files})
        return plan

    def apply(self) -> None:
        """Swap the staged tree in (target -> kept copy, staging -> target).

        Raises:
            BackendError: nothing is staged.
            OSError: the file system failed (the checkpoint says where; recover).
        """
        if self._staged is None:
            raise BackendError(f"nothing is staged for {self.target}")
        label = self._staged[0]
        self._mark("apply", "swap", label)
        self.target.rename(self.previous)
        self._on_step("moved-aside")
        self.staging.rename(self.target)
        fsync_dir(self.target.parent)
        self._on_step("swapped")
        self._mark("apply", "applied", label)
        _remove(self.discard)

    def verify(self) -> None:
        """Check that every file of the staged artifact is in the target with its digest.

        Raises:
            BackendError: nothing was applied in this run, or a file is missing or differs.
        """
        if self._staged is None:
            raise BackendError(f"nothing was applied to {self.target} to verify")
        current = manifest(self.target)
        wrong = sorted(p for p, digest in self._staged[1].items() if current.get(p) != digest)
        if wrong:
            raise BackendError(
                f"{self.target} does not hold the applied artifact: {', '.join(wrong[:5])}"
            )

    def commit(self) -> None:
        """Make the applied change final (the kept copy stays for a rollback on order).

        Raises:
            BackendError: no applied change is pending.
        """
        point = self.checkpoint()
        if not point or (point.get("op"), point.get("step")) != ("apply", "applied"):
            raise BackendError(f"nothing applied to commit on {self.target} ({point})")
        self._clear()

    def rollback(self) -> None:
        """Put the kept copy back as the target.

        Raises:
            RollbackError: there is no kept copy.
        """
        if not self.previous.is_dir():
            raise RollbackError(f"no kept copy of {self.target} to roll back to")
        label = str((self.checkpoint() or {}).get("label", ""))
        self._mark("rollback", "swap", label)
        self._restore()
        self._clear()

    def recover(self) -> Recovery:
        """Revert an unfinished change after a crash (module docstring); run under the lock.

        Raises:
            BackendError: the checkpoint is unreadable.
            OSError: the file system failed.
        """
        point = self.checkpoint()
        if point is None:
            _remove(self.staging)
            _remove(self.discard)
            return Recovery("none")
        interrupted = f"{point.get('op')}/{point.get('step')} {point.get('label', '')}".strip()
        if (point.get("op"), point.get("step")) == ("apply", "stage"):
            _remove(self.staging)
            _remove(self.discard)
            self._clear()
            return Recovery("discarded-staging", interrupted)
        self._restore()
        self._clear()
        return Recovery("restored-previous", interrupted)

    # ------------------------------------------------------------------ internals

    def _restore(self) -> None:
        if self.previous.is_dir():
            if self.target.exists():
                _remove(self.discard)
                self.target.rename(self.discard)
            self._on_step("rollback-moved-aside")
            self.previous.rename(self.target)
            fsync_dir(self.target.parent)
        _remove(self.discard)
        _remove(self.staging)

    def _mark(self, op: str, step: str, label: str) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        write_json_durably(self.checkpoint_path, {"op": op, "step": step, "label": label})

    def _clear(self) -> None:
        self._staged = None
        self.checkpoint_path.unlink(missing_ok=True)
        fsync_dir(self.checkpoint_path.parent)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
