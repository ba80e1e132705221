"""The files the dispatcher shares with the org app's agent relay, in the dispatcher's state
directory. The dispatcher runs in its own process, never inside web workers; these files are
the whole interface between the two:

``orders.json``  written by the dispatcher (atomically): per host, what its agent must do now
                 (``apply`` a patch of a rollout, or ``roll_back`` it), with the artifact's
                 digest. The relay answers agents' polls from it.
``inbox/``       written by the relay: one file per agent run, holding that run's signed
                 reports in order, named so that the name order is the arrival order. A file
                 is written durably before the agent is answered, and removed by the
                 dispatcher only after its reports are committed on every endorsing peer, so
                 a report is never lost; a report resubmitted after a crash is refused by the
                 ledger as a replay (host sequence), so it is never recorded twice.
``seen.json``    written by the relay: when each host last polled (the dispatcher does not
                 release hosts it has not seen recently: they are offline).

Every write is atomic (temporary file, fsync, rename, fsync of the directory); readers see the
old or the new content. Dot files are temporary files and are ignored; a writer killed in the
middle (``kill -9`` of the app) leaves its temporary, which the dispatcher removes from the
inbox after an hour.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchledger.app.errors import UserError
from patchledger.common.durable import write_atomic

__all__ = ["Board", "BoardError", "InboxFile", "Order"]


class BoardError(UserError):
    """A board file is unreadable; the message names it."""


@dataclass(frozen=True)
class Order:
    """What one host's agent must do now."""

    action: str  # "apply" or "roll_back"
    rollout_id: str
    patch_id: str
    artifact_sha256: str

    def to_dict(self) -> dict[str, str]:
        """JSON object of this order."""
        return {"action": self.action, "rollout_id": self.rollout_id,
                "patch_id": self.patch_id, "artifact_sha256": self.artifact_sha256}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        """Inverse of :meth:`to_dict`.

        Raises:
            KeyError, TypeError: a malformed order.
        """
        return cls(str(data["action"]), str(data["rollout_id"]), str(data["patch_id"]),
                   str(data["artifact_sha256"]))


@dataclass(frozen=True)
class InboxFile:
    """One agent run's reports waiting in the inbox."""

    path: Path
    reports: tuple[dict[str, Any], ...]


_COUNTER = itertools.count()
#: Seconds after which a temporary file in the inbox is a leftover of a killed writer.
STALE_TEMPORARY = 3600
log = logging.getLogger(__name__)


class Board:
    """The shared files of one dispatcher state directory (module docstring)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.inbox = state_dir / "inbox"
        self.orders_path = state_dir / "orders.json"
        self.seen_path = state_dir / "seen.json"
        self._lock = threading.Lock()
        self._orders: tuple[tuple[int, int], dict[str, Order]] | None = None
        self._seen: dict[str, float] | None = None  # loaded from seen.json at the first note
        self._seen_flushed = 0.0
        self._published: dict[str, dict[str, str]] | None = None

    # ------------------------------------------------------------- dispatcher side

    def publish_orders(self, orders: Mapping[str, Order]) -> None:
        """Replace the orders (atomically); orders equal to those this board last published
        are not written again.

        Raises:
            OSError: the state directory cannot be written.
        """
        doc = {host: order.to_dict() for host, order in sorted(orders.items())}
        if doc == self._published and self.orders_path.exists():
            return  # unchanged: not rewritten (the relay's cached copy stays valid)
        write_atomic(self.orders_path, json.dumps(doc, sort_keys=True))
        self._published = doc

    def pending_reports(self) -> list[InboxFile]:
        """The inbox files in arrival order. A file that is not a list of reports is moved
        to ``corrupt/`` with a warning naming it (it can never become a batch, and must not
        hold the others back).

        Raises:
            OSError: the inbox cannot be read.
        """
        if not self.inbox.is_dir():
            return []
        self._sweep_temporaries()
        out = []
        for path in sorted(p for p in self.inbox.iterdir() if not p.name.startswith(".")):
            try:
                reports = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (UnicodeDecodeError, ValueError) as exc:
                self._quarantine(path, f"unreadable: {exc}")
                continue
            if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
                self._quarantine(path, "not a list of signed reports")
                continue
            out.append(InboxFile(path, tuple(reports)))
        return out

    def _sweep_temporaries(self) -> None:
        """Remove the inbox's temporary files older than :data:`STALE_TEMPORARY` seconds:
        left by a relay killed in the middle of a write (never acknowledged to its agent,
        which sent the reports again)."""
        now = time.time()
        for path in self.inbox.glob(".*"):
            try:
                if now - path.stat().st_mtime > STALE_TEMPORARY:
                    path.unlink()
                    log.info("removed %s: the temporary of an interrupted inbox write", path)
            except OSError:
                continue  # gone meanwhile, or a read-only inbox: tried again next time

    def _quarantine(self, path: Path, why: str) -> None:
        target = self.state_dir / "corrupt" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        log.warning("inbox file %s is %s: moved to %s", path, why, target)

    def seen(self) -> dict[str, float] | None:
        """When each host last polled (``None``: no relay has written it yet).

        Raises:
            BoardError: the file is unreadable.
        """
        try:
            data = json.loads(self.seen_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BoardError(f"{self.seen_path} is unreadable: {exc}") from exc
        return {str(k): float(v) for k, v in dict(data).items()}

    # ------------------------------------------------------------------ relay side

    def order_for(self, host_id: str) -> Order | None:
        """The host's current order (``None``: nothing to do).

        Raises:
            BoardError: ``orders.json`` is unreadable.
        """
        try:
            stat = self.orders_path.stat()
        except FileNotFoundError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._orders
        if cached is None or cached[0] != stamp:
            try:
                doc = json.loads(self.orders_path.read_text(encoding="utf-8"))
                orders = {h: Order.from_dict(o) for h, o in doc.items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise BoardError(f"{self.orders_path} is unreadable: {exc}") from exc
            with self._lock:
                self._orders = (stamp, orders)
            return orders.get(host_id)
        return cached[1].get(host_id)

    def put_reports(self, reports: Sequence[Mapping[str, Any]]) -> Path:
        """Store one agent run's reports durably in the inbox; return the file.

        Raises:
            OSError: the inbox cannot be written.
        """
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_COUNTER):08d}.json"
        path = self.inbox / name
        write_atomic(path, json.dumps([dict(r) for r in reports]))
        return path

    def _noted(self) -> dict[str, float]:
        """The polls noted, starting from what ``seen.json`` holds (so a relay that starts,
        or restarts, does not forget the hosts other relays or its last run saw); call with
        the lock held."""
        if self._seen is None:
            try:
                self._seen = self.seen() or {}
            except BoardError as exc:
                log.warning("%s; starting a new one", exc)
                self._seen = {}
        return self._seen

    def mark_seen(self, host_id: str, now: float | None = None) -> None:
        """Note a host's poll; ``seen.json`` is rewritten at most once a second (with every
        host noted since the relay started and those the file held then).

        Raises:
            OSError: the state directory cannot be written.
        """
        moment = time.time() if now is None else now
        with self._lock:
            noted = self._noted()
            noted[host_id] = moment
            due = moment - self._seen_flushed >= 1.0
            if due:
                self._seen_flushed = moment
                snapshot = dict(noted)
        if due:
            write_atomic(self.seen_path, json.dumps(snapshot, sort_keys=True))

    def flush_seen(self) -> None:
        """Write ``seen.json`` now.

        Raises:
            OSError: the state directory cannot be written.
        """
        with self._lock:
            snapshot = dict(self._noted())
        write_atomic(self.seen_path, json.dumps(snapshot, sort_keys=True))
