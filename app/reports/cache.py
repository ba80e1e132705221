"""Computed reports kept per read-model state, so that asking for the same report again costs a
dictionary lookup instead of reading the ledger's history (the UI's report page).

The key of a report "as of" a moment is the moment and what the read model held when it was
computed:

- the projected block height (the newest block number; a read model at a given height always
  holds the same records, the projection being deterministic), while blocks may still bring
  transactions made up to the moment;
- ``settled`` once the newest projected block's first transaction is more than
  :data:`SETTLE_SECONDS` after the moment: Fabric peers refuse a proposal whose timestamp is
  more than their ``peer.authentication.timewindow`` (15 minutes by default) away from their
  clock, so no later block can add a transaction made up to the moment, and the report stays
  the same whatever else is projected.

Each entry holds the computed :class:`~patchledger.app.reports.compliance.Report` and its
renderings made so far (HTML, CSV, PDF, JSON). Entries are few and bounded (least recently
used first out). Thread-safe: the app serves requests from several threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from patchledger.app.readmodel.tables import blocks
from patchledger.app.reports.compliance import Report

#: Margin after which a moment counts as settled (four times Fabric's default time window).
SETTLE_SECONDS = 3600


@dataclass
class Entry:
    """One computed report and its renderings by format."""

    report: Report
    renderings: dict[str, bytes | str] = field(default_factory=dict)


def state_key(conn: Connection, as_of: datetime) -> tuple[str, int]:
    """What the report as of ``as_of`` depends on in the read model now (module docstring):
    ``("settled", 0)`` or ``("height", <newest block number, -1 when none>)``."""
    newest = conn.execute(select(blocks.c.number, blocks.c.first_tx_time)
                          .order_by(blocks.c.number.desc()).limit(1)).first()
    if newest is None:
        return ("height", -1)
    number, first_tx_time = newest
    if first_tx_time:
        first = datetime.fromisoformat(str(first_tx_time).replace("Z", "+00:00"))
        if first > as_of + timedelta(seconds=SETTLE_SECONDS):
            return ("settled", 0)
    return ("height", int(number))


class ReportCache:
    """The most recently used ``size`` reports (module docstring)."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[object, ...], Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def report(self, key: tuple[object, ...], compute: Callable[[], Report]) -> Entry:
        """The entry of ``key``, computed with ``compute`` when missing (outside the lock:
        two threads may compute the same report once each; the result is the same).

        Raises:
            whatever ``compute`` raises (nothing is stored then).
        """
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        entry = Entry(compute())
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return entry

    def rendering(self, entry: Entry, fmt: str, render: Callable[[Report], bytes | str]
                  ) -> bytes | str:
        """``entry``'s report in ``fmt``, rendered with ``render`` the first time."""
        with self._lock:
            done = entry.renderings.get(fmt)
        if done is None:
            done = render(entry.report)
            with self._lock:
                entry.renderings[fmt] = done
        return done
