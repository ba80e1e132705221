"""Maintenance windows: when a host may be changed.

Format (the Host record's ``maintenance_window`` and the agent's configuration)::

    window   := "always" | entry ("," entry)*
    entry    := days " " HH:MM "-" HH:MM [" UTC"]
    days     := day | day "-" day | "daily"        day: Mon Tue Wed Thu Fri Sat Sun

Examples: ``Sat 02:00-04:00 UTC``, ``Mon-Fri 22:00-02:00``, ``daily 03:00-03:30, Sun
10:00-12:00``. Times are UTC (the suffix is optional; no other zone is accepted). The start is
inclusive, the end exclusive; an end at or before the start crosses midnight and belongs to
the start's day (``Sat 23:00-01:00`` is open on Sunday at 00:30). A day range wraps
(``Fri-Mon``). Matching is case-insensitive. Pure: the time is passed in.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from patchledger.agent.errors import ConfigError

__all__ = ["ALWAYS", "Window", "WindowEntry", "parse_window"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENTRY = re.compile(
    r"^(?P<days>daily|[a-z]{3}(?:-[a-z]{3})?)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})"
    r"(?:\s+utc)?$"
)
_MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class WindowEntry:
    """Open on ``days`` (0 = Monday) from ``start`` for ``length`` minutes."""

    days: frozenset[int]
    start: int
    length: int

    def is_open(self, moment: dt.datetime) -> bool:
        """Whether ``moment`` (UTC) falls in this entry."""
        minute = moment.hour * 60 + moment.minute
        today, yesterday = moment.weekday(), (moment.weekday() - 1) % 7
        if today in self.days and self.start <= minute < self.start + self.length:
            return True
        overflow = self.start + self.length - _MINUTES_PER_DAY
        return overflow > 0 and yesterday in self.days and minute < overflow


@dataclass(frozen=True)
class Window:
    """A maintenance window: open when any entry is (``entries`` empty: always open)."""

    text: str
    entries: tuple[WindowEntry, ...]

    def is_open(self, now: int) -> bool:
        """Whether the window is open at ``now`` (seconds since the epoch)."""
        if not self.entries:
            return True
        moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
        return any(entry.is_open(moment) for entry in self.entries)


ALWAYS = Window("always", ())


def _minutes(text: str, where: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 23 or minutes > 59:
        raise ConfigError(f"maintenance window {where!r}: {text} is not a time of day")
    return hours * 60 + minutes


def _days(text: str, where: str) -> frozenset[int]:
    if text == "daily":
        return frozenset(range(7))
    first, _, last = text.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ConfigError(f"maintenance window {where!r}: {text!r} is not a day or day range")
    start = DAYS.index(first)
    end = DAYS.index(last) if last else start
    return frozenset((start + i) % 7 for i in range((end - start) % 7 + 1))


def parse_window(text: str) -> Window:
    """Parse the format of the module docstring.

    Raises:
        ConfigError: the text does not follow the format, naming the faulty entry.
    """
    normalized = text.strip().lower()
    if normalized == "always":
        return ALWAYS
    entries = []
    for raw in normalized.split(","):
        part = " ".join(raw.split())
        match = _ENTRY.match(part)
        if not match:
            raise ConfigError(
                f"maintenance window {raw.strip()!r}: expected e.g. 'Sat 02:00-04:00 UTC'"
            )
        start = _minutes(match["start"], part)
        end = _minutes(match["end"], part)
        length = (end - start) % _MINUTES_PER_DAY or _MINUTES_PER_DAY
        entries.append(WindowEntry(_days(match["days"], part), start, length))
    return Window(text, tuple(entries))
