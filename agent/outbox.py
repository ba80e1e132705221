"""Signed deployment reports queued on disk until the app acknowledges them.

One file per report, ``<dir>/<sequence:012d>.json``, written durably before the report is
sent, so a report survives a crash and a restart and is resent until acknowledged. Sending is
idempotent by sequence number (the app and the ledger refuse a number they already have), so
resending after a lost acknowledgement is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from patchledger.agent.durable import fsync_dir, write_json_durably
from patchledger.agent.errors import ConfigError

__all__ = ["Outbox"]


def _sequence(report: dict[str, Any]) -> int:
    try:
        value = report["report"]["sequence"]
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"not a signed report: {str(report)[:80]}") from exc
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"report sequence {value!r} is not a positive integer")
    return value


class Outbox:
    """The queue of unacknowledged reports in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, reports: Sequence[dict[str, Any]]) -> None:
        """Queue ``reports`` (each durably, in order).

        Raises:
            ConfigError: an element is not a signed report.
            OSError: the directory cannot be written.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for report in reports:
            write_json_durably(self.directory / f"{_sequence(report):012d}.json", report)

    def pending(self) -> list[dict[str, Any]]:
        """The queued reports, by sequence number (an unreadable file is skipped: it was
        never completely written, which :mod:`agent.durable` rules out, or was damaged)."""
        out = []
        for path in sorted(self.directory.glob("*.json")) if self.directory.is_dir() else ():
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out

    def deployments(self) -> dict[str, str]:
        """``rollout_id/patch_id`` -> the last queued outcome, for every queued report: a
        deployment with a queued report is settled even if the daemon's state file was not
        written after queueing (a crash)."""
        found: dict[str, str] = {}
        for item in self.pending():
            report = item.get("report") if isinstance(item, dict) else None
            if isinstance(report, dict):
                key = f"{report.get('rollout_id')}/{report.get('patch_id')}"
                found[key] = str(report.get("outcome"))
        return found

    def acknowledge(self, sequences: Iterable[int]) -> int:
        """Drop the acknowledged reports; returns how many were dropped."""
        dropped = 0
        for number in sequences:
            if isinstance(number, int) and not isinstance(number, bool):
                path = self.directory / f"{number:012d}.json"
                if path.exists():
                    path.unlink()
                    dropped += 1
        if dropped:
            fsync_dir(self.directory)
        return dropped
