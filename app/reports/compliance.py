"""Compliance arithmetic, pure: KEV remediation against BOD 22-01 due dates, per-severity SLA
from the policy's remediation days, mean time to remediate, exposure windows and open
exceptions, all "as of" a moment, from facts extracted from the ledger's history
(app.reports.source).

Definitions (docs/reports.md):

- A vulnerability is *identified* at its first version on the ledger.
- A host is *remediated* for a vulnerability at the first VERIFIED report of a deployment of a
  patch that fixes it. A vulnerability is *remediated* when its record went MITIGATED or
  NOT_AFFECTED (and still is), else when every affected host (every host with a deployment
  of a fixing patch) is remediated, at the last of those times.
- Against a due date: *met* (remediated on or before the due date), *missed* (remediated
  after it, or not remediated and the due date has passed as of the report), *open* (not
  remediated, the due date not passed yet). Dates are UTC days.
- Mean time to remediate: identification to remediation, in days, over remediated
  vulnerabilities, overall and per month of remediation.
- Exposure window: identification to remediation, or to the as-of moment when still open.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

MET, MISSED, OPEN = "met", "missed", "open"
CLOSED_STATES = frozenset({"MITIGATED", "NOT_AFFECTED"})


@dataclass(frozen=True)
class VulnFacts:
    """A vulnerability as of the report moment."""

    vuln_id: str
    severity: str
    known_exploited: bool
    kev_due_date: date | None
    identified: datetime
    closed_at: datetime | None  # when it went MITIGATED / NOT_AFFECTED, if it still is


@dataclass(frozen=True)
class HostExposure:
    """One affected host of a vulnerability and when it was remediated (``None``: not yet)."""

    vuln_id: str
    host_id: str
    owner_msp: str
    groups: tuple[str, ...]
    verified_at: datetime | None


@dataclass(frozen=True)
class ExceptionFacts:
    """A risk acceptance as of the report moment."""

    vuln_id: str
    exception_id: str
    status: str
    expires_at: datetime
    host_ids: tuple[str, ...]
    approvals: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    """Everything a report is computed from."""

    as_of: datetime
    block_height: int
    policy_id: str
    policy_version: int
    remediation_days: Mapping[str, int]
    vulnerabilities: tuple[VulnFacts, ...]
    exposures: tuple[HostExposure, ...]
    exceptions: tuple[ExceptionFacts, ...]


@dataclass
class Tally:
    """Met / missed / open counts of one group."""

    met: int = 0
    missed: int = 0
    open: int = 0

    def add(self, outcome: str) -> None:
        """Count one outcome."""
        setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def total(self) -> int:
        """All counted items."""
        return self.met + self.missed + self.open

    def as_dict(self) -> dict[str, int]:
        """The counts by name, with the total."""
        return {"met": self.met, "missed": self.missed, "open": self.open, "total": self.total}


def outcome(due: date, remediated: datetime | None, as_of: datetime) -> str:
    """:data:`MET`, :data:`MISSED` or :data:`OPEN` against ``due`` (see the module docstring)."""
    if remediated is not None and remediated <= as_of:
        return MET if remediated.date() <= due else MISSED
    return MISSED if as_of.date() > due else OPEN


def remediated_at(vuln: VulnFacts, hosts: Iterable[HostExposure]) -> datetime | None:
    """When ``vuln`` was remediated (see the module docstring), ``None`` when it is not."""
    if vuln.closed_at is not None:
        return vuln.closed_at
    times = [h.verified_at for h in hosts]
    if not times or any(t is None for t in times):
        return None
    return max(t for t in times if t is not None)


@dataclass
class Report:
    """The computed figures."""

    facts: Facts
    kev_overall: Tally = field(default_factory=Tally)
    kev_by_org: dict[str, Tally] = field(default_factory=dict)
    kev_by_group: dict[str, Tally] = field(default_factory=dict)
    kev_items: list[dict[str, str]] = field(default_factory=list)
    sla_by_severity: dict[str, Tally] = field(default_factory=dict)
    mttr_days: float | None = None
    mttr_by_month: dict[str, float] = field(default_factory=dict)
    exposure: list[dict[str, object]] = field(default_factory=list)
    open_exceptions: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (the canonical form that is hashed)."""
        f = self.facts
        return {
            "report": "kev-remediation",
            "as_of": f.as_of.isoformat(),
            "block_height": f.block_height,
            "policy": {"policy_id": f.policy_id, "version": f.policy_version,
                       "remediation_days": dict(sorted(f.remediation_days.items()))},
            "kev": {"overall": self.kev_overall.as_dict(),
                    "by_organization": {k: v.as_dict() for k, v in sorted(self.kev_by_org.items())},
                    "by_host_group": {k: v.as_dict()
                                      for k, v in sorted(self.kev_by_group.items())},
                    "items": self.kev_items},
            "sla_by_severity": {k: v.as_dict() for k, v in self.sla_by_severity.items()},
            "mttr_days": self.mttr_days,
            "mttr_by_month": dict(sorted(self.mttr_by_month.items())),
            "exposure": self.exposure,
            "open_exceptions": self.open_exceptions,
        }


SEVERITY_ORDER = ("critical", "high", "medium", "low", "none")


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 2)


def compute(facts: Facts) -> Report:
    """Every figure of the report from ``facts`` (pure)."""
    report = Report(facts)
    as_of = facts.as_of
    hosts_of: dict[str, list[HostExposure]] = defaultdict(list)
    for h in facts.exposures:
        hosts_of[h.vuln_id].append(h)
    durations: list[tuple[datetime, float]] = []
    for sev in SEVERITY_ORDER:
        if sev in facts.remediation_days:
            report.sla_by_severity[sev] = Tally()
    for v in sorted(facts.vulnerabilities, key=lambda x: x.vuln_id):
        done = remediated_at(v, hosts_of[v.vuln_id])
        if done is not None and done > as_of:
            done = None
        if v.known_exploited and v.kev_due_date is not None:
            result = outcome(v.kev_due_date, done, as_of)
            report.kev_overall.add(result)
            report.kev_items.append({"vuln_id": v.vuln_id, "due": v.kev_due_date.isoformat(),
                                     "remediated": done.isoformat() if done else "",
                                     "outcome": result})
            for h in hosts_of[v.vuln_id]:
                host_done = h.verified_at if h.verified_at is not None else v.closed_at
                if host_done is not None and host_done > as_of:
                    host_done = None
                host_result = outcome(v.kev_due_date, host_done, as_of)
                report.kev_by_org.setdefault(h.owner_msp, Tally()).add(host_result)
                for g in h.groups or ("(no group)",):
                    report.kev_by_group.setdefault(g, Tally()).add(host_result)
        days = facts.remediation_days.get(v.severity)
        if days is not None:
            due = v.identified.date() + timedelta(days=int(days))
            report.sla_by_severity.setdefault(v.severity, Tally()).add(
                outcome(due, done, as_of))
        end = done or as_of
        report.exposure.append({"vuln_id": v.vuln_id, "severity": v.severity,
                                "identified": v.identified.isoformat(),
                                "remediated": done.isoformat() if done else "",
                                "exposure_days": _days(end - v.identified)})
        if done is not None:
            durations.append((done, _days(done - v.identified)))
    if durations:
        report.mttr_days = round(sum(d for _, d in durations) / len(durations), 2)
        months: dict[str, list[float]] = defaultdict(list)
        for moment, d in durations:
            months[moment.strftime("%Y-%m")].append(d)
        report.mttr_by_month = {m: round(sum(ds) / len(ds), 2) for m, ds in months.items()}
    for e in sorted(facts.exceptions, key=lambda x: (x.expires_at, x.vuln_id, x.exception_id)):
        if e.status in ("PROPOSED", "GRANTED") and e.expires_at > as_of:
            report.open_exceptions.append({
                "vuln_id": e.vuln_id, "exception_id": e.exception_id, "status": e.status,
                "expires_at": e.expires_at.isoformat(),
                "days_left": f"{_days(e.expires_at - as_of):g}",
                "hosts": ",".join(e.host_ids) or "(whole estate)",
                "agreed_by": ",".join(e.approvals)})
    return report
