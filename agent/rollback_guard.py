"""Anti-rollback state of a host: what it installed per target, and the patches it must never
install again.

The state file (``<state_dir>/installed.json``, written durably)::

    {"version": 1,
     "targets": {"pkg:deb/debian/xz-utils": {"patch_id": "P-2", "rollout_id": "R-7",
                                              "installed_at": 1760000000}},
     "retired": ["P-0", "P-1"]}

Rules (like TUF's rollback protection: the host only moves forward):

1. a patch in ``retired`` is refused (:class:`~agent.errors.RollbackRefusedError`): it was
   superseded by a patch this host installed, or replaced on one of its targets;
2. installing patch ``P`` on targets ``T`` (after the change was committed) records ``P`` as
   the installed patch of every target of ``T``, retires the patch each target held before (when
   it is another one) and every patch of ``P``'s attested ``supersedes`` chain.

Re-applying the installed patch is allowed. A missing file is an empty state (a freshly enrolled
host); a corrupt file is a :class:`~agent.errors.ConfigError` and nothing is applied (failing
closed: deleting the file is an administrator's decision, never the agent's).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchledger.agent.durable import write_json_durably
from patchledger.agent.errors import ConfigError, RollbackRefusedError

__all__ = ["InstalledState", "RollbackGuard"]

_VERSION = 1


@dataclass(frozen=True)
class InstalledState:
    """The parsed state: installed patch per target (``{patch_id, rollout_id,
    installed_at}``) and the retired patch ids."""

    targets: dict[str, dict[str, Any]]
    retired: frozenset[str]


class RollbackGuard:
    """The anti-rollback state in ``path`` (module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> InstalledState:
        """The current state (empty when the file does not exist).

        Raises:
            ConfigError: the file is not a state document.
        """
        if not self.path.exists():
            return InstalledState({}, frozenset())
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            targets, retired = doc["targets"], doc["retired"]
            if (doc.get("version") != _VERSION or not isinstance(targets, dict)
                    or not isinstance(retired, list)
                    or not all(isinstance(t, dict) and isinstance(t.get("patch_id"), str)
                               for t in targets.values())
                    or not all(isinstance(r, str) for r in retired)):
                raise TypeError("unexpected structure")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"anti-rollback state {self.path} is unreadable: {exc}") from exc
        return InstalledState(dict(targets), frozenset(retired))

    def check(self, patch_id: str, targets: Iterable[str]) -> None:
        """Refuse ``patch_id`` when it is retired (rule 1).

        Raises:
            RollbackRefusedError: naming the patch and what retired it.
            ConfigError: the state file is corrupt.
        """
        state = self.load()
        if patch_id not in state.retired:
            return
        holding = sorted(f"{t}: {v['patch_id']}" for t, v in state.targets.items()
                         if t in set(targets))
        now = "; installed: " + ", ".join(holding) if holding else ""
        raise RollbackRefusedError(
            f"patch {patch_id!r} was superseded or replaced on this host and is never installed"
            f" again (anti-rollback){now}"
        )

    def record(self, patch_id: str, targets: Iterable[str], supersedes: Iterable[str], *,
               rollout_id: str, now: int) -> InstalledState:
        """Record an installed patch (rule 2), durably; returns the new state.

        Raises:
            ConfigError: the state file is corrupt.
            OSError: it cannot be written.
        """
        state = self.load()
        installed = dict(state.targets)
        retired = set(state.retired) | set(supersedes)
        for target in targets:
            previous = installed.get(target, {}).get("patch_id")
            if previous and previous != patch_id:
                retired.add(previous)
            installed[target] = {"patch_id": patch_id, "rollout_id": rollout_id,
                                 "installed_at": now}
        retired.discard(patch_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_durably(self.path, {"version": _VERSION, "targets": installed,
                                       "retired": sorted(retired)})
        return InstalledState(installed, frozenset(retired))
