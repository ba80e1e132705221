"""Match vulnerabilities against inventories: findings, and "no data" where data is missing.

A finding says which host has which vulnerable package, at which installed version, the
version that fixes it, and why it matched (source advisory, range or CPE criterion). The
matcher never guesses: a package type without a version scheme, a distribution release no
loaded advisory covers, or an installed version that does not parse is reported as
:class:`NoData`. An advisory entry that cannot be evaluated (a range bound or fixed version
that does not parse in the package's scheme) is reported as an :class:`AdvisoryError`; the
other advisories about the package are still judged.

Package advisories match by purl type, namespace, name and ``distro``. Debian advisories are
about *source* packages, so a deb package matches through its source name and version; OSV
and CSAF name rpm *binary* packages, so an rpm package matches only by its own name (never
through its source rpm, whose fixes are of another version line). NVD CPE configurations
match only CPE names an inventory states explicitly.

Two rpm rules decide per advisory entry, and say "no data" where the inventory cannot:

- **Epochs.** An inventory line without an epoch (bare ``rpm -qa``, ``name version-release``)
  is compared only against fixes without one; an entry whose versions carry an epoch gives
  "no data: epoch unknown" for that package.
- **Module streams.** A modular entry (a ``rpmmod`` qualifier, or versions with a
  ``.module+el``/``.module_el`` release tag) applies only to packages of the same stream (the
  inventory's ``%{MODULARITYLABEL}``); a non-modular entry never applies to a modular package.
  Where the stream is unknown on either side, the answer is "no data".
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from patchledger.app.feeds.cpe import Cpe, node_matches, parse_cpe
from patchledger.app.feeds.ecosystems import VERSION_SCHEMES
from patchledger.app.feeds.inventory import RPM_FORMAT, InstalledPackage, Inventory
from patchledger.app.feeds.merge import Vulnerability
from patchledger.app.feeds.model import Advisory, AffectedPackage, CpeMatch, CpeNode
from patchledger.app.feeds.versions import (
    SEMVER_TYPES,
    UnsupportedVersion,
    compare,
    in_range,
    parse_version,
)

_DISTRO_TYPES = ("deb", "rpm", "apk")
#: the release tag of a package built from a module (RHEL ``module+el8``, AlmaLinux ``module_el9``)
MODULE_TAG = re.compile(r"\.module[+_]el\d")
_EPOCH = re.compile(r"^(\d+):")
_RPM_QUERY = f"rpm -qa --qf '{RPM_FORMAT.strip()}'"
EPOCH_UNKNOWN = (
    "epoch unknown: the inventory line gives none and a fix carries one; list packages with "
    + _RPM_QUERY
)
STREAM_UNKNOWN_INVENTORY = (
    "module stream unknown: a modular package without its module label; list packages with "
    + _RPM_QUERY
)
STREAM_UNKNOWN_ADVISORY = (
    "module stream unknown: a modular advisory that does not say which stream it fixes"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """A vulnerable package on a host, with the fix and the reason for the match."""

    host: str
    vulnerability: str
    advisory: str
    source: str
    package: str
    installed_version: str
    fixed_version: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class NoData:
    """Packages of a host that the loaded data cannot judge, grouped by scope."""

    host: str
    scope: str
    packages: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class AdvisoryError:
    """An advisory entry that could not be evaluated; the other advisories still were.

    ``host`` and ``package`` are those being matched when the problem showed up (empty when
    the entry is unusable whatever the inventory, e.g. a malformed CPE criterion).
    """

    host: str
    vulnerability: str
    advisory: str
    source: str
    package: str
    reason: str


@dataclass(slots=True)
class MatchReport:
    """Findings, no-data reports and advisory errors for one or more inventories."""

    findings: list[Finding] = field(default_factory=list)
    no_data: list[NoData] = field(default_factory=list)
    advisory_errors: list[AdvisoryError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Hit:
    vulnerability: str
    advisory: str
    source: str
    fixed: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class _Problem:
    vulnerability: str
    advisory: str
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Outcome:
    hits: tuple[_Hit, ...] = ()
    problems: tuple[_Problem, ...] = ()
    #: why some entries about the package could not be judged ("no data" reasons)
    gaps: tuple[str, ...] = ()


_Entry = tuple[str, Advisory, AffectedPackage]
_PkgKey = tuple[str, str | None, str, str | None]  # type, namespace, name, distro


class Matcher:
    """An index of vulnerabilities by package and CPE, reused across many inventories."""

    def __init__(self, vulnerabilities: Mapping[str, Vulnerability]) -> None:
        self._by_package: dict[_PkgKey, list[_Entry]] = defaultdict(list)
        self._by_cpe: dict[tuple[str, str, str], list[tuple[str, Advisory, CpeNode]]] = defaultdict(
            list
        )
        self.covered: set[tuple[str, str | None, str | None]] = set()
        #: advisories whose CPE configurations cannot be evaluated (left out of the index)
        self.index_errors: list[AdvisoryError] = []
        for vuln_id, vuln in vulnerabilities.items():
            for advisory in vuln.advisories:
                self._index(vuln_id, advisory)
        self._cache: dict[tuple[object, ...], _Outcome | str] = {}

    def _index(self, vuln_id: str, advisory: Advisory) -> None:
        for affected in advisory.affected:
            key = (affected.type, affected.namespace, affected.name, affected.distro)
            self._by_package[key].append((vuln_id, advisory, affected))
            scope_ns = affected.namespace if affected.type in _DISTRO_TYPES else None
            self.covered.add((affected.type, scope_ns, affected.distro))
        for config in advisory.cpe_configurations:
            problem = _malformed_criterion(config)
            if problem is not None:
                # connectors refuse such records; this guards hand-built advisories, whose
                # configuration would otherwise fail every match it takes part in
                self.index_errors.append(
                    AdvisoryError(
                        "",
                        vuln_id,
                        advisory.id,
                        advisory.source.source,
                        "",
                        f"{advisory.source.source} {advisory.id}: configuration left out: "
                        f"{problem}",
                    )
                )
                continue
            for vendor_product in _vulnerable_products(config):
                self._by_cpe[vendor_product].append((vuln_id, advisory, config))

    def match(self, inventory: Inventory) -> MatchReport:
        """Match one inventory; see the module docstring for the rules.

        The report's advisory errors include :attr:`index_errors`.
        """
        report = self._match_one(inventory)
        report.advisory_errors[:0] = self.index_errors
        return report

    def match_all(self, inventories: Iterable[Inventory]) -> MatchReport:
        """Match every inventory into one report (:attr:`index_errors` appear once)."""
        total = MatchReport(advisory_errors=list(self.index_errors))
        for inventory in inventories:
            one = self._match_one(inventory)
            total.findings.extend(one.findings)
            total.no_data.extend(one.no_data)
            total.advisory_errors.extend(one.advisory_errors)
        return total

    def _match_one(self, inventory: Inventory) -> MatchReport:
        report = MatchReport()
        missing: dict[tuple[str, str], list[str]] = defaultdict(list)
        for package in inventory.packages:
            outcome = self._match_package(package, inventory)
            if isinstance(outcome, str):
                missing[(_scope(package, inventory), outcome)].append(package.name)
                continue
            for gap in outcome.gaps:
                missing[(_scope(package, inventory), gap)].append(package.name)
            seen: set[tuple[str, str]] = set()
            busy = outcome.hits or outcome.problems
            purl, version = (_purl(package), _compared_version(package)) if busy else ("", "")
            report.advisory_errors.extend(
                AdvisoryError(inventory.host, p.vulnerability, p.advisory, p.source, purl, p.reason)
                for p in outcome.problems
            )
            for hit in outcome.hits:
                if (hit.vulnerability, hit.advisory) in seen:
                    continue
                seen.add((hit.vulnerability, hit.advisory))
                report.findings.append(
                    Finding(
                        inventory.host,
                        hit.vulnerability,
                        hit.advisory,
                        hit.source,
                        purl,
                        version,
                        hit.fixed,
                        hit.reason,
                    )
                )
        report.findings.extend(self._match_cpes(inventory, missing))
        report.no_data.extend(
            NoData(inventory.host, scope, tuple(names), reason)
            for (scope, reason), names in sorted(missing.items())
        )
        return report

    # --- packages -------------------------------------------------------------------------

    def _match_package(self, package: InstalledPackage, inventory: Inventory) -> _Outcome | str:
        if package.type == "cpe":
            return _Outcome()
        release = None
        if package.type in _DISTRO_TYPES:
            distro = inventory.distro
            if distro is None or distro.type != package.type:
                return "the inventory does not say which distribution release it is"
            release = distro.release
            namespace: str | None = distro.namespace
            if (package.type, namespace, release) not in self.covered:
                return f"no loaded advisory covers {namespace} {release}"
        else:
            namespace = package.namespace
            if package.type not in VERSION_SCHEMES:
                return f"no version scheme for package type {package.type!r}"
            if (package.type, None, None) not in self.covered:
                return f"no loaded advisory covers the {package.type} ecosystem"
        key = (
            package.type,
            namespace,
            package.name,
            package.source_name,
            release,
            _compared_version(package),
            package.module,
            package.epoch_known,
        )
        cached = self._cache.get(key)
        if cached is None:
            cached = self._compute(package, namespace, release)
            self._cache[key] = cached
        return cached

    def _compute(
        self, package: InstalledPackage, namespace: str | None, release: str | None
    ) -> _Outcome | str:
        # Debian lists name source packages; OSV and CSAF name rpm binary packages
        candidates = (
            (package.source_name, package.name) if package.type == "deb" else (package.name,)
        )
        names = dict.fromkeys(n for n in candidates if n)
        version = _compared_version(package)
        entries = [
            entry
            for name in names
            for entry in self._by_package.get((package.type, namespace, name, release), ())
        ]
        if not entries:
            return _Outcome()
        try:
            parse_version(package.type, version)
        except UnsupportedVersion as exc:
            return f"version not comparable: {exc}"
        # the installed version parses: whatever fails from here on is the advisory's data
        hits: list[_Hit] = []
        problems: list[_Problem] = []
        gaps: dict[str, None] = {}
        for vuln_id, advisory, affected in entries:
            decision = _applies(package, affected)
            if decision == "no":
                continue
            if decision != "yes":
                gaps[decision] = None
                continue
            try:
                hit, bad_fixes = _judge(package, version, vuln_id, advisory, affected)
            except UnsupportedVersion as exc:
                problems.append(_problem(vuln_id, advisory, affected, str(exc)))
                continue
            problems.extend(
                _problem(vuln_id, advisory, affected, f"fixed version unusable: {reason}")
                for reason in bad_fixes
            )
            if hit is not None:
                hits.append(hit)
        return _Outcome(tuple(hits), tuple(problems), tuple(gaps))

    # --- CPE ------------------------------------------------------------------------------

    def _match_cpes(
        self, inventory: Inventory, missing: dict[tuple[str, str], list[str]]
    ) -> list[Finding]:
        """Findings from NVD configurations; unparsable inventory CPEs go to ``missing``."""
        owners: dict[Cpe, InstalledPackage] = {}
        for package in inventory.packages:
            for text in package.cpes:
                try:
                    owners[parse_cpe(text)] = package
                except ValueError as exc:
                    missing[("cpe", f"CPE not usable: {exc}")].append(package.name)
        findings: list[Finding] = []
        seen: set[tuple[str, str]] = set()
        for cpe in list(owners):
            for vuln_id, advisory, config in self._by_cpe.get(cpe.vendor_product, ()):
                holds, pairs = node_matches(config, owners.keys())
                for criterion, hit in pairs if holds else ():
                    owner = owners[hit]
                    if (vuln_id, owner.purl) in seen:
                        continue
                    seen.add((vuln_id, owner.purl))
                    findings.append(
                        Finding(
                            inventory.host,
                            vuln_id,
                            advisory.id,
                            advisory.source.source,
                            owner.purl,
                            hit.version,
                            criterion.version_end_excluding,
                            f"{advisory.source.source} {advisory.id}: {_describe(criterion)}"
                            f" matches {_cpe_text(hit)}",
                        )
                    )
        return findings


def _judge(
    package: InstalledPackage,
    version: str,
    vuln_id: str,
    advisory: Advisory,
    affected: AffectedPackage,
) -> tuple[_Hit | None, list[str]]:
    """Whether one affected-package entry applies to an installed version.

    Returns the hit (or ``None``) and why each unparsable fixed version was left out.

    Raises:
        UnsupportedVersion: a version of the entry's ranges does not parse.
    """
    where = f"{affected.distro}" if affected.distro else affected.type
    label = f"{advisory.source.source} {advisory.id}"
    if affected.status == "not_affected":
        return None, []
    if affected.status == "unfixed":
        hit = _Hit(
            vuln_id,
            advisory.id,
            advisory.source.source,
            None,
            f"{label}: {affected.name} in {where} has no fix ({affected.note or 'unfixed'})",
        )
        return hit, []
    matched = _listed(package.type, version, affected.versions) or any(
        in_range(package.type, version, r) for r in affected.ranges
    )
    if not matched:
        return None, []
    later: list[str] = []
    bad: list[str] = []
    for candidate in affected.fixed:
        try:
            if compare(package.type, candidate, version) > 0:
                later.append(candidate)
        except UnsupportedVersion as exc:
            bad.append(str(exc))
    fixed = min(later, key=_Sorter(package.type)) if later else None
    hit = _Hit(
        vuln_id,
        advisory.id,
        advisory.source.source,
        fixed,
        f"{label}: {affected.name} {version} < fixed {fixed} in {where}",
    )
    return hit, bad


def _applies(package: InstalledPackage, affected: AffectedPackage) -> Literal["yes", "no"] | str:
    """Whether an entry speaks about this package: ``yes``, ``no``, or a "no data" reason.

    Only rpm packages are concerned: module streams must agree (see the module docstring),
    and an installed version of unknown epoch cannot be compared with a fix that has one.
    """
    if package.type != "rpm":
        return "yes"
    versions = _entry_versions(affected)
    stream = dict(affected.qualifiers).get("rpmmod") or None
    entry_modular = stream is not None or any(MODULE_TAG.search(v) for v in versions)
    package_modular = package.module is not None or MODULE_TAG.search(package.version) is not None
    if entry_modular != package_modular:
        return "no"
    if entry_modular:
        if stream is None:
            return STREAM_UNKNOWN_ADVISORY
        if package.module is None:
            return STREAM_UNKNOWN_INVENTORY
        if package.module != stream:
            return "no"
    if not package.epoch_known and any(_has_epoch(v) for v in versions):
        return EPOCH_UNKNOWN
    return "yes"


def _listed(ptype: str, version: str, versions: tuple[str, ...]) -> bool:
    """Whether ``version`` is one of ``versions`` (SemVer build metadata ignored)."""
    if version in versions:
        return True
    if ptype in SEMVER_TYPES and ("+" in version or any("+" in v for v in versions)):
        bare = version.split("+", 1)[0]
        return any(v.split("+", 1)[0] == bare for v in versions)
    return False


def _entry_versions(affected: AffectedPackage) -> list[str]:
    """Every version an entry names: fixes, listed versions and range bounds."""
    bounds = [e.version for r in affected.ranges for e in r if e.version != "0"]
    return [*affected.fixed, *affected.versions, *bounds]


def _has_epoch(version: str) -> bool:
    match = _EPOCH.match(version)
    return match is not None and int(match.group(1)) != 0


def _problem(vuln_id: str, advisory: Advisory, affected: AffectedPackage, reason: str) -> _Problem:
    label = f"{advisory.source.source} {advisory.id}: {affected.purl}"
    return _Problem(vuln_id, advisory.id, advisory.source.source, f"{label}: {reason}")


class _Sorter:
    """Sort key adapter: versions of one type ordered with :func:`compare`."""

    def __init__(self, ptype: str) -> None:
        self.ptype = ptype

    def __call__(self, version: str) -> _VersionKey:
        return _VersionKey(self.ptype, version)


@dataclass(frozen=True, slots=True)
class _VersionKey:
    ptype: str
    version: str

    def __lt__(self, other: _VersionKey) -> bool:
        return compare(self.ptype, self.version, other.version) < 0


@lru_cache(maxsize=262144)
def _purl(package: InstalledPackage) -> str:
    """The package's purl, memoized: fleets repeat the same packages on many hosts."""
    return package.purl


def _compared_version(package: InstalledPackage) -> str:
    """Debian advisories give source versions; compare the source version when known."""
    if package.type == "deb" and package.source_version:
        return package.source_version
    return package.version


def _scope(package: InstalledPackage, inventory: Inventory) -> str:
    if package.type in _DISTRO_TYPES and inventory.distro is not None:
        return f"{package.type}/{inventory.distro.namespace} {inventory.distro.release}"
    return package.type


def _malformed_criterion(node: CpeNode) -> str | None:
    """Why a criterion of ``node`` (vulnerable or not) cannot be parsed, or ``None``."""
    for match in node.matches:
        try:
            parse_cpe(match.criteria)
        except ValueError as exc:
            return str(exc)
    for child in node.children:
        problem = _malformed_criterion(child)
        if problem is not None:
            return problem
    return None


def _vulnerable_products(node: CpeNode) -> set[tuple[str, str, str]]:
    """The index keys of a node whose criteria all parse (see :func:`_malformed_criterion`)."""
    found = {parse_cpe(m.criteria).vendor_product for m in node.matches if m.vulnerable}
    for child in node.children:
        found |= _vulnerable_products(child)
    return found


def _describe(match: CpeMatch) -> str:
    bounds = [
        f"{op} {value}"
        for op, value in (
            (">=", match.version_start_including),
            (">", match.version_start_excluding),
            ("<=", match.version_end_including),
            ("<", match.version_end_excluding),
        )
        if value is not None
    ]
    return f"NVD criterion {match.criteria}" + (f" ({', '.join(bounds)})" if bounds else "")


def _cpe_text(cpe: Cpe) -> str:
    return "cpe:2.3:" + ":".join(cpe.fields)
