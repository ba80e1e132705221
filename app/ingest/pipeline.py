"""One ingestion run, and the scheduler loop that repeats it.

A run: reconcile the transactions earlier runs submitted (from the read model: committed,
invalid, or lost); load the configured feed sources; merge; match against the stored host
inventories; store findings (off the ledger) with their explained priority and deadline;
prepare patch candidates from fixed versions; record on the ledger, in batches, the
vulnerabilities that are new or changed compared with the read model (and with the
submissions still in flight); update the ledger's inventory digests of enrolled hosts.

Idempotent: a vulnerability whose merge into the recorded one (the contract's own rule,
``chaincode.lifecycle.vulnerability.merge``) changes nothing is not submitted, so importing
the same feeds twice submits nothing. Run ONE scheduler per deployment: :func:`run_ingestion_loop`
holds a lease in the database and refuses to run while another process holds it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from patchledger.app.db import for_writes
from patchledger.app.errors import UserError
from patchledger.app.feeds.loader import ImportReport, Loader
from patchledger.app.feeds.matching import Finding, Matcher
from patchledger.app.feeds.merge import Vulnerability as FeedVulnerability
from patchledger.app.feeds.merge import merge as merge_advisories
from patchledger.app.feeds.priority import Policy, prioritize
from patchledger.app.ingest.candidates import refresh_candidates
from patchledger.app.ingest.inventories import (
    digests_to_record,
    load_inventories,
    mark_digest_recorded,
)
from patchledger.app.ingest.ledger import (
    Call,
    LedgerWriter,
    Outcome,
    call_payloads,
    record_of,
    vulnerability_argument,
    vulnerability_calls,
)
from patchledger.app.ingest.tables import (
    feed_imports,
    findings,
    inventories,
    ledger_submissions,
    scheduler_leases,
)
from patchledger.app.readmodel.decode import iso_time
from patchledger.app.readmodel.queries import get_record, get_transaction
from patchledger.chaincode.lifecycle.ops.vulnerabilities import MAX_BATCH as MAX_VULNERABILITY_BATCH
from patchledger.chaincode.lifecycle.vulnerability import Vulnerability, merge, same_content

log = logging.getLogger(__name__)

RECORD_CHOICES = ("matched", "kev", "all")
LEASE = "ingestion"


class IngestionError(UserError):
    """The ingestion settings are invalid, or another process holds the scheduler lease."""


@dataclass(frozen=True)
class IngestionSettings:
    """What to import and how (a typed part of the app's configuration).

    Attributes:
        sources: feed files, directories or URLs (``app.feeds.loader.Loader``).
        record: which vulnerabilities go on the ledger: ``matched`` (those with a finding on
            one of the organization's hosts), ``kev`` (matched ones and every KEV entry),
            ``all``.
        batch_size: transactions submitted together.
        per_transaction: vulnerabilities recorded by one ``RecordVulnerabilities``
            transaction (1 to 200; 1: one ``RecordVulnerability`` each, for a chaincode
            without the batch function).
        unscored_severity: the ledger severity of a vulnerability without CVSS or KEV data.
        pending_timeout: seconds after which a submission the read model does not show
            (while the read model is caught up with the peer) is considered lost.
        interval: seconds between runs of the loop.
    """

    sources: tuple[str, ...]
    record: str = "matched"
    batch_size: int = 50
    per_transaction: int = 100
    unscored_severity: str = "medium"
    pending_timeout: float = 300.0
    interval: float = 3600.0

    def __post_init__(self) -> None:
        if self.record not in RECORD_CHOICES:
            raise IngestionError(
                f"invalid ingestion setting 'record' {self.record!r}: one of "
                f"{', '.join(RECORD_CHOICES)}")
        if not 1 <= self.batch_size <= 1000:
            raise IngestionError("invalid ingestion setting 'batch_size': 1 to 1000")
        if not 1 <= self.per_transaction <= MAX_VULNERABILITY_BATCH:
            raise IngestionError("invalid ingestion setting 'per_transaction': 1 to "
                                 f"{MAX_VULNERABILITY_BATCH}")
        if self.unscored_severity not in ("low", "medium", "high", "critical"):
            raise IngestionError("invalid ingestion setting 'unscored_severity'")
        if self.interval <= 0:
            raise IngestionError("invalid ingestion setting 'interval': must be > 0")


@dataclass
class IngestionReport:
    """What one run did (also stored as a ``feed_imports`` row, id ``import_id``)."""

    import_id: int = 0
    status: str = "ok"
    records: int = 0
    advisories: int = 0
    vulnerabilities: int = 0
    findings: int = 0
    candidates: int = 0
    submitted: int = 0
    unchanged: int = 0
    in_flight: int = 0
    committed: int = 0
    refused: int = 0
    failed: int = 0
    digests_submitted: int = 0
    reconciled: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


# ------------------------------------------------------------------------ reconciliation

def reconcile_submissions(
    conn: Connection, *, read_model_caught_up: bool, pending_timeout: float,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Settle the ``SUBMITTED`` submissions from the read model: the transaction is there
    (``COMMITTED`` when valid, else ``INVALID``), or, when the read model is caught up with
    the peer and the submission is older than ``pending_timeout``, ``LOST`` (never ordered:
    its record will be compared and submitted again). Returns counts per new status, in
    records (a RecordVulnerabilities transaction counts its vulnerabilities)."""
    moment = _now(now)
    cutoff = iso_time(moment - dt.timedelta(seconds=pending_timeout))
    counts: dict[str, int] = {}
    rows = conn.execute(
        select(ledger_submissions.c.tx_id, ledger_submissions.c.submitted_at,
               ledger_submissions.c.function, ledger_submissions.c.payload_json)
        .where(ledger_submissions.c.status == "SUBMITTED")
    ).all()
    for tx_id, submitted_at, function, payload in rows:
        tx = get_transaction(conn, tx_id)
        if tx is not None:
            status, detail = ("COMMITTED", "") if tx.valid else ("INVALID", tx.validation_code_name)
        elif read_model_caught_up and submitted_at < cutoff:
            status, detail = "LOST", "not on the ledger after the pending timeout"
        else:
            continue
        _resolve(conn, tx_id, status, detail, moment)
        counts[status] = counts.get(status, 0) + _records_in(function, payload)
    return counts


def _records_in(function: str, payload_json: str) -> int:
    """How many records a logged call is about (a RecordVulnerabilities batch: its entries)."""
    return len(call_payloads(function, payload_json)) or 1


def _resolve(conn: Connection, tx_id: str, status: str, detail: str, moment: dt.datetime) -> None:
    conn.execute(update(ledger_submissions).where(ledger_submissions.c.tx_id == tx_id)
                 .values(status=status, detail=detail[:4000], resolved_at=iso_time(moment)))


def in_flight(conn: Connection, record_type: str) -> dict[str, list[dict[str, Any]]]:
    """Payloads of the ``SUBMITTED`` (not yet seen) submissions per record id."""
    out: dict[str, list[dict[str, Any]]] = {}
    rows = conn.execute(
        select(ledger_submissions.c.record_id, ledger_submissions.c.function,
               ledger_submissions.c.payload_json)
        .where(ledger_submissions.c.status == "SUBMITTED",
               ledger_submissions.c.record_type == record_type)
    )
    for record_id, function, payload in rows:
        if function == "RecordVulnerabilities":  # a batch: each entry under its own id
            for entry in call_payloads(function, payload):
                out.setdefault(str(entry.get("vuln_id", "")), []).append(entry)
        else:
            out.setdefault(record_id, []).append(json.loads(payload))
    return out


# ------------------------------------------------------------------------ the run

def select_vulnerabilities(
    vulns: dict[str, FeedVulnerability], matched: set[str], record: str
) -> list[FeedVulnerability]:
    """The vulnerabilities to compare with the ledger, by id (see ``IngestionSettings``)."""
    if record == "all":
        chosen = set(vulns)
    elif record == "kev":
        chosen = matched | {k for k, v in vulns.items() if v.kev is not None}
    else:
        chosen = matched
    return [vulns[k] for k in sorted(chosen) if k in vulns]


def changes_to_record(
    conn: Connection, arguments: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """The arguments that would change the ledger: the contract's merge of each into the
    recorded version (from the read model, with in-flight submissions applied) is not the
    same content. Returns ``(to_submit, unchanged_count)``; arguments the core would refuse
    are left out (and not counted)."""
    pending = in_flight(conn, "Vulnerability")
    to_submit, unchanged = [], 0
    for data in arguments:
        incoming = record_of(data)
        if incoming is None:
            continue
        row = get_record(conn, "Vulnerability", incoming.vuln_id)
        current: Vulnerability | None = None
        if row is not None:
            current = record_of({**row.record})
        for payload in pending.get(incoming.vuln_id, ()):
            flying = record_of(payload)
            if flying is not None:
                current = flying if current is None else merge(current, flying)
        if current is not None and same_content(merge(current, incoming), current):
            unchanged += 1
            continue
        to_submit.append(data)
    return to_submit, unchanged


def store_findings(
    conn: Connection, found: Sequence[Finding], vulns: dict[str, FeedVulnerability],
    criticality: dict[str, str], hosts: Sequence[str], import_id: int,
    now: dt.datetime,
) -> int:
    """Replace the findings of ``hosts`` with ``found`` (keeping ``first_seen`` of findings
    seen before); returns how many are stored."""
    stamp = iso_time(now)
    existing = {
        (h, v, p): fs for h, v, p, fs in conn.execute(
            select(findings.c.host_id, findings.c.vuln_id, findings.c.package,
                   findings.c.first_seen).where(findings.c.host_id.in_(list(hosts))))
    }
    conn.execute(delete(findings).where(findings.c.host_id.in_(list(hosts))))
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for f in found:
        key = (f.host, f.vulnerability, f.package)
        if key in rows:
            continue
        vuln = vulns.get(f.vulnerability)
        priority_json, score, deadline = "{}", 0.0, None
        if vuln is not None:
            p = prioritize(vuln, criticality=criticality.get(f.host, "medium"),
                           today=now.date(), policy=Policy())
            score = p.score
            deadline = p.deadline.isoformat() if p.deadline else None
            priority_json = json.dumps({
                "score": p.score, "severity": p.severity,
                "reasons": [{"points": pts, "reason": why} for pts, why in p.reasons],
                "deadline": deadline, "deadline_reason": p.deadline_reason,
            }, sort_keys=True)
        rows[key] = {
            "host_id": f.host, "vuln_id": f.vulnerability, "package": f.package,
            "installed_version": f.installed_version, "fixed_version": f.fixed_version,
            "advisory_id": f.advisory, "source": f.source, "reason": f.reason,
            "priority_score": score, "priority_json": priority_json, "deadline": deadline,
            "first_seen": existing.get(key, stamp), "last_seen": stamp, "import_id": import_id,
        }
    if rows:
        conn.execute(insert(findings), list(rows.values()))
    return len(rows)


def _record_sent(engine: Engine, sent: list[tuple[str, Call]], moment: dt.datetime) -> None:
    stamp = iso_time(moment)
    with for_writes(engine).begin() as conn:
        conn.execute(insert(ledger_submissions), [
            {"tx_id": tx_id, "function": c.function, "record_type": c.record_type,
             "record_id": c.record_id,
             "payload_json": c.arguments[0]
             if c.function in ("RecordVulnerability", "RecordVulnerabilities")
             else json.dumps(list(c.arguments)),
             "status": "SUBMITTED", "detail": "", "submitted_at": stamp, "resolved_at": ""}
            for tx_id, c in sent
        ])


def _settle(engine: Engine, outcomes: Sequence[Outcome], report: IngestionReport) -> None:
    moment = dt.datetime.now(dt.UTC)
    with for_writes(engine).begin() as conn:
        for o in outcomes:
            records = _records_in(o.call.function, o.call.arguments[0]) \
                if o.call.arguments else 1
            if o.status == "FAILED":
                # Not known whether it was ordered: stays SUBMITTED, reconciled later from
                # the read model (never resubmitted blindly).
                conn.execute(update(ledger_submissions)
                             .where(ledger_submissions.c.tx_id == o.transaction_id)
                             .values(detail=o.detail[:4000]))
                report.failed += records
                report.errors.append(f"{o.call.function} {o.call.record_id}: {o.detail}")
                continue
            _resolve(conn, o.transaction_id, o.status, o.detail, moment)
            if o.status == "COMMITTED":
                refused = _refused_entries(o)
                report.committed += records - len(refused)
                report.refused += len(refused)
                report.errors.extend(refused)
                if o.call.function == "UpdateInventoryDigest":
                    mark_digest_recorded(conn, o.call.record_id, o.call.arguments[1])
            else:
                report.refused += records
                report.errors.append(f"{o.call.function} {o.call.record_id}: {o.status} "
                                     f"{o.detail}")


def _refused_entries(outcome: Outcome) -> list[str]:
    """The entries a committed RecordVulnerabilities transaction refused (its result's
    per-entry list), each as an error line; none for other calls or without a result."""
    if outcome.call.function != "RecordVulnerabilities" or not outcome.result:
        return []
    try:
        results = json.loads(outcome.result).get("results", [])
    except (ValueError, AttributeError):
        return []
    return [f"RecordVulnerabilities {r.get('vuln_id', '')}: REFUSED {r.get('error_type', '')}: "
            f"{r.get('error', '')}" for r in results
            if isinstance(r, dict) and not r.get("recorded", True)]


def submit_calls(engine: Engine, writer: LedgerWriter, calls: Sequence[Call],
                 batch_size: int, report: IngestionReport) -> None:
    """Submit ``calls`` in batches, logging each transaction id before it is sent."""
    for start in range(0, len(calls), batch_size):
        batch = calls[start:start + batch_size]
        outcomes = writer.submit_batch(
            batch, lambda sent: _record_sent(engine, sent, dt.datetime.now(dt.UTC)))
        _settle(engine, outcomes, report)


def run_ingestion_once(
    engine: Engine,
    settings: IngestionSettings,
    writer: LedgerWriter | None,
    *,
    read_model_caught_up: bool,
    inventory_writer: LedgerWriter | None = None,
    loader: Loader | None = None,
    now: dt.datetime | None = None,
) -> IngestionReport:
    """One ingestion run (see the module docstring).

    Args:
        engine: the app database (migrated).
        settings: sources and rules.
        writer: submits ``RecordVulnerability`` as a ``feed`` identity (``None``: dry run,
            nothing goes on the ledger; findings and candidates are still stored).
        read_model_caught_up: True when the read model has projected the peer's height
            (``readmodel.projector.lag(...).behind == 0``); lost submissions are only
            declared then.
        inventory_writer: submits ``UpdateInventoryDigest`` as an ``operator`` (``None``:
            digests are not updated).
        loader: the feed loader (default: files and directories; pass one with a fetcher
            for URLs).

    A bad feed file or record is reported in ``errors`` and the rest imported; a refused
    transaction is reported and the others still submitted.
    """
    moment = _now(now)
    report = IngestionReport()
    with for_writes(engine).begin() as conn:
        report.reconciled = reconcile_submissions(
            conn, read_model_caught_up=read_model_caught_up,
            pending_timeout=settings.pending_timeout, now=moment)
        import_id = conn.execute(insert(feed_imports).values(
            started_at=iso_time(moment), finished_at="", status="running",
            sources_json=json.dumps(list(settings.sources)), records=0, advisories=0,
            vulnerabilities=0, findings=0, submitted=0, unchanged=0, candidates=0,
            errors_json="[]")).inserted_primary_key
        report.import_id = int(import_id[0]) if import_id else 0
    try:
        loaded: ImportReport = (loader or Loader()).load(list(settings.sources))
        report.errors.extend(str(e) for e in loaded.all_errors)
        advisories = loaded.advisories
        report.records = sum(r.records for r in loaded.results)
        report.advisories = len(advisories)
        vulns = merge_advisories(advisories)
        with for_writes(engine).begin() as conn:
            stored = load_inventories(conn)
            criticality = {i.host: i.criticality for i in stored}
            match = Matcher(vulns).match_all(stored)
            report.errors.extend(
                f"advisory error: {e.vulnerability} {e.advisory} ({e.source}) on {e.host} "
                f"{e.package}: {e.reason}" for e in match.advisory_errors[:100])
            report.findings = store_findings(conn, match.findings, vulns, criticality,
                                             [i.host for i in stored], report.import_id,
                                             moment)
            matched = {f.vulnerability for f in match.findings}
            chosen = select_vulnerabilities(vulns, matched, settings.record)
            arguments = []
            for v in chosen:
                data = vulnerability_argument(v, unscored=settings.unscored_severity)
                if data is None:
                    report.errors.append(f"vulnerability id {v.id!r} is not a ledger id")
                    continue
                arguments.append(data)
            report.vulnerabilities = len(arguments)
            report.candidates = refresh_candidates(conn, match.findings, vulns, moment,
                                                   unscored=settings.unscored_severity)
            to_submit, report.unchanged = changes_to_record(conn, arguments)
            report.in_flight = sum(len(v) for v in in_flight(conn, "Vulnerability").values())
            digests = digests_to_record(conn) if inventory_writer is not None else []
        if writer is not None and to_submit:
            report.submitted = len(to_submit)
            submit_calls(engine, writer, vulnerability_calls(to_submit, settings.per_transaction),
                         settings.batch_size, report)
        if inventory_writer is not None and digests:
            calls = [Call("UpdateInventoryDigest", (h, d), "Host", h) for h, d in digests]
            report.digests_submitted = len(calls)
            submit_calls(engine, inventory_writer, calls, settings.batch_size, report)
        report.status = "ok" if not report.refused and not report.failed else "partial"
    except Exception as exc:
        report.status = "failed"
        report.errors.append(f"ingestion failed: {exc}")
        raise
    finally:
        with for_writes(engine).begin() as conn:
            conn.execute(update(feed_imports).where(feed_imports.c.id == report.import_id).values(
                finished_at=iso_time(dt.datetime.now(dt.UTC)), status=report.status,
                records=report.records, advisories=report.advisories,
                vulnerabilities=report.vulnerabilities, findings=report.findings,
                submitted=report.submitted, unchanged=report.unchanged,
                candidates=report.candidates, errors_json=json.dumps(report.errors[:1000])))
    return report


# ------------------------------------------------------------------------ the scheduler

def default_holder() -> str:
    """This process's lease holder name: host name and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire_lease(engine: Engine, holder: str, ttl: float, *, now: float | None = None) -> bool:
    """Take or renew the scheduler lease for ``ttl`` seconds; False when another holder's
    lease has not expired. Atomic on SQLite and PostgreSQL (a conditional update, or an
    insert that fails on the primary key)."""
    moment = time.time() if now is None else now
    t = scheduler_leases.c
    try:
        with for_writes(engine).begin() as conn:
            done = conn.execute(
                update(scheduler_leases)
                .where(t.name == LEASE, (t.holder == holder) | (t.expires_at < moment))
                .values(holder=holder, expires_at=moment + ttl))
            if done.rowcount:
                return True
            exists = conn.execute(select(t.holder).where(t.name == LEASE)).first()
            if exists is not None:
                return False
            conn.execute(insert(scheduler_leases).values(name=LEASE, holder=holder,
                                                         expires_at=moment + ttl))
            return True
    except IntegrityError:
        return False


def release_lease(engine: Engine, holder: str) -> None:
    """Give the lease up (when this holder has it)."""
    t = scheduler_leases.c
    with for_writes(engine).begin() as conn:
        conn.execute(delete(scheduler_leases).where(t.name == LEASE, t.holder == holder))


def run_ingestion_loop(
    engine: Engine,
    settings: IngestionSettings,
    run_once: Callable[[], IngestionReport],
    *,
    stop: threading.Event,
    holder: str | None = None,
    on_report: Callable[[IngestionReport], None] | None = None,
) -> None:
    """Call ``run_once`` (typically ``functools.partial(run_ingestion_once, ...)``) every
    ``settings.interval`` seconds until ``stop`` is set, holding the scheduler lease (lease
    time: two intervals, renewed before each run). A failed run is logged and retried at the
    next interval.

    Raises:
        IngestionError: another process holds the lease (it names the holder).
    """
    me = holder or default_holder()
    ttl = 2 * settings.interval + 60
    if not acquire_lease(engine, me, ttl):
        with engine.connect() as conn:
            other = conn.execute(select(scheduler_leases.c.holder)).scalar()
        raise IngestionError(
            f"the ingestion scheduler already runs in {other} (one per deployment); "
            "not starting a second one")
    try:
        while not stop.is_set():
            if not acquire_lease(engine, me, ttl):
                raise IngestionError("the ingestion scheduler lease was taken over")
            try:
                report = run_once()
                if on_report is not None:
                    on_report(report)
            except Exception:
                log.exception("ingestion run failed")
            stop.wait(settings.interval)
    finally:
        release_lease(engine, me)


def inventory_hosts(conn: Connection) -> list[str]:
    """Host ids with a stored inventory."""
    return [h for (h,) in conn.execute(select(inventories.c.host_id).order_by(
        inventories.c.host_id))]
