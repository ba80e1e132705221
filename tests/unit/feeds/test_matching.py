"""Matching advisories against inventories, with the real feed data."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from patchledger.app.feeds.cpe import parse_cpe
from patchledger.app.feeds.inventory import (
    Distro,
    InstalledPackage,
    Inventory,
    local_inventory,
    parse_sbom,
)
from patchledger.app.feeds.loader import ImportReport
from patchledger.app.feeds.matching import Matcher
from patchledger.app.feeds.merge import Vulnerability, merge
from patchledger.app.feeds.model import Advisory, CpeMatch, CpeNode, SourceRecord
from patchledger.app.feeds.versions import compare


def _fix_ladders(
    advisories: list[Advisory], ptype: str, distro: str
) -> dict[tuple[str, str | None], list[tuple[str, str]]]:
    """(package name, module stream) -> [(fixed version, advisory id)] sorted by version."""
    ladders: dict[tuple[str, str | None], dict[str, str]] = defaultdict(dict)
    for advisory in advisories:
        for pkg in advisory.affected:
            if pkg.type == ptype and pkg.distro == distro and pkg.status == "affected":
                stream = dict(pkg.qualifiers).get("rpmmod")
                for fixed in pkg.fixed:
                    ladders[(pkg.name, stream)].setdefault(fixed, advisory.id)
    out = {}
    for name, fixes in ladders.items():
        if len(fixes) >= 2:
            versions = sorted(fixes, key=lambda v: _Key(ptype, v))
            out[name] = [(v, fixes[v]) for v in versions]
    return out


class _Key:
    def __init__(self, ptype: str, version: str) -> None:
        self.ptype, self.version = ptype, version

    def __lt__(self, other: _Key) -> bool:
        return compare(self.ptype, self.version, other.version) < 0


def _advisory_findings(matcher: Matcher, inventory: Inventory, advisory_id: str) -> list[str]:
    return [
        f.fixed_version or ""
        for f in matcher.match(inventory).findings
        if f.advisory == advisory_id
    ]


@pytest.mark.parametrize(
    ("ptype", "namespace", "distro", "source"),
    [
        ("rpm", "almalinux", "almalinux-9", "osv"),
        ("deb", "debian", "bullseye", "debian-dsa"),
        ("deb", "debian", "buster", "debian-dla"),
    ],
)
def test_below_fixed_gives_finding_at_or_above_gives_none(
    full_import: ImportReport,
    matcher: Matcher,
    ptype: str,
    namespace: str,
    distro: str,
    source: str,
) -> None:
    advisories = [a for a in full_import.advisories if a.source.source == source]
    ladders = _fix_ladders(advisories, ptype, distro)
    assert len(ladders) >= 5
    for name, stream in sorted(ladders, key=str)[:8]:
        (older, _), (newer, newer_id) = ladders[(name, stream)][-2], ladders[(name, stream)][-1]
        for installed, expect in ((older, True), (newer, False)):
            inv = Inventory(
                f"h-{name}",
                (InstalledPackage(ptype, name, installed, namespace, module=stream),),
                Distro(ptype, namespace, distro),
            )
            fixed = _advisory_findings(matcher, inv, newer_id)
            if expect:
                assert fixed and set(fixed) == {newer}, (name, installed, newer_id)
            else:
                assert fixed == [], (name, installed, newer_id)
        # later than every fix: nothing from this source for the package
        inv = Inventory(
            "h",
            (InstalledPackage(ptype, name, newer + ".1", namespace, module=stream),),
            Distro(ptype, namespace, distro),
        )
        assert [f for f in matcher.match(inv).findings if f.source == source] == []


def test_finding_explains_itself(matcher: Matcher) -> None:
    inv = Inventory(
        "web1",
        (
            InstalledPackage(
                "deb", "xorg-server-bin", "2:1.20.11-1+deb11u5", "debian", source_name="xorg-server"
            ),
        ),
        Distro("deb", "debian", "bullseye"),
    )
    findings = [f for f in matcher.match(inv).findings if f.advisory == "DSA-5380-1"]
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.vulnerability, finding.fixed_version) == (
        "CVE-2023-1393",
        "2:1.20.11-1+deb11u6",
    )
    assert "DSA-5380-1" in finding.reason and "bullseye" in finding.reason
    assert finding.package.startswith("pkg:deb/debian/xorg-server-bin@")


def test_rpm_module_stream_must_match(matcher: Matcher) -> None:
    ruby = InstalledPackage("rpm", "ruby", "2.7.6-138.module+el8.7.0+1+aaaa", None, "x86_64")
    distro = Distro("rpm", "redhat", "rhel-8")
    no_module = matcher.match(Inventory("a", (ruby,), distro)).findings
    assert [f for f in no_module if f.source == "csaf"] == []
    in_stream = InstalledPackage("rpm", "ruby", ruby.version, None, "x86_64", module="ruby:2.7")
    found = [
        f
        for f in matcher.match(Inventory("a", (in_stream,), distro)).findings
        if f.source == "csaf"
    ]
    assert {f.advisory for f in found} >= {"RHSA-2023:3821"}


def _simple_bounded(vulns: dict[str, Vulnerability], attr: str) -> tuple[str, CpeMatch]:
    for vuln_id, vuln in sorted(vulns.items()):
        for adv in vuln.advisories:
            for config in adv.cpe_configurations:
                nodes = [config, *config.children] if not config.matches else [config]
                if len(nodes) != 1 or nodes[0].children or nodes[0].operator != "OR":
                    continue
                for m in nodes[0].matches:
                    if getattr(m, attr) and m.vulnerable and parse_cpe(m.criteria).version == "*":
                        return vuln_id, m
    raise AssertionError(f"no simple criterion with {attr}")


def _cpe_inventory(criteria: str, version: str) -> Inventory:
    parts = criteria.split(":")
    parts[5] = version
    return Inventory(
        "appliance", (InstalledPackage("cpe", parts[4], version, cpes=(":".join(parts),)),)
    )


@pytest.mark.parametrize(
    ("attr", "inside"),
    [
        ("version_end_excluding", False),
        ("version_end_including", True),
        ("version_start_including", True),
        ("version_start_excluding", False),
    ],
)
def test_nvd_cpe_bounds_are_exact(vulns: dict[str, Vulnerability], attr: str, inside: bool) -> None:
    vuln_id, criterion = _simple_bounded(vulns, attr)
    matcher = Matcher({vuln_id: vulns[vuln_id]})
    boundary = getattr(criterion, attr)
    hits = [f for f in matcher.match(_cpe_inventory(criterion.criteria, boundary)).findings]
    assert bool(hits) is inside, (vuln_id, criterion)
    if hits:
        assert criterion.criteria in hits[0].reason


def test_nvd_ontap_range_at_both_ends(vulns: dict[str, Vulnerability]) -> None:
    matcher = Matcher({"CVE-2023-27314": vulns["CVE-2023-27314"]})
    base = "cpe:2.3:a:netapp:clustered_data_ontap:{}:*:*:*:*:*:*:*"

    def hit(version: str) -> bool:
        inv = Inventory(
            "filer", (InstalledPackage("cpe", "ontap", version, cpes=(base.format(version),)),)
        )
        return bool(matcher.match(inv).findings)

    assert [hit(v) for v in ("8.9", "9.0", "9.7.99", "9.8", "9.10")] == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_and_configuration_needs_the_platform_too() -> None:
    app = CpeMatch("cpe:2.3:a:intel:connman:1.3:*:*:*:*:*:*:*", True)
    platform = CpeMatch("cpe:2.3:o:linux:tizen:-:*:*:*:*:*:*:*", False)
    config = CpeNode(
        "AND", children=(CpeNode("OR", matches=(app,)), CpeNode("OR", matches=(platform,)))
    )
    adv = Advisory(
        "CVE-X", source=SourceRecord("nvd", "t", "CVE-X", "0"), cpe_configurations=(config,)
    )
    matcher = Matcher(merge([adv]))
    alone = Inventory("h", (InstalledPackage("cpe", "connman", "1.3", cpes=(app.criteria,)),))
    assert matcher.match(alone).findings == []
    both = Inventory(
        "h", (*alone.packages, InstalledPackage("cpe", "tizen", "-", cpes=(platform.criteria,)))
    )
    findings = matcher.match(both).findings
    assert [f.package for f in findings] == [alone.packages[0].purl]


def test_this_machine_dpkg_inventory(matcher: Matcher, full_import: ImportReport) -> None:
    try:
        subprocess.run(["dpkg-query", "--version"], capture_output=True, check=True)
    except (FileNotFoundError, subprocess.CalledProcessError):
        pytest.skip("dpkg-query is not available on this machine")
    inv = local_inventory("this-machine")
    assert inv.distro is not None and inv.distro.type == "deb" and len(inv.packages) > 50
    report = matcher.match(inv)
    covered = {(p.distro) for a in full_import.advisories for p in a.affected if p.type == "deb"}
    if inv.distro.release not in covered:
        # e.g. bookworm: the 2023-03 lists predate it; every package is "no data", no guess
        assert report.findings == []
        assert [(n.scope, len(n.packages)) for n in report.no_data] == [
            (f"deb/debian {inv.distro.release}", len(inv.packages))
        ]
        assert inv.distro.release in report.no_data[0].reason
    for release in sorted(r for r in covered if r in ("bullseye", "buster", "stretch")):
        relabelled = Inventory(inv.host, inv.packages, Distro("deb", "debian", release))
        result = matcher.match(relabelled)
        assert result.no_data == []
        for finding in result.findings:
            assert release in finding.reason
            assert (
                finding.fixed_version is None
                or compare("deb", finding.installed_version, finding.fixed_version) < 0
            )


def test_uncovered_ecosystem_is_no_data(matcher: Matcher, feeds_dir: Path) -> None:
    sbom = json.loads((feeds_dir / "sbom-cyclonedx" / "dropwizard-1.3.15.cdx.json").read_text())
    inv = parse_sbom(sbom, host="dropwizard", origin="dropwizard")
    assert len(inv.packages) == 167
    report = matcher.match(inv)
    assert report.findings == []
    assert [(n.scope, len(n.packages)) for n in report.no_data] == [("maven", 167)]
    assert "maven" in report.no_data[0].reason
