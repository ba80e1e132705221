"""Maintenance windows: the documented format, its edge cases and its errors."""

from __future__ import annotations

import datetime as dt

import pytest

from patchledger.agent.errors import ConfigError
from patchledger.agent.window import parse_window


def at(text: str) -> int:
    """Seconds of a UTC ISO time; 2025-10-11 is a Saturday."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


@pytest.mark.parametrize(("window", "moment", "open_"), [
    ("Sat 02:00-04:00 UTC", "2025-10-11T02:00", True),
    ("Sat 02:00-04:00 UTC", "2025-10-11T03:59", True),
    ("Sat 02:00-04:00 UTC", "2025-10-11T04:00", False),
    ("Sat 02:00-04:00 UTC", "2025-10-11T01:59", False),
    ("Sat 02:00-04:00 UTC", "2025-10-12T03:00", False),
    ("Sun 02:00-04:00", "2025-10-12T03:00", True),
    ("sat 23:00-01:00", "2025-10-12T00:30", True),
    ("sat 23:00-01:00", "2025-10-11T00:30", False),
    ("Mon-Fri 22:00-02:00", "2025-10-11T01:00", True),
    ("Mon-Fri 22:00-02:00", "2025-10-12T01:00", False),
    ("Fri-Mon 10:00-11:00", "2025-10-12T10:30", True),
    ("Fri-Mon 10:00-11:00", "2025-10-15T10:30", False),
    ("daily 03:00-03:30, Sun 10:00-12:00", "2025-10-15T03:10", True),
    ("daily 03:00-03:30, Sun 10:00-12:00", "2025-10-12T11:00", True),
    ("daily 03:00-03:30, Sun 10:00-12:00", "2025-10-11T11:00", False),
    ("daily 00:00-00:00", "2025-10-11T17:00", True),
    ("always", "2025-10-11T17:00", True),
])
def test_window(window: str, moment: str, open_: bool) -> None:
    assert parse_window(window).is_open(at(moment)) is open_


@pytest.mark.parametrize("bad", [
    "", "Sat", "Sat 2:00-4:00", "Sat 02:00-24:00", "Sat 02:00-04:00 CET", "Caturday 02:00-04:00",
    "Sat-Xyz 02:00-04:00", "Sat 02:00-04:00,",
])
def test_a_malformed_window_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="maintenance window"):
        parse_window(bad)
