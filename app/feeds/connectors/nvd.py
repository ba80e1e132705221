"""NVD: CVE API 2.0 response pages and the legacy JSON 1.1 data feeds.

Both become the same advisories: CVSS v2/v3.x/v4 metrics, CPE configurations with version
bounds (kept as NVD wrote them; no CPE is ever guessed from names), references, CWEs.

Records NVD rejected (API 2.0 ``vulnStatus: Rejected``; in the 1.1 feeds a description that
starts with ``** REJECT **``) are not imported: their ids are listed in
:attr:`~patchledger.app.feeds.model.ParseResult.withdrawn`.
"""

from __future__ import annotations

from typing import Any, Literal

from patchledger.app.feeds.connectors._fields import (
    RecordError,
    arr,
    collect,
    label_of,
    obj,
    opt_number,
    opt_str,
    parse_datetime,
    req_str,
)
from patchledger.app.feeds.cpe import parse_cpe
from patchledger.app.feeds.model import (
    Advisory,
    CpeMatch,
    CpeNode,
    CvssScore,
    ParseResult,
    Reference,
    SourceRecord,
    record_digest,
)

SOURCE = "nvd"

_V2_METRIC_KEYS = ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2")


def looks_like_api2(doc: Any) -> bool:
    """True for an NVD CVE API 2.0 response page."""
    return isinstance(doc, dict) and doc.get("format") == "NVD_CVE" and "vulnerabilities" in doc


def looks_like_legacy(doc: Any) -> bool:
    """True for a legacy NVD JSON 1.1 feed."""
    return isinstance(doc, dict) and "CVE_Items" in doc


def parse_api2(doc: Any, origin: str) -> ParseResult:
    """Parse one NVD API 2.0 page (``vulnerabilities[].cve``); bad records become errors.

    Raises:
        RecordError: when the document is not an API 2.0 page.
    """
    page = obj(doc, "document")
    if str(page.get("version")) != "2.0":
        raise RecordError(f"NVD API version {page.get('version')!r} is not 2.0")
    entries = arr(page.get("vulnerabilities"), "vulnerabilities")
    result = ParseResult(SOURCE, origin)
    items = ((label_of(raw, i, "cve", "id"), raw) for i, raw in enumerate(entries))
    return collect(result, items, lambda raw: _unless_rejected(_api2_advisory(raw, origin), result))


def parse_legacy(doc: Any, origin: str) -> ParseResult:
    """Parse a legacy NVD 1.1 feed (``CVE_Items[]``); bad records become errors.

    Raises:
        RecordError: when the document is not a 1.1 feed.
    """
    feed = obj(doc, "document")
    entries = arr(feed.get("CVE_Items"), "CVE_Items")
    result = ParseResult(SOURCE, origin)
    items = ((label_of(raw, i, "cve", "CVE_data_meta", "ID"), raw) for i, raw in enumerate(entries))
    return collect(
        result, items, lambda raw: _unless_rejected(_legacy_advisory(raw, origin), result)
    )


def _unless_rejected(parsed: tuple[Advisory, bool], result: ParseResult) -> list[Advisory]:
    advisory, rejected = parsed
    if rejected:
        result.withdrawn.append(advisory.id)
        return []
    return [advisory]


# --- API 2.0 -------------------------------------------------------------------------------


def _api2_advisory(raw: Any, origin: str) -> tuple[Advisory, bool]:
    """The record's advisory, and whether NVD rejected it."""
    cve = obj(obj(raw, "entry").get("cve"), "cve")
    cve_id = _cve_id(req_str(cve, "id"))
    rejected = opt_str(cve, "vulnStatus") == "Rejected"
    metrics = obj(cve.get("metrics") or {}, "metrics")
    scores: list[CvssScore] = []
    for key in _V2_METRIC_KEYS:
        for metric in arr(metrics.get(key), key):
            scores.append(_api2_score(obj(metric, key)))
    configs = tuple(
        _api2_config(obj(c, "configuration"))
        for c in arr(cve.get("configurations"), "configurations")
    )
    return Advisory(
        id=cve_id,
        source=SourceRecord(SOURCE, origin, cve_id, record_digest(raw)),
        summary=_english(arr(cve.get("descriptions"), "descriptions")),
        published=parse_datetime(opt_str(cve, "published"), "published"),
        modified=parse_datetime(opt_str(cve, "lastModified"), "lastModified"),
        cvss=tuple(scores),
        cpe_configurations=configs,
        references=tuple(_reference(r) for r in arr(cve.get("references"), "references")),
        cwes=_api2_cwes(cve),
    ), rejected


def _api2_score(metric: dict[str, Any]) -> CvssScore:
    data = obj(metric.get("cvssData"), "cvssData")
    score = opt_number(data, "baseScore")
    if score is None:
        raise RecordError("cvssData.baseScore missing")
    return CvssScore(
        version=req_str(data, "version"),
        vector=req_str(data, "vectorString"),
        base_score=score,
        severity=opt_str(data, "baseSeverity") or opt_str(metric, "baseSeverity"),
        source=opt_str(metric, "source"),
    )


def _api2_config(config: dict[str, Any]) -> CpeNode:
    nodes = tuple(
        _node(obj(n, "node"), "cpeMatch", "criteria") for n in arr(config.get("nodes"), "nodes")
    )
    return CpeNode(
        operator=_operator(config.get("operator", "OR")),
        negate=bool(config.get("negate", False)),
        children=nodes,
    )


def _api2_cwes(cve: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for weakness in arr(cve.get("weaknesses"), "weaknesses"):
        for desc in arr(obj(weakness, "weakness").get("description"), "description"):
            value = opt_str(obj(desc, "description"), "value")
            if value and value.startswith("CWE-") and value not in found:
                found.append(value)
    return tuple(found)


# --- legacy 1.1 -----------------------------------------------------------------------------


def _legacy_advisory(raw: Any, origin: str) -> tuple[Advisory, bool]:
    """The record's advisory, and whether NVD rejected it."""
    item = obj(raw, "entry")
    cve = obj(item.get("cve"), "cve")
    cve_id = _cve_id(req_str(obj(cve.get("CVE_data_meta"), "CVE_data_meta"), "ID"))
    impact = obj(item.get("impact") or {}, "impact")
    scores: list[CvssScore] = []
    if "baseMetricV3" in impact:
        v3 = obj(obj(impact["baseMetricV3"], "baseMetricV3").get("cvssV3"), "cvssV3")
        scores.append(_legacy_score(v3, opt_str(v3, "baseSeverity")))
    if "baseMetricV2" in impact:
        base = obj(impact["baseMetricV2"], "baseMetricV2")
        scores.append(_legacy_score(obj(base.get("cvssV2"), "cvssV2"), opt_str(base, "severity")))
    nodes = arr(obj(item.get("configurations") or {}, "configurations").get("nodes"), "nodes")
    descriptions = obj(cve.get("description") or {}, "description").get("description_data")
    refs = obj(cve.get("references") or {}, "references").get("reference_data")
    summary = _english(arr(descriptions, "description_data"))
    advisory = Advisory(
        id=cve_id,
        source=SourceRecord(SOURCE, origin, cve_id, record_digest(raw)),
        summary=summary,
        published=parse_datetime(opt_str(item, "publishedDate"), "publishedDate"),
        modified=parse_datetime(opt_str(item, "lastModifiedDate"), "lastModifiedDate"),
        cvss=tuple(scores),
        cpe_configurations=tuple(_node(obj(n, "node"), "cpe_match", "cpe23Uri") for n in nodes),
        references=tuple(_reference(r) for r in arr(refs, "reference_data")),
        cwes=_legacy_cwes(cve),
    )
    return advisory, summary.startswith("** REJECT **")


def _reference(raw: Any) -> Reference:
    """A reference of either NVD format: its URL and its tags (an array of strings).

    Raises:
        RecordError: not an object, no URL, or tags that are not an array of strings.
    """
    reference = obj(raw, "reference")
    tags = arr(reference.get("tags"), "reference tags")
    if not all(isinstance(tag, str) for tag in tags):
        raise RecordError(f"reference tags {tags!r} are not all strings")
    return Reference(req_str(reference, "url"), ",".join(tags))


def _legacy_score(data: dict[str, Any], severity: str | None) -> CvssScore:
    score = opt_number(data, "baseScore")
    if score is None:
        raise RecordError("CVSS baseScore missing")
    return CvssScore(
        version=req_str(data, "version"),
        vector=req_str(data, "vectorString"),
        base_score=score,
        severity=severity,
        source="nvd@nist.gov",
    )


def _legacy_cwes(cve: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    problem = obj(cve.get("problemtype") or {}, "problemtype")
    for entry in arr(problem.get("problemtype_data"), "problemtype_data"):
        for desc in arr(obj(entry, "problemtype").get("description"), "description"):
            value = opt_str(obj(desc, "description"), "value")
            if value and value.startswith("CWE-") and value not in found:
                found.append(value)
    return tuple(found)


# --- shared ---------------------------------------------------------------------------------


def _node(node: dict[str, Any], match_key: str, criteria_key: str) -> CpeNode:
    """A configuration node of either format (1.1 nests ``children``; 2.0 does not)."""
    matches = tuple(
        _cpe_match(obj(m, "cpe match"), criteria_key) for m in arr(node.get(match_key), match_key)
    )
    children = tuple(
        _node(obj(c, "child node"), match_key, criteria_key)
        for c in arr(node.get("children"), "children")
    )
    return CpeNode(
        operator=_operator(node.get("operator", "OR")),
        negate=bool(node.get("negate", False)),
        matches=matches,
        children=children,
    )


def _cpe_match(match: dict[str, Any], criteria_key: str) -> CpeMatch:
    criteria = req_str(match, criteria_key)
    try:
        parse_cpe(criteria)  # "cpe:2.3:" and 11 components, as the matcher needs
    except ValueError as exc:
        raise RecordError(f"CPE match criterion: {exc}") from exc
    vulnerable = match.get("vulnerable")
    if not isinstance(vulnerable, bool):
        raise RecordError(f"CPE match {criteria}: 'vulnerable' is not a boolean")
    return CpeMatch(
        criteria=criteria,
        vulnerable=vulnerable,
        version_start_including=opt_str(match, "versionStartIncluding"),
        version_start_excluding=opt_str(match, "versionStartExcluding"),
        version_end_including=opt_str(match, "versionEndIncluding"),
        version_end_excluding=opt_str(match, "versionEndExcluding"),
    )


def _operator(value: Any) -> Literal["AND", "OR"]:
    if value == "AND":
        return "AND"
    if value == "OR":
        return "OR"
    raise RecordError(f"configuration operator {value!r} is not AND/OR")


def _cve_id(value: str) -> str:
    if not value.startswith("CVE-"):
        raise RecordError(f"id {value!r} is not a CVE id")
    return value


def _english(descriptions: list[Any]) -> str:
    for desc in descriptions:
        if (
            isinstance(desc, dict)
            and desc.get("lang") == "en"
            and isinstance(desc.get("value"), str)
        ):
            return str(desc["value"]).strip()
    return ""
