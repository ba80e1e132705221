"""Prioritization: a transparent score with its reasons, and a remediation deadline.

The score is a sum of named contributions, each with the sentence that explains it, so an
approver can see exactly why a finding ranks where it does:

* CVSS: ``4 x`` the highest base score any source gives (0-40);
* KEV: +30 when CISA lists the CVE as exploited, +10 more when its due date has passed;
* known ransomware use: +15;
* asset criticality: low 0, medium +5, high +10, critical +20.

The deadline comes from the :class:`Policy`: the KEV due date when there is one, otherwise
the publication date plus the SLA days of the severity class (the earlier of the two when a
KEV CVE's SLA is stricter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from patchledger.app.feeds.merge import Vulnerability

CRITICALITY_POINTS: Mapping[str, int] = {"low": 0, "medium": 5, "high": 10, "critical": 20}


@dataclass(frozen=True, slots=True)
class Policy:
    """Remediation SLAs in days per severity class; ``kev_due_date`` honours KEV due dates."""

    sla_days: Mapping[str, int] = field(
        default_factory=lambda: {"critical": 15, "high": 30, "medium": 90, "low": 180, "none": 365}
    )
    kev_due_date: bool = True


@dataclass(frozen=True, slots=True)
class Priority:
    """A score, the contributions that make it up, the severity class and the deadline."""

    score: float
    reasons: tuple[tuple[float, str], ...]
    severity: str
    deadline: date | None
    deadline_reason: str


def severity_class(score: float | None) -> str:
    """The CVSS v3 qualitative class of a base score (``none`` when unscored)."""
    if score is None or score == 0:
        return "none"
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


def best_cvss(vuln: Vulnerability) -> tuple[float, str] | None:
    """The highest base score and where it came from, preferring newer CVSS versions on ties."""
    scored = [(s.base_score, s.version, s) for s in vuln.cvss if s.base_score is not None]
    if not scored:
        return None
    score, version, best = max(scored, key=lambda t: (t[0], t[1]))
    return score, f"CVSS {version} {score} ({best.source or 'unknown source'}: {best.vector})"


def prioritize(
    vuln: Vulnerability,
    *,
    criticality: str = "medium",
    today: date,
    policy: Policy | None = None,
) -> Priority:
    """Score one vulnerability on an asset of the given criticality, as of ``today``.

    Raises:
        ValueError: an unknown criticality.
    """
    policy = policy or Policy()
    if criticality not in CRITICALITY_POINTS:
        raise ValueError(
            f"criticality {criticality!r} is not one of {', '.join(CRITICALITY_POINTS)}"
        )
    reasons: list[tuple[float, str]] = []
    cvss = best_cvss(vuln)
    if cvss is None:
        reasons.append((0.0, "no CVSS score in the loaded data"))
    else:
        reasons.append((round(4 * cvss[0], 1), cvss[1]))
    kev = vuln.kev
    if kev is not None:
        reasons.append((30.0, f"listed in CISA KEV (exploited) since {kev.date_added}"))
        if kev.due_date < today:
            reasons.append((10.0, f"KEV due date {kev.due_date} has passed"))
        if kev.known_ransomware:
            reasons.append((15.0, "known use in ransomware campaigns"))
    points = CRITICALITY_POINTS[criticality]
    reasons.append((float(points), f"asset criticality {criticality}"))
    severity = severity_class(cvss[0] if cvss else None)
    deadline, why = _deadline(vuln, severity, policy)
    return Priority(round(sum(p for p, _ in reasons), 1), tuple(reasons), severity, deadline, why)


def _deadline(vuln: Vulnerability, severity: str, policy: Policy) -> tuple[date | None, str]:
    candidates: list[tuple[date, str]] = []
    if policy.kev_due_date and vuln.kev is not None:
        candidates.append((vuln.kev.due_date, "CISA KEV due date"))
    published = vuln.published
    days = policy.sla_days.get(severity)
    if published is not None and days is not None:
        candidates.append(
            (
                published.date() + timedelta(days=days),
                f"{severity} SLA of {days} days from publication {published.date()}",
            )
        )
    if not candidates:
        return None, "no publication date or KEV due date in the loaded data"
    return min(candidates)
