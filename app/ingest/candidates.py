"""Patch candidates: proposals prepared from advisories' fixed versions, for an operator to
confirm (``PENDING`` -> ``CONFIRMED`` with the patch id proposed, or ``DISMISSED``).

One candidate per (package, fixed version) seen in the findings: the package update that
fixes every vulnerability listed (``vuln_ids``; ``vuln_id`` is the most severe), with the
affected hosts. Nothing here touches the ledger: confirming returns nothing to submit by
itself; the API uploads the artifact, builds the ``ProposePatch`` argument with
:func:`proposal_argument` and submits it as the operator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from patchledger.app.errors import UserError
from patchledger.app.feeds.matching import Finding
from patchledger.app.feeds.merge import Vulnerability as FeedVulnerability
from patchledger.app.ingest.ledger import ledger_severity
from patchledger.app.ingest.tables import patch_candidates
from patchledger.app.readmodel.decode import iso_time
from patchledger.app.readmodel.queries import (
    Page,
    QueryError,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from patchledger.chaincode.lifecycle.severity import rank

STATUSES = ("PENDING", "CONFIRMED", "DISMISSED")


class CandidateError(UserError):
    """A candidate is unknown or not in a state that allows the action."""


@dataclass(frozen=True)
class Candidate:
    """A prepared patch proposal."""

    candidate_id: str
    vuln_id: str
    vuln_ids: tuple[str, ...]
    package: str
    fixed_version: str
    advisory_ids: tuple[str, ...]
    host_ids: tuple[str, ...]
    severity: str
    status: str
    created_at: str
    updated_at: str
    decided_by: str
    patch_id: str


def candidate_id(package: str, fixed_version: str) -> str:
    """The stable id of a candidate (first 32 hex digits of a SHA-256)."""
    raw = f"{package}\x00{fixed_version}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def package_name(purl: str) -> str:
    """A finding's package URL without version and qualifiers (``pkg:deb/debian/xz-utils``)."""
    base = purl.split("?", 1)[0].split("#", 1)[0]
    return base.rsplit("@", 1)[0] if "@" in base else base


def refresh_candidates(
    conn: Connection, found: Sequence[Finding], vulns: dict[str, FeedVulnerability],
    now: dt.datetime, *, unscored: str = "medium",
) -> int:
    """Create or update a candidate per (package, fixed version) of the findings that have
    a fixed version; decided candidates keep their decision. Returns the number of candidates
    the findings name."""
    groups: dict[str, dict[str, Any]] = {}
    for f in found:
        if not f.fixed_version:
            continue
        package = package_name(f.package)
        cid = candidate_id(package, f.fixed_version)
        g = groups.setdefault(cid, {"vulns": set(), "package": package,
                                    "fixed_version": f.fixed_version, "advisories": set(),
                                    "hosts": set()})
        g["vulns"].add(f.vulnerability)
        g["advisories"].add(f.advisory)
        g["hosts"].add(f.host)
    stamp = iso_time(now)
    t = patch_candidates.c
    known = {cid for (cid,) in conn.execute(
        select(t.candidate_id).where(t.candidate_id.in_(list(groups))))} if groups else set()
    for cid, g in groups.items():
        severities = {v: ledger_severity(vulns[v], unscored) if v in vulns else unscored
                      for v in g["vulns"]}
        worst = max(sorted(severities), key=lambda v: rank(severities[v]))
        values = {
            "vuln_id": worst,
            "vuln_ids": json.dumps(sorted(g["vulns"])),
            "advisory_ids": json.dumps(sorted(g["advisories"])),
            "host_ids": json.dumps(sorted(g["hosts"])),
            "host_count": len(g["hosts"]),
            "severity": severities[worst],
            "updated_at": stamp,
        }
        if cid in known:
            conn.execute(update(patch_candidates).where(t.candidate_id == cid).values(values))
        else:
            conn.execute(insert(patch_candidates).values(
                candidate_id=cid, package=g["package"],
                fixed_version=g["fixed_version"], status="PENDING", created_at=stamp,
                decided_by="", patch_id="", **values))
    return len(groups)


def _candidate(row: Any) -> Candidate:
    return Candidate(
        candidate_id=row["candidate_id"], vuln_id=row["vuln_id"],
        vuln_ids=tuple(json.loads(row["vuln_ids"] or "[]")) or (row["vuln_id"],),
        package=row["package"],
        fixed_version=row["fixed_version"],
        advisory_ids=tuple(json.loads(row["advisory_ids"])),
        host_ids=tuple(json.loads(row["host_ids"])), severity=row["severity"],
        status=row["status"], created_at=row["created_at"], updated_at=row["updated_at"],
        decided_by=row["decided_by"], patch_id=row["patch_id"],
    )


def list_candidates(
    conn: Connection, *, status: str | None = "PENDING", vuln_id: str | None = None,
    limit: int = 50, cursor: str | None = None,
) -> Page[Candidate]:
    """One page of candidates by id (``status=None``: every status).

    Raises:
        QueryError: unknown status, bad limit or cursor.
    """
    if status is not None and status not in STATUSES:
        raise QueryError("status", f"one of {', '.join(STATUSES)}")
    limit = check_limit(limit)
    t = patch_candidates.c
    query = select(patch_candidates)
    if status is not None:
        query = query.where(t.status == status)
    if vuln_id is not None:
        query = query.where(t.vuln_id == vuln_id)
    if cursor is not None:
        (after,) = decode_cursor(cursor, [str])
        query = query.where(t.candidate_id > after)
    rows = conn.execute(query.order_by(t.candidate_id).limit(limit + 1)).mappings().all()
    nxt = encode_cursor([rows[limit - 1]["candidate_id"]]) if len(rows) > limit else None
    return Page([_candidate(r) for r in rows[:limit]], nxt)


def get_candidate(conn: Connection, cid: str) -> Candidate | None:
    """A candidate, or ``None``."""
    row = conn.execute(select(patch_candidates).where(
        patch_candidates.c.candidate_id == cid)).mappings().first()
    return None if row is None else _candidate(row)


def decide_candidate(
    conn: Connection, cid: str, decision: str, *, by: str, patch_id: str = "",
    now: dt.datetime | None = None,
) -> Candidate:
    """Confirm (``CONFIRMED``, with the id of the patch proposed for it) or dismiss
    (``DISMISSED``) a pending candidate.

    Raises:
        CandidateError: unknown candidate, already decided, a bad decision, or a
            confirmation without a patch id.
    """
    if decision not in ("CONFIRMED", "DISMISSED"):
        raise CandidateError(f"invalid decision {decision!r}: CONFIRMED or DISMISSED")
    if decision == "CONFIRMED" and not patch_id:
        raise CandidateError(f"candidate {cid}: a confirmation names the patch id proposed")
    t = patch_candidates.c
    done = conn.execute(
        update(patch_candidates).where(t.candidate_id == cid, t.status == "PENDING").values(
            status=decision, decided_by=by, patch_id=patch_id,
            updated_at=iso_time(now or dt.datetime.now(dt.UTC))))
    current = get_candidate(conn, cid)
    if current is None:
        raise CandidateError(f"patch candidate {cid} does not exist")
    if not done.rowcount:
        raise CandidateError(f"patch candidate {cid} is {current.status}: cannot move to "
                             f"{decision}")
    return current


def proposal_argument(
    candidate: Candidate, *, patch_id: str, artifact_sha256: str, artifact_size: int,
    artifact_uri: str, vendor: str, title: str = "",
) -> dict[str, Any]:
    """The ``ProposePatch`` argument for a confirmed candidate and its uploaded artifact."""
    return {
        "patch_id": patch_id,
        "title": title or f"{candidate.package} {candidate.fixed_version} "
                          f"(fixes {', '.join(candidate.vuln_ids)})"[:1024],
        "vendor": vendor,
        "artifact_sha256": artifact_sha256,
        "artifact_size": artifact_size,
        "artifact_uri": artifact_uri,
        "fixes": list(candidate.vuln_ids),
        "targets": [f"{candidate.package}@{candidate.fixed_version}"],
    }
