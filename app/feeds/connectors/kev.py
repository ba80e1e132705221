"""CISA Known Exploited Vulnerabilities catalog (JSON, ``vulnerabilities[]``)."""

from __future__ import annotations

from typing import Any

from patchledger.app.feeds.connectors._fields import (
    RecordError,
    arr,
    collect,
    label_of,
    obj,
    opt_str,
    parse_date,
    req_str,
)
from patchledger.app.feeds.model import (
    Advisory,
    KevInfo,
    ParseResult,
    Reference,
    SourceRecord,
    record_digest,
)

SOURCE = "kev"


def looks_like(doc: Any) -> bool:
    """True when ``doc`` has the shape of the KEV catalog."""
    return isinstance(doc, dict) and "catalogVersion" in doc and "vulnerabilities" in doc


def parse(doc: Any, origin: str) -> ParseResult:
    """Turn the KEV catalog into one advisory per CVE; bad entries become errors.

    Raises:
        RecordError: when the document itself is not a KEV catalog.
    """
    catalog = obj(doc, "document")
    entries = arr(catalog.get("vulnerabilities"), "vulnerabilities")
    result = ParseResult(SOURCE, origin)
    items = ((label_of(raw, i, "cveID"), raw) for i, raw in enumerate(entries))
    return collect(result, items, lambda raw: [_advisory(raw, origin)])


def _advisory(raw: Any, origin: str) -> Advisory:
    entry = obj(raw, "entry")
    cve = req_str(entry, "cveID")
    if not cve.startswith("CVE-"):
        raise RecordError(f"cveID {cve!r} is not a CVE id")
    ransomware = opt_str(entry, "knownRansomwareCampaignUse") or "Unknown"
    if ransomware not in ("Known", "Unknown"):
        raise RecordError(f"knownRansomwareCampaignUse {ransomware!r} is not Known/Unknown")
    kev = KevInfo(
        date_added=parse_date(opt_str(entry, "dateAdded"), "dateAdded"),
        due_date=parse_date(opt_str(entry, "dueDate"), "dueDate"),
        known_ransomware=ransomware == "Known",
        vendor=opt_str(entry, "vendorProject") or "",
        product=opt_str(entry, "product") or "",
        required_action=opt_str(entry, "requiredAction") or "",
    )
    notes = opt_str(entry, "notes") or ""
    references = tuple(
        Reference(part.strip(), "KEV note")
        for part in notes.split(";")
        if part.strip().startswith("https://")
    )
    return Advisory(
        id=cve,
        source=SourceRecord(SOURCE, origin, cve, record_digest(entry)),
        summary=opt_str(entry, "vulnerabilityName") or "",
        kev=kev,
        references=references,
        cwes=tuple(str(c) for c in arr(entry.get("cwes"), "cwes")),
    )
