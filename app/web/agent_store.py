"""What the agent endpoints remember, in the app database (so every app process and a
restarted one share it; migration 0004). Flask-free: the Alembic environment imports the tables.

- ``agent_nonces``: each request nonce until it expires (``expires_at``, seconds since the
  epoch). :func:`claim_nonce` inserts it; the primary key makes a second claim, by this process
  or any other, fail, so a replay to another worker or after a restart is refused. Expired rows
  are deleted as claims go by (at most once a minute per process), and an expired row is no
  obstacle to a new claim of the same nonce (the request time check refuses such a request
  anyway).
- ``agent_report_receipts``: one row per (host, sequence) of a signed report the app stored in
  the dispatcher's inbox, with the SHA-256 of the report as it was received.
  :func:`new_reports` tells which reports of a batch are new; the caller inserts their
  receipts (:func:`record_receipts`) in the same transaction that stores them, so a resent
  report (the agent never got the acknowledgement) is acknowledged again but stored once.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Index, String, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError

from patchledger.app.db.metadata import metadata
from patchledger.app.errors import UserError

__all__ = [
    "ReportConflictError",
    "agent_nonces",
    "agent_report_receipts",
    "claim_nonce",
    "new_reports",
    "record_receipts",
    "report_digest",
]

agent_nonces = Table(
    "agent_nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_agent_nonces_expires_at", "expires_at"),
)

agent_report_receipts = Table(
    "agent_report_receipts",
    metadata,
    Column("host_id", String(128), primary_key=True),
    Column("sequence", BigInteger, primary_key=True),
    Column("report_sha256", String(64), nullable=False),
    Column("received_at", BigInteger, nullable=False),
)

#: seconds between two deletions of expired nonces by one process
PURGE_EVERY = 60


_purge_lock = threading.Lock()
_last_purge = 0.0


def _purge_due(now: float) -> bool:
    global _last_purge  # one clock per process
    with _purge_lock:
        if now - _last_purge < PURGE_EVERY:
            return False
        _last_purge = now
        return True


def claim_nonce(conn: Connection, nonce: str, *, now: float, window: int) -> bool:
    """Remember ``nonce`` until ``now + window``; ``False`` if it is remembered already (a
    replay). Runs in the caller's transaction; commit it to make the claim count.

    Raises:
        sqlalchemy.exc.OperationalError: the database is unavailable or busy.
    """
    if _purge_due(now):
        conn.execute(delete(agent_nonces).where(agent_nonces.c.expires_at <= int(now)))
    else:
        conn.execute(delete(agent_nonces).where(agent_nonces.c.nonce == nonce,
                                                agent_nonces.c.expires_at <= int(now)))
    try:
        with conn.begin_nested():
            conn.execute(insert(agent_nonces).values(nonce=nonce,
                                                     expires_at=int(now) + window + 1))
    except IntegrityError:
        return False
    return True


class ReportConflictError(UserError):
    """A report reuses a (host, sequence) already stored for a different report."""


def report_digest(item: Mapping[str, Any]) -> str:
    """SHA-256 of a signed report element (``{"report", "signature"}``) as canonical JSON."""
    body = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def new_reports(conn: Connection, host_id: str,
                batch: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The reports of ``batch`` (all of ``host_id``, each with an integer
    ``report.sequence``) whose (host, sequence) has no receipt yet, in order; a report repeated
    within the batch counts once.

    Raises:
        ReportConflictError: a sequence already stored (or repeated in the batch) with another
            report; the message names the host and the sequence.
    """
    sequences = [int(item["report"]["sequence"]) for item in batch]
    rows = conn.execute(
        select(agent_report_receipts.c.sequence, agent_report_receipts.c.report_sha256)
        .where(agent_report_receipts.c.host_id == host_id,
               agent_report_receipts.c.sequence.in_(sequences)))
    stored: dict[int, str] = {int(seq): str(digest) for seq, digest in rows}
    fresh: list[Mapping[str, Any]] = []
    for item, sequence in zip(batch, sequences, strict=True):
        digest = report_digest(item)
        known = stored.get(sequence)
        if known is None:
            stored[sequence] = digest
            fresh.append(item)
        elif known != digest:
            raise ReportConflictError(f"report sequence {sequence} of host {host_id} was "
                                      "already received with different content")
    return fresh


def record_receipts(conn: Connection, host_id: str, reports: Sequence[Mapping[str, Any]],
                    now: float | None = None) -> None:
    """Insert the receipts of ``reports`` (from :func:`new_reports`) in the caller's
    transaction.

    Raises:
        sqlalchemy.exc.IntegrityError: another process stored one of them meanwhile (retry:
            :func:`new_reports` then leaves it out).
    """
    at = int(time.time() if now is None else now)
    if reports:
        conn.execute(insert(agent_report_receipts), [
            {"host_id": host_id, "sequence": int(item["report"]["sequence"]),
             "report_sha256": report_digest(item), "received_at": at} for item in reports])
