"""Computed reports kept per read-model state, so that asking for the same report again costs a
dictionary lookup instead of reading the ledger's history (the UI's report page).

A report "as of" a moment depends on what the read model held when it was computed:

- while blocks may still bring transactions made up to the moment, on the projected block
  height (the newest block number: a read model at a given height always holds the same
  records, the projection being deterministic). An entry computed at an older height is
  still served for :attr:`ReportCache.live_seconds` (30 s by default): a report always states
  the block height it was computed at, so a reader sees how current it is, and a busy ledger
  (a block every second) does not make every request recompute the whole history;
- ``settled`` once the newest projected block's first transaction is more than
  :data:`SETTLE_SECONDS` after the moment: Fabric peers refuse a proposal whose timestamp is
  more than their ``peer.authentication.timewindow`` (15 minutes by default) away from their
  clock, so no later block can add a transaction made up to the moment, and the report stays
  the same whatever else is projected.

With ``refresh_in_background``, an out-of-date entry is served as it is (it states its
height) while one background thread per moment computes the current report for the next
request: only the first request of a moment waits for a computation.

Each entry holds the computed :class:`~patchledger.app.reports.compliance.Report` and its
renderings made so far (HTML, CSV, PDF, JSON, its digest). Entries are few and bounded (least
recently used first out). Thread-safe: the app serves requests from several threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from patchledger.app.readmodel.tables import blocks
from patchledger.app.reports.compliance import Report

log = logging.getLogger(__name__)

#: Margin after which a moment counts as settled (four times Fabric's default time window).
SETTLE_SECONDS = 3600


@dataclass
class Entry:
    """One computed report, the read-model state it was computed at, and its renderings by
    format."""

    report: Report
    settled: bool
    height: int
    computed_at: float
    renderings: dict[str, bytes | str] = field(default_factory=dict)


def read_model_state(conn: Connection, as_of: datetime) -> tuple[bool, int]:
    """What the report as of ``as_of`` depends on in the read model now (module docstring):
    whether the moment is settled, and the newest block number (-1 when none)."""
    newest = conn.execute(select(blocks.c.number, blocks.c.first_tx_time)
                          .order_by(blocks.c.number.desc()).limit(1)).first()
    if newest is None:
        return False, -1
    number, first_tx_time = newest
    first = datetime.fromisoformat(str(first_tx_time).replace("Z", "+00:00"))
    return first > as_of + timedelta(seconds=SETTLE_SECONDS), int(number)


class ReportCache:
    """The most recently used ``size`` reports (module docstring)."""

    def __init__(self, size: int = 16, *, live_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self.live_seconds = live_seconds
        self._clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._refreshing: dict[str, threading.Thread] = {}
        self.hits = 0
        self.misses = 0
        self.stale = 0

    def _valid(self, entry: Entry, settled: bool, height: int) -> bool:
        if entry.settled:
            return True
        if settled:
            return False  # computed before the moment settled: once more, then for good
        return entry.height == height or \
            self._clock() - entry.computed_at < self.live_seconds

    def report(self, key: str, settled: bool, height: int, compute: Callable[[], Report],
               *, refresh_in_background: bool = False) -> Entry:
        """The entry of ``key`` (the as-of moment) for the read model's state (``settled``,
        ``height``: :func:`read_model_state`), computed with ``compute`` when missing or out
        of date (outside the lock: two threads may compute the same report once each; the
        result is the same). With ``refresh_in_background``, an out-of-date entry is returned
        as it is and ``compute`` runs in a thread of its own (it must open its own database
        connection), once per key at a time.

        Raises:
            whatever ``compute`` raises in the caller's thread (nothing is stored then); a
            background computation's error is logged, and the old entry stays.
        """
        with self._lock:
            found = self._entries.get(key)
            if found is not None and self._valid(found, settled, height):
                self._entries.move_to_end(key)
                self.hits += 1
                return found
            if found is not None and refresh_in_background:
                self.stale += 1
                if key not in self._refreshing:
                    thread = threading.Thread(target=self._refresh, daemon=True,
                                              args=(key, settled, height, compute),
                                              name=f"report-refresh {key}")
                    self._refreshing[key] = thread
                    thread.start()
                return found
            self.misses += 1
        entry = Entry(compute(), settled, height, self._clock())
        self._store(key, entry)
        return entry

    def _store(self, key: str, entry: Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def _refresh(self, key: str, settled: bool, height: int,
                 compute: Callable[[], Report]) -> None:
        try:
            self._store(key, Entry(compute(), settled, height, self._clock()))
        except Exception:  # a background thread has nobody to raise to: logged, old entry kept
            log.exception("the report as of %s could not be recomputed", key)
        finally:
            with self._lock:
                self._refreshing.pop(key, None)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background computations running now (tests, shutdown)."""
        with self._lock:
            threads = list(self._refreshing.values())
        for thread in threads:
            thread.join(timeout)

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
