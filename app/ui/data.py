"""What the web UI's pages show that the read model's generic queries (app.readmodel.queries)
do not answer alone: aggregates over the read-model tables (counts by severity, KEV items by
due date, approvals waiting for an organization, rollout progress per wave, hosts not
reporting, each host's last report) and the off-ledger findings of ingestion. Pure reads over
a SQLAlchemy ``Connection``; nothing here writes. Lists and details themselves go through
:mod:`patchledger.app.readmodel.queries`, as the API's do.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, case, func, select

from patchledger.app.ingest.tables import findings
from patchledger.app.readmodel import queries
from patchledger.app.readmodel.tables import RECORD_TABLES

SEVERITY_ORDER = ("critical", "high", "medium", "low", "none")
#: Deployment states counted as done / failed in progress bars.
DONE = frozenset({"VERIFIED"})
FAILED = frozenset({"FAILED", "ROLLED_BACK"})

_V = RECORD_TABLES["Vulnerability"]
_P = RECORD_TABLES["Patch"]
_A = RECORD_TABLES["Approval"]
_H = RECORD_TABLES["Host"]
_D = RECORD_TABLES["Deployment"]
_R = RECORD_TABLES["Rollout"]


def open_by_severity(conn: Connection) -> dict[str, int]:
    """Open vulnerabilities per severity, every severity present (0 when none)."""
    rows = conn.execute(select(_V.c.severity, func.count()).where(_V.c.state == "OPEN")
                        .group_by(_V.c.severity)).all()
    counts = {s: 0 for s in SEVERITY_ORDER}
    for severity, n in rows:
        counts[str(severity or "none")] = counts.get(str(severity or "none"), 0) + int(n)
    return counts


@dataclass(frozen=True)
class KevSummary:
    """Open KEV vulnerabilities past their due date and due within ``soon_days``."""

    overdue: list[queries.RecordRow]
    overdue_count: int
    due_soon: list[queries.RecordRow]
    due_soon_count: int
    soon_days: int


def kev_due(conn: Connection, today: date, *, soon_days: int = 14, limit: int = 10
            ) -> KevSummary:
    """Open known-exploited vulnerabilities by BOD 22-01 due date (``kev_due_date``)."""
    base = and_(_V.c.state == "OPEN", _V.c.known_exploited.is_(True), _V.c.kev_due_date != "")
    today_s, soon_s = today.isoformat(), (today + timedelta(days=soon_days)).isoformat()
    overdue = and_(base, _V.c.kev_due_date < today_s)
    soon = and_(base, _V.c.kev_due_date >= today_s, _V.c.kev_due_date <= soon_s)

    def rows(cond: Any) -> list[queries.RecordRow]:
        found = conn.execute(select(_V.c.record_id).where(cond)
                             .order_by(_V.c.kev_due_date, _V.c.record_id).limit(limit)).all()
        return [r for (rid,) in found if (r := queries.get_record(conn, "Vulnerability", rid))]

    def count(cond: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(_V).where(cond)).scalar_one())

    return KevSummary(rows(overdue), count(overdue), rows(soon), count(soon), soon_days)


def waiting_for(conn: Connection, msp_id: str, *, limit: int = 20) -> list[queries.RecordRow]:
    """TESTED patches that ``msp_id`` has not decided yet (approve or reject)."""
    decided = select(_A.c.patch_id).where(_A.c.msp_id == msp_id)
    ids = conn.execute(select(_P.c.record_id).where(_P.c.state == "TESTED",
                                                    _P.c.record_id.not_in(decided))
                       .order_by(_P.c.record_id).limit(limit)).scalars().all()
    return [r for rid in ids if (r := queries.get_record(conn, "Patch", rid))]


@dataclass
class WaveProgress:
    """Deployment counts of one wave of a rollout."""

    wave: int
    planned: int
    states: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Deployments VERIFIED."""
        return sum(n for s, n in self.states.items() if s in DONE)

    @property
    def failed(self) -> int:
        """Deployments FAILED or ROLLED_BACK."""
        return sum(n for s, n in self.states.items() if s in FAILED)

    @property
    def percent(self) -> int:
        """Share of the wave's hosts VERIFIED, 0-100."""
        return round(100 * self.done / self.planned) if self.planned else 0


def wave_progress(conn: Connection, rollout: queries.RecordRow) -> list[WaveProgress]:
    """Per wave of ``rollout``: its planned hosts and the deployment states reported so far."""
    waves = rollout.record.get("waves") or []
    out = [WaveProgress(i, len(w.get("hosts") or [])) for i, w in enumerate(waves)]
    rows = conn.execute(select(_D.c.wave, _D.c.state, func.count())
                        .where(_D.c.rollout_id == rollout.record_id)
                        .group_by(_D.c.wave, _D.c.state)).all()
    for wave, st, n in rows:
        if wave is not None and 0 <= int(wave) < len(out):
            out[int(wave)].states[str(st)] = int(n)
    return out


def active_rollouts(conn: Connection, *, limit: int = 10
                    ) -> list[tuple[queries.RecordRow, list[WaveProgress]]]:
    """Rollouts RUNNING or PAUSED with their per-wave progress."""
    page = queries.list_records(conn, "Rollout", filters={"state": ["RUNNING", "PAUSED"]},
                                limit=limit)
    return [(r, wave_progress(conn, r)) for r in page.items]


def stale_hosts(conn: Connection, now: int, *, stale_seconds: int = 86400, limit: int = 10
                ) -> tuple[int, list[tuple[queries.RecordRow, int]]]:
    """ENROLLED hosts with neither a report (their newest reported deployment: reports write
    only the Deployment record) nor a Host record update (an inventory digest, enrollment) for
    ``stale_seconds``: how many, and the ``limit`` longest silent with when they were last
    heard of."""
    cutoff = now - stale_seconds
    newest = (select(_D.c.host_id, func.max(_D.c.updated_at).label("at"))
              .where(_D.c.report_sequence > 0).group_by(_D.c.host_id).subquery())
    last = case((newest.c.at > _H.c.updated_at, newest.c.at), else_=_H.c.updated_at)
    joined = _H.outerjoin(newest, newest.c.host_id == _H.c.record_id)
    cond = and_(_H.c.state == "ENROLLED", last < cutoff)
    n = int(conn.execute(select(func.count()).select_from(joined).where(cond)).scalar_one())
    rows = conn.execute(select(_H.c.record_id, last).select_from(joined).where(cond)
                        .order_by(last, _H.c.record_id).limit(limit)).all()
    return n, [(r, int(at)) for rid, at in rows if (r := queries.get_record(conn, "Host", rid))]


def affected_host_counts(conn: Connection, vuln_ids: Iterable[str]) -> dict[str, int]:
    """Distinct affected hosts (ingestion's findings) per vulnerability id."""
    ids = list(vuln_ids)
    if not ids:
        return {}
    rows = conn.execute(select(findings.c.vuln_id, func.count(func.distinct(findings.c.host_id)))
                        .where(findings.c.vuln_id.in_(ids)).group_by(findings.c.vuln_id)).all()
    return {str(v): int(n) for v, n in rows}


@dataclass(frozen=True)
class Finding:
    """One affected package on one host, with its explained priority."""

    host_id: str
    package: str
    installed_version: str
    fixed_version: str
    source: str
    score: float
    reasons: list[tuple[float, str]]
    deadline: str
    deadline_reason: str


def finding_rows(conn: Connection, vuln_id: str, *, limit: int, offset: int = 0
                 ) -> Sequence[RowMapping]:
    """The off-ledger findings rows of ``vuln_id`` (ingestion's ``findings`` table), highest
    priority first (then host, then row id: a stable order for offset paging). The one query
    behind the UI's vulnerability page and the API's ``/vulnerabilities/<id>/findings``."""
    return conn.execute(select(findings).where(findings.c.vuln_id == vuln_id)
                        .order_by(findings.c.priority_score.desc(), findings.c.host_id,
                                  findings.c.id)
                        .limit(limit).offset(offset)).mappings().all()


def findings_of(conn: Connection, vuln_id: str, *, limit: int = 200) -> list[Finding]:
    """The findings of ``vuln_id``, highest priority first (:func:`finding_rows`)."""
    rows = finding_rows(conn, vuln_id, limit=limit)
    out = []
    for r in rows:
        try:
            p = json.loads(r["priority_json"] or "{}")
        except ValueError:
            p = {}
        reasons = [(float(x.get("points", 0)), str(x.get("reason", "")))
                   for x in p.get("reasons", []) if isinstance(x, dict)]
        out.append(Finding(r["host_id"], r["package"], r["installed_version"],
                           r["fixed_version"] or "", r["source"], float(r["priority_score"]),
                           reasons, r["deadline"] or "", str(p.get("deadline_reason", ""))))
    return out


def deployment_states(conn: Connection, host_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """Per host: how many deployments are in each state."""
    ids = list(host_ids)
    out: dict[str, dict[str, int]] = defaultdict(dict)
    if ids:
        for host, st, n in conn.execute(select(_D.c.host_id, _D.c.state, func.count())
                                        .where(_D.c.host_id.in_(ids))
                                        .group_by(_D.c.host_id, _D.c.state)).all():
            out[str(host)][str(st)] = int(n)
    return dict(out)


@dataclass(frozen=True)
class LastReport:
    """A host's newest report: that of its newest reported deployment. Reports write only
    their Deployment record (docs/security.md, "Host reports"), so the Host record's
    ``last_report_sequence`` and time no longer move with them.

    Attributes:
        rollout_id: the deployment's rollout.
        sequence: its report sequence (per deployment).
        state: the status the report set.
        at: when the ledger recorded it (the transaction time, seconds).
        reported_at: the time the host signed in its report (0 on older records).
    """

    rollout_id: str
    sequence: int
    state: str
    at: int
    reported_at: int


def last_reports(conn: Connection, host_ids: Iterable[str]) -> dict[str, LastReport]:
    """Per host of ``host_ids`` that ever reported: its newest report (:class:`LastReport`),
    from the deployment recorded last with a report sequence above 0. One query."""
    ids = list(host_ids)
    out: dict[str, LastReport] = {}
    if not ids:
        return out
    rows = conn.execute(select(_D.c.host_id, _D.c.rollout_id, _D.c.report_sequence, _D.c.state,
                               _D.c.updated_at, _D.c.json)
                        .where(_D.c.host_id.in_(ids), _D.c.report_sequence > 0)
                        .order_by(_D.c.host_id, _D.c.updated_at.desc(),
                                  _D.c.rollout_id.desc())).all()
    for host, rollout_id, sequence, st, at, text in rows:
        if str(host) not in out:
            reported_at = json.loads(text).get("reported_at") or 0
            out[str(host)] = LastReport(str(rollout_id), int(sequence), str(st), int(at),
                                        int(reported_at))
    return out


def current_policy(conn: Connection) -> queries.RecordRow | None:
    """The policy record with the highest version (``None`` before InitLedger)."""
    page = queries.list_records(conn, "Policy", sort="version", descending=True, limit=1)
    return page.items[0] if page.items else None


@dataclass(frozen=True)
class Quorum:
    """Where a patch stands against the policy's approval quorum."""

    needed: int
    approved_by: list[str]
    rejected_by: list[str]
    missing: int
    undecided: list[str]


def quorum_of(patch: Mapping[str, Any], approvals: Iterable[queries.RecordRow],
              policy: Mapping[str, Any] | None) -> Quorum:
    """The quorum the policy asks for the patch's severity and what is still missing."""
    quorum = (policy or {}).get("quorum") or {}
    needed = int(quorum.get(str(patch.get("severity", "")), 0) or 0)
    approved = sorted({a.record.get("msp_id", "") for a in approvals
                       if a.record.get("decision") == "approve"})
    rejected = sorted({a.record.get("msp_id", "") for a in approvals
                       if a.record.get("decision") == "reject"})
    orgs = list((policy or {}).get("organizations") or [])
    undecided = [o for o in orgs if o not in approved and o not in rejected]
    return Quorum(needed, approved, rejected, max(needed - len(approved), 0), undecided)


def enrolled_hosts(conn: Connection, msp_id: str) -> list[tuple[str, tuple[str, ...], str]]:
    """Every ENROLLED host of ``msp_id``: (host id, groups, maintenance window), by id. One
    query over the current Host rows (the rollout wizard plans over all of them)."""
    rows = conn.execute(select(_H.c.record_id, _H.c.json)
                        .where(_H.c.owner_msp == msp_id, _H.c.state == "ENROLLED")
                        .order_by(_H.c.record_id)).all()
    out = []
    for host_id, text in rows:
        doc = json.loads(text)
        out.append((str(host_id), tuple(str(g) for g in doc.get("groups") or ()),
                    str(doc.get("maintenance_window") or "")))
    return out
