"""The report's facts "as of" a moment, from the ledger's history in the read model
(``record_versions``: every write of every record with its transaction time): each record is
taken in its last version written before the moment, so a report of a past date shows what
the ledger said then, whatever happened after.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from patchledger.app.errors import UserError
from patchledger.app.readmodel.tables import blocks, record_versions
from patchledger.app.reports.compliance import (
    CLOSED_STATES,
    ExceptionFacts,
    Facts,
    HostExposure,
    VulnFacts,
)

#: Record types read whole; hosts are read only for the hosts a deployment names.
_TYPES = ("Vulnerability", "Patch", "Deployment", "RiskAcceptance", "Policy")


def parse_as_of(text: str) -> datetime:
    """The end of UTC day ``YYYY-MM-DD`` (the report covers that whole day).

    Raises:
        UserError: not a date, naming the value.
    """
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"as-of date {text!r} must be YYYY-MM-DD") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1,
                                                                           microseconds=-1)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def history_as_of(conn: Connection, as_of: datetime, types: Sequence[str] = _TYPES,
                  ids: Sequence[str] | None = None, *, last_documents_only: bool = False
                  ) -> dict[tuple[str, str], list[tuple[datetime, str, dict[str, Any] | None]]]:
    """Per (record type, record id) of ``types`` (and of ``ids`` when given): its versions
    (time, state, document) written up to ``as_of``, oldest first.

    ``last_documents_only``: only each record's last version carries its document (the
    others ``{}``, a deletion ``None`` as always); the report needs the earlier versions'
    times and states only, and decoding every version's JSON was most of its cost."""
    v = record_versions.c
    query = (select(v.record_type, v.record_id, v.tx_time, v.state, v.json, v.is_delete)
             .where(v.record_type.in_(types), v.tx_time <= _iso(as_of))
             .order_by(v.block_number, v.tx_index, v.write_index))
    if ids is not None:
        rows = [r for start in range(0, len(ids), 500)
                for r in conn.execute(query.where(v.record_id.in_(ids[start:start + 500])))]
    else:
        rows = list(conn.execute(query))
    out: dict[tuple[str, str], list[tuple[datetime, str, dict[str, Any] | None]]] = \
        defaultdict(list)
    if last_documents_only:
        last: dict[tuple[str, str], str | None] = {}
        for record_type, record_id, tx_time, state, text, is_delete in rows:
            key = (record_type, record_id)
            out[key].append((_time(tx_time), state, None if is_delete or text is None else {}))
            last[key] = None if is_delete else text
        for key, text in last.items():
            if text is not None:
                moment, state, _ = out[key][-1]
                out[key][-1] = (moment, state, json.loads(text))
        return out
    for record_type, record_id, tx_time, state, text, is_delete in rows:
        doc = None if is_delete or text is None else json.loads(text)
        out[(record_type, record_id)].append((_time(tx_time), state, doc))
    return out


def block_height(conn: Connection, as_of: datetime) -> int:
    """Blocks of the read model whose transactions were all made up to ``as_of``."""
    value = conn.execute(select(func.max(blocks.c.number))
                         .where(blocks.c.first_tx_time <= _iso(as_of))).scalar()
    return 0 if value is None else int(value) + 1


def load_facts(conn: Connection, as_of: datetime) -> Facts:
    """The :class:`Facts` of the ledger as of ``as_of``.

    Raises:
        UserError: no policy on the ledger as of that moment.
    """
    history = history_as_of(conn, as_of, last_documents_only=True)
    latest: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (record_type, record_id), versions in history.items():
        doc = versions[-1][2]
        if doc is not None:
            latest[record_type][record_id] = doc
    policies = sorted(latest["Policy"].values(), key=lambda p: int(p.get("version", 0)))
    if not policies:
        raise UserError(f"no policy on the ledger as of {as_of.isoformat()}: nothing to "
                        "report against")
    policy = policies[-1]
    vulns = []
    for vid, doc in latest["Vulnerability"].items():
        versions = history[("Vulnerability", vid)]
        closed_at = None
        if versions[-1][1] in CLOSED_STATES:
            closed_at = versions[-1][0]
            for moment, state, _ in reversed(versions):
                if state not in CLOSED_STATES:
                    break
                closed_at = moment
        due = doc.get("kev_due_date") or ""
        vulns.append(VulnFacts(vid, str(doc.get("severity", "none")),
                               bool(doc.get("known_exploited")),
                               date.fromisoformat(due) if due else None, versions[0][0],
                               closed_at))
    fixes: dict[str, set[str]] = defaultdict(set)  # patch -> vulnerabilities
    for pid, doc in latest["Patch"].items():
        fixes[pid] = set(doc.get("fixes") or ())
    verified: dict[tuple[str, str], datetime | None] = {}  # (vuln, host) -> first VERIFIED
    for (record_type, _), versions in history.items():
        if record_type != "Deployment" or versions[-1][2] is None:
            continue
        doc = versions[-1][2]
        first = next((m for m, s, _ in versions if s == "VERIFIED"), None)
        for vid in fixes.get(str(doc.get("patch_id")), ()):
            key = (vid, str(doc.get("host_id")))
            earlier = verified.get(key)
            verified[key] = first if earlier is None else (
                min(earlier, first) if first else earlier)
    host_ids = sorted({h for _, h in verified})
    for (_, host_id), versions in history_as_of(conn, as_of, ("Host",), host_ids,
                                                last_documents_only=True).items():
        if versions[-1][2] is not None:
            latest["Host"][host_id] = versions[-1][2]
    exposures = []
    for (vid, host_id), moment in sorted(verified.items()):
        host = latest["Host"].get(host_id, {})
        exposures.append(HostExposure(vid, host_id, str(host.get("owner_msp", "")),
                                      tuple(host.get("groups") or ()), moment))
    exceptions = [ExceptionFacts(str(d.get("vuln_id")), str(d.get("exception_id")),
                                 str(d.get("status")),
                                 datetime.fromtimestamp(int(d.get("expires_at", 0)), UTC),
                                 tuple(d.get("host_ids") or ()), tuple(d.get("approvals") or ()))
                  for d in latest["RiskAcceptance"].values()]
    return Facts(as_of, block_height(conn, as_of), str(policy.get("policy_id", "")),
                 int(policy.get("version", 0)), dict(policy.get("remediation_days") or {}),
                 tuple(vulns), tuple(exposures), tuple(exceptions))
