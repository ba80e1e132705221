"""CSAF 2.0 advisories (``csaf_security_advisory`` and ``csaf_vex``).

The product tree is resolved to packages: a product's purl (``product_identification_helper``)
gives the package and its fixed version; a ``default_component_of`` relationship gives the
platform it ships on, whose CPE names the distribution release (:func:`redhat_release`:
``enterprise_linux:8`` -> ``rhel-8``, ``rhel_els:6`` -> ``rhel-6``, ``rhel_eus:9.2`` ->
``rhel-9.2-eus``). Product status ``fixed``/``first_fixed`` and ``vendor_fix`` remediations
become fixed versions; ``known_affected`` without a fix becomes ``unfixed``;
``known_not_affected`` becomes ``not_affected``. A product with no purl is not guessed from its
name (or its CPE): it is left out, and a vulnerability none of whose products carries a purl is
reported as "no data" with the products named (:class:`~patchledger.app.feeds.model.DataGap`).
One advisory is produced per CSAF vulnerability (each has its own CVE and scores).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from packageurl import PackageURL

from patchledger.app.feeds.connectors._fields import (
    RecordError,
    arr,
    checked,
    obj,
    opt_number,
    opt_str,
    parse_datetime,
    req_str,
)
from patchledger.app.feeds.ecosystems import distro_release
from patchledger.app.feeds.model import (
    Advisory,
    AffectedPackage,
    CvssScore,
    DataGap,
    PackageStatus,
    ParseError,
    ParseResult,
    RangeEvent,
    Reference,
    SourceRecord,
    record_digest,
)

SOURCE = "csaf"
#: a Red Hat CPE in either binding: ``cpe:/o:redhat:rhel_els:6``, ``cpe:2.3:o:redhat:...``
_REDHAT_CPE = re.compile(r"^cpe:(?:/|2\.3:)[aoh]:redhat:([a-z0-9_]+):(\d+(?:\.\d+)*)(?::|$)")
#: Red Hat Enterprise Linux products whose packages are those of the major release
_RHEL_MAJOR = ("enterprise_linux", "rhel_els")
#: update streams of one minor release, with their own fixes (``rhel-9.2-eus``)
_RHEL_MINOR_STREAMS = ("rhel_eus", "rhel_aus", "rhel_e4s", "rhel_tus")
_FIXED_STATUSES = ("fixed", "first_fixed")


def looks_like(doc: Any) -> bool:
    """True for a CSAF 2.0 document."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("document"), dict)
        and "csaf_version" in doc["document"]
    )


@dataclass(frozen=True, slots=True)
class _Product:
    purl: PackageURL | None
    platform: str | None
    cpe: str | None = None


def redhat_release(cpe: str) -> str | None:
    """The distribution release a Red Hat platform CPE names, or ``None`` if it names none.

    ``cpe:/o:redhat:enterprise_linux:8::baseos`` and ``cpe:/o:redhat:rhel_els:6`` name the
    major releases ``rhel-8`` and ``rhel-6`` (extended life cycle support continues the
    release's packages); ``cpe:/a:redhat:rhel_eus:9.2::appstream`` names the extended update
    stream ``rhel-9.2-eus`` (likewise ``aus``, ``e4s``, ``tus``). Other Red Hat products
    (OpenShift, Satellite, ...) and other vendors are not distribution releases: ``None``.
    """
    match = _REDHAT_CPE.match(cpe.strip().lower())
    if match is None:
        return None
    product, version = match.groups()
    if product in _RHEL_MAJOR:
        return f"rhel-{version.split('.')[0]}"
    if product in _RHEL_MINOR_STREAMS and "." in version:
        major, minor = version.split(".")[:2]
        return f"rhel-{major}.{minor}-{product.removeprefix('rhel_')}"
    return None


def parse(doc: Any, origin: str) -> ParseResult:
    """Parse one CSAF document; a bad vulnerability entry becomes an error, the rest is kept.

    Raises:
        RecordError: when the document header or product tree is unusable.
    """
    document = obj(obj(doc, "document").get("document"), "document")
    version = req_str(document, "csaf_version")
    if version != "2.0":
        raise RecordError(f"csaf_version {version!r} is not 2.0")
    tracking = obj(document.get("tracking"), "document.tracking")
    tracking_id = req_str(tracking, "id")
    products = _products(obj(doc.get("product_tree") or {}, "product_tree"))
    result = ParseResult(SOURCE, origin, records=1)
    for index, raw in enumerate(arr(doc.get("vulnerabilities"), "vulnerabilities")):
        label = f"{tracking_id} vulnerability #{index}"
        try:
            advisory = checked(_advisory(raw, tracking_id, tracking, products, origin))
        except RecordError as exc:
            result.errors.append(ParseError(origin, label, str(exc)))
            continue
        result.advisories.append(advisory)
        result.no_data.extend(
            DataGap(origin, f"{label} ({advisory.aliases[0]})", n) for n in advisory.notes
        )
    return result


def _advisory(
    raw: Any,
    tracking_id: str,
    tracking: dict[str, Any],
    products: dict[str, _Product],
    origin: str,
) -> Advisory:
    vuln = obj(raw, "vulnerability")
    cve = opt_str(vuln, "cve")
    ids = [str(obj(i, "id").get("text")) for i in arr(vuln.get("ids"), "ids")]
    aliases = tuple(dict.fromkeys(a for a in [cve, *ids] if a and a != tracking_id))
    if not aliases:
        raise RecordError("vulnerability has neither cve nor ids")
    affected, unnamed = _affected(vuln, products)
    notes: tuple[str, ...] = ()
    if unnamed and not affected:
        notes = (_unnamed_note(unnamed, products),)
    return Advisory(
        id=tracking_id,
        source=SourceRecord(SOURCE, origin, f"{tracking_id} {aliases[0]}", record_digest(vuln)),
        aliases=aliases,
        summary=opt_str(vuln, "title") or "",
        published=parse_datetime(opt_str(vuln, "release_date"), "release_date")
        or parse_datetime(opt_str(tracking, "initial_release_date"), "initial_release_date"),
        modified=parse_datetime(opt_str(tracking, "current_release_date"), "current_release_date"),
        cvss=tuple(_scores(vuln)),
        affected=affected,
        references=tuple(
            Reference(req_str(obj(r, "reference"), "url"), opt_str(r, "category") or "")
            for r in arr(vuln.get("references"), "references")
        ),
        cwes=tuple([req_str(obj(vuln["cwe"], "cwe"), "id")] if vuln.get("cwe") else []),
        notes=notes,
    )


def _unnamed_note(unnamed: list[str], products: dict[str, _Product]) -> str:
    """Why a vulnerability cannot match anything: its products name no package (no purl)."""
    cpe_only = sum(1 for pid in unnamed if products[pid].cpe)
    shown = ", ".join(repr(p) for p in unnamed[:5]) + (" ..." if len(unnamed) > 5 else "")
    if cpe_only == 0:
        kind = "carry neither a purl nor a CPE"
    elif cpe_only == len(unnamed):
        kind = "carry only a CPE (names a product, not a package)"
    else:
        kind = f"carry no purl ({cpe_only} only a CPE)"
    return f"its {len(unnamed)} products {kind}, so no inventory can be judged: {shown}"


def _products(tree: dict[str, Any]) -> dict[str, _Product]:
    """Map every product id to its purl and (for relationships) its platform's CPE."""
    helpers: dict[str, dict[str, Any]] = {}

    def walk(branches: list[Any]) -> None:
        for branch in branches:
            branch = obj(branch, "branch")
            if "product" in branch:
                product = obj(branch["product"], "product")
                helpers[req_str(product, "product_id")] = obj(
                    product.get("product_identification_helper") or {}, "helper"
                )
            walk(arr(branch.get("branches"), "branches"))

    walk(arr(tree.get("branches"), "branches"))
    for full in arr(tree.get("full_product_names"), "full_product_names"):
        full = obj(full, "full_product_name")
        helpers[req_str(full, "product_id")] = obj(
            full.get("product_identification_helper") or {}, "helper"
        )
    products = {pid: _Product(_purl(h), None, _cpe(h)) for pid, h in helpers.items()}
    for rel in arr(tree.get("relationships"), "relationships"):
        rel = obj(rel, "relationship")
        full = obj(rel.get("full_product_name"), "relationship.full_product_name")
        component = helpers.get(req_str(rel, "product_reference"), {})
        platform = helpers.get(req_str(rel, "relates_to_product_reference"), {})
        products[req_str(full, "product_id")] = _Product(
            _purl(component), _cpe(platform), _cpe(component)
        )
    return products


def _cpe(helper: dict[str, Any]) -> str | None:
    cpe = helper.get("cpe")
    return cpe if isinstance(cpe, str) else None


def _purl(helper: dict[str, Any]) -> PackageURL | None:
    text = helper.get("purl")
    if not isinstance(text, str):
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError as exc:
        raise RecordError(f"product purl {text!r}: {exc}") from exc


def _affected(
    vuln: dict[str, Any], products: dict[str, _Product]
) -> tuple[tuple[AffectedPackage, ...], list[str]]:
    """The affected packages, and the ids of the products that name no package (no purl)."""
    status = obj(vuln.get("product_status") or {}, "product_status")
    by_product: dict[str, PackageStatus] = {}
    for pid in arr(status.get("known_affected"), "known_affected"):
        by_product[str(pid)] = "unfixed"
    for pid in arr(status.get("known_not_affected"), "known_not_affected"):
        by_product[str(pid)] = "not_affected"
    for name in _FIXED_STATUSES:
        for pid in arr(status.get(name), name):
            by_product[str(pid)] = "affected"
    for remediation in arr(vuln.get("remediations"), "remediations"):
        remediation = obj(remediation, "remediation")
        if remediation.get("category") == "vendor_fix":
            for pid in arr(remediation.get("product_ids"), "product_ids"):
                by_product[str(pid)] = "affected"
    grouped: dict[tuple[str, str | None, str, str | None, str, PackageStatus], set[str]] = {}
    unnamed: list[str] = []
    for pid, pstatus in by_product.items():
        product = products.get(pid)
        if product is None:
            raise RecordError(f"product_status names unknown product {pid!r}")
        if product.purl is None:
            unnamed.append(pid)
            continue
        purl = product.purl
        quals = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
        module = ":".join(str(quals.get("rpmmod", "")).split(":")[:2])
        key = (
            purl.type,
            purl.namespace,
            purl.name,
            _distro(purl, product.platform),
            module,
            pstatus,
        )
        versions = grouped.setdefault(key, set())
        if pstatus == "affected" and purl.version:
            epoch = quals.get("epoch")
            versions.add(f"{epoch}:{purl.version}" if epoch and epoch != "0" else purl.version)
    packages = []
    for (ptype, namespace, name, distro, module, pstatus), fixed in sorted(
        grouped.items(), key=str
    ):
        ranges = tuple(
            (RangeEvent("introduced", "0"), RangeEvent("fixed", v)) for v in sorted(fixed)
        )
        packages.append(
            AffectedPackage(
                type=ptype,
                namespace=namespace,
                name=name,
                distro=distro,
                ranges=ranges,
                fixed=tuple(sorted(fixed)),
                status="unfixed" if pstatus == "affected" and not fixed else pstatus,
                qualifiers=(("rpmmod", module),) if module else (),
            )
        )
    return tuple(packages), unnamed


def _distro(purl: PackageURL, platform: str | None) -> str | None:
    quals = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    if "distro" in quals:
        return distro_release(purl.type, purl.namespace, str(quals["distro"]))
    if platform is None:
        return None
    release = redhat_release(platform)
    # a platform that is no distribution release keeps its CPE, so it matches no inventory
    # release and no "covers" message ever names it as one
    return release if release is not None else f"platform {platform}"


def _scores(vuln: dict[str, Any]) -> list[CvssScore]:
    scores = []
    for entry in arr(vuln.get("scores"), "scores"):
        entry = obj(entry, "score")
        for key in ("cvss_v3", "cvss_v2"):
            if key in entry:
                data = obj(entry[key], key)
                scores.append(
                    CvssScore(
                        version=req_str(data, "version"),
                        vector=req_str(data, "vectorString"),
                        base_score=opt_number(data, "baseScore"),
                        severity=opt_str(data, "baseSeverity"),
                        source="csaf",
                    )
                )
    return scores
