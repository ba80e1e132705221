"""OSV JSON (any ecosystem): one advisory per file, or a list / ``{"vulns": [...]}`` batch.

Handles the quirks of real OSV data: AlmaLinux puts CVE ids in ``related`` rather than
``aliases`` and omits ``schema_version``. ``GIT`` ranges carry commits, not versions, and are
kept out of version matching; an ecosystem this project cannot map is kept under its raw name
so that matching can say "no data" for it.

Module streams: AlmaLinux (and Rocky) records of a modular update say the stream only in the
summary (``Moderate: postgresql:15 security update``) and in the fixes' release tags
(``15.6-1.module_el9.3.0+...``). An rpm entry whose versions carry a module tag gets the
summary's ``name:stream`` as its ``rpmmod`` qualifier; when the summary names none, the entry
stays modular without a stream and matching answers "no data" for it (see
:mod:`patchledger.app.feeds.matching`).
"""

from __future__ import annotations

import re
from typing import Any

from patchledger.app.feeds.connectors._fields import (
    RecordError,
    arr,
    collect,
    label_of,
    obj,
    opt_str,
    parse_datetime,
    req_str,
)
from patchledger.app.feeds.cvss import base_score
from patchledger.app.feeds.ecosystems import osv_package
from patchledger.app.feeds.model import (
    Advisory,
    AffectedPackage,
    CvssScore,
    EventKind,
    ParseResult,
    RangeEvent,
    Reference,
    SourceRecord,
    record_digest,
)

SOURCE = "osv"
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")
_MODULE_TAG = re.compile(r"\.module[+_]el\d")
#: ``Moderate: postgresql:15 security update`` -> ``postgresql:15``
_SUMMARY_STREAM = re.compile(r"^(?:[A-Za-z]+:\s+)?([A-Za-z0-9][\w.+-]*):([\w.+-]+)\s")


def looks_like(doc: Any) -> bool:
    """True for one OSV record, a list of them, or an OSV ``{"vulns": [...]}`` response."""
    if isinstance(doc, list):
        return bool(doc) and all(_is_record(d) for d in doc)
    if isinstance(doc, dict) and isinstance(doc.get("vulns"), list):
        return True
    return _is_record(doc)


def _is_record(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("id"), str)
        and "modified" in doc
        and ("affected" in doc or "aliases" in doc or "related" in doc or "withdrawn" in doc)
    )


def parse(doc: Any, origin: str) -> ParseResult:
    """Parse OSV records; withdrawn records are skipped, bad records become errors.

    Raises:
        RecordError: when the document is none of the accepted OSV shapes.
    """
    if isinstance(doc, dict) and "vulns" in doc:
        records = arr(doc["vulns"], "vulns")
    elif isinstance(doc, list):
        records = doc
    else:
        records = [obj(doc, "document")]
    result = ParseResult(SOURCE, origin)
    items = ((label_of(raw, i, "id"), raw) for i, raw in enumerate(records))
    return collect(result, items, lambda raw: _advisories(raw, origin, result))


def _advisories(raw: Any, origin: str, result: ParseResult) -> list[Advisory]:
    record = obj(raw, "record")
    osv_id = req_str(record, "id")
    req_str(record, "modified")
    if record.get("withdrawn"):
        result.withdrawn.append(osv_id)
        return []
    aliases = [str(a) for a in arr(record.get("aliases"), "aliases")]
    aliases += [str(r) for r in arr(record.get("related"), "related") if _CVE.match(str(r))]
    scores = [_severity(obj(s, "severity")) for s in arr(record.get("severity"), "severity")]
    summary = opt_str(record, "summary") or ""
    stream = _SUMMARY_STREAM.match(summary)
    module = f"{stream.group(1)}:{stream.group(2)}" if stream else None
    return [
        Advisory(
            id=osv_id,
            source=SourceRecord(SOURCE, origin, osv_id, record_digest(record)),
            aliases=tuple(dict.fromkeys(a for a in aliases if a != osv_id)),
            summary=summary,
            published=parse_datetime(opt_str(record, "published"), "published"),
            modified=parse_datetime(opt_str(record, "modified"), "modified"),
            cvss=tuple(s for s in scores if s is not None),
            affected=tuple(
                _affected(obj(a, "affected"), module)
                for a in arr(record.get("affected"), "affected")
            ),
            references=tuple(
                Reference(req_str(obj(r, "reference"), "url"), opt_str(r, "type") or "")
                for r in arr(record.get("references"), "references")
            ),
        )
    ]


def _affected(entry: dict[str, Any], module: str | None) -> AffectedPackage:
    package = obj(entry.get("package"), "affected.package")
    ecosystem = req_str(package, "ecosystem")
    name = req_str(package, "name")
    mapped = osv_package(ecosystem, name)
    ranges: list[tuple[RangeEvent, ...]] = []
    for rng in arr(entry.get("ranges"), "ranges"):
        rng = obj(rng, "range")
        if req_str(rng, "type") == "GIT":
            continue
        ranges.append(tuple(_event(obj(e, "event")) for e in arr(rng.get("events"), "events")))
    versions = tuple(str(v) for v in arr(entry.get("versions"), "versions"))
    fixed = tuple(e.version for r in ranges for e in r if e.kind == "fixed")
    if mapped is None:
        return AffectedPackage(
            type=f"osv:{ecosystem}",
            name=name,
            ranges=tuple(ranges),
            versions=versions,
            fixed=fixed,
            note=f"OSV ecosystem {ecosystem!r} has no version scheme here",
        )
    ptype, namespace, pname, distro = mapped
    bounds = [e.version for r in ranges for e in r]
    modular = ptype == "rpm" and any(_MODULE_TAG.search(v) for v in [*bounds, *versions])
    return AffectedPackage(
        type=ptype,
        namespace=namespace,
        name=pname,
        distro=distro,
        ranges=tuple(ranges),
        versions=versions,
        fixed=fixed,
        status="affected" if fixed else "unfixed",
        qualifiers=(("rpmmod", module),) if modular and module else (),
    )


def _event(event: dict[str, Any]) -> RangeEvent:
    for kind in _EVENT_KINDS:
        if kind in event:
            return RangeEvent(kind, str(event[kind]))
    raise RecordError(f"range event {event!r} has none of {', '.join(_EVENT_KINDS)}")


def _severity(entry: dict[str, Any]) -> CvssScore | None:
    kind = req_str(entry, "type")
    vector = req_str(entry, "score")
    if not kind.startswith("CVSS_"):
        return None
    version = vector.split("/")[0].removeprefix("CVSS:") if vector.startswith("CVSS:") else "2.0"
    return CvssScore(version=version, vector=vector, base_score=base_score(vector), source="osv")
