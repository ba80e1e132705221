"""The host's report sequence counter, kept in a file so that a restarted agent never reuses
a sequence number (the ledger refuses a report whose number is not above the last one)."""

from __future__ import annotations

import json
from pathlib import Path

from patchledger.agent.durable import write_json_durably
from patchledger.agent.errors import ConfigError

__all__ = ["SequenceFile"]


class SequenceFile:
    """``{"last": n}`` in a JSON file; ``reserve(k)`` hands out the next ``k`` numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last(self) -> int:
        """The last number handed out (0 when none was).

        Raises:
            ConfigError: the file is not the counter.
        """
        if not self.path.exists():
            return 0
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))["last"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"sequence file {self.path} is unreadable: {exc}") from exc
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"sequence file {self.path} holds {value!r}")
        return value

    def reserve(self, count: int) -> tuple[int, ...]:
        """The next ``count`` numbers, written durably before they are returned.

        Raises:
            ConfigError: the file is not the counter.
            OSError: it cannot be written.
        """
        first = self.last() + 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_durably(self.path, {"last": first + count - 1})
        return tuple(range(first, first + count))
