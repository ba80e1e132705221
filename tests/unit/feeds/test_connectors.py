"""Every real feed file parses, with the record counts of the feeds README."""

from __future__ import annotations

import json
import re
from pathlib import Path

from patchledger.app.feeds.loader import ImportReport, Loader
from patchledger.app.feeds.model import ParseResult


def _one(path: Path) -> ParseResult:
    report = Loader().load([path])
    assert report.errors == [], report.errors
    assert len(report.results) == 1
    return report.results[0]


def test_kev_catalog(feeds_dir: Path) -> None:
    result = _one(feeds_dir / "kev" / "known_exploited_vulnerabilities.json")
    assert (result.source, result.records, len(result.advisories)) == ("kev", 1404, 1404)
    assert result.errors == []
    first = result.advisories[0]
    assert first.id == "CVE-2025-48384"
    assert first.kev is not None
    assert str(first.kev.date_added) == "2025-08-25"
    assert str(first.kev.due_date) == "2025-09-15"
    assert first.cwes == ("CWE-59", "CWE-436")
    assert any(a.kev is not None and a.kev.known_ransomware for a in result.advisories)
    assert all(len(a.source.sha256) == 64 for a in result.advisories)


def test_nvd_legacy_feeds(feeds_dir: Path) -> None:
    path = feeds_dir / "nvd-1.1" / "nvdcve-1.1-modified_2020-03-07.json"
    modified = _one(path)
    # rejected records (description "** REJECT **") are counted but not imported
    raw = json.loads(path.read_bytes())["CVE_Items"]
    rejected = [
        item["cve"]["CVE_data_meta"]["ID"]
        for item in raw
        if item["cve"]["description"]["description_data"][0]["value"].startswith("** REJECT **")
    ]
    assert len(rejected) == 28
    assert modified.withdrawn == rejected
    assert not {a.id for a in modified.advisories} & set(rejected)
    assert modified.records == len(modified.advisories) + len(rejected) == 567
    assert sum(1 for a in modified.advisories if a.cpe_configurations) == 484
    assert (
        sum(1 for a in modified.advisories if any(s.version.startswith("3") for s in a.cvss)) == 481
    )
    recent = _one(feeds_dir / "nvd-1.1" / "nvdcve-1.1-recent_2024-06-21.json")
    assert recent.records == len(recent.advisories) == 1185
    assert sum(1 for a in recent.advisories if a.cpe_configurations) == 151
    first = modified.advisories[0]
    assert first.id == "CVE-2011-4661"
    assert first.cpe_configurations[0].matches[0].version_end_excluding == "15.2\\(1\\)t"
    assert {s.version for s in first.cvss} == {"3.1", "2.0"}


def test_nvd_api_pages(feeds_dir: Path) -> None:
    big_path = feeds_dir / "nvd-api-2.0" / "cves-page-startIndex0_2023-07-13.json"
    big = _one(big_path)
    assert big.records == 200
    rejected = [
        v["cve"]["id"]
        for v in json.loads(big_path.read_bytes())["vulnerabilities"]
        if v["cve"]["vulnStatus"] == "Rejected"
    ]
    assert len(rejected) == 3
    assert big.withdrawn == rejected
    assert len(big.advisories) == 197
    assert sum(1 for a in big.advisories if a.cpe_configurations) == 191
    small = _one(feeds_dir / "nvd-api-2.0" / "vunnel-full-page_2023-10-18.json")
    assert small.records == 38
    assert sum(1 for a in small.advisories if a.cpe_configurations) == 25
    ontap = small.advisories[0]
    assert ontap.id == "CVE-2023-27314"
    assert [s.source for s in ontap.cvss] == ["nvd@nist.gov", "security-alert@netapp.com"]
    bounds = ontap.cpe_configurations[0].children[0].matches[0]
    assert (bounds.version_start_including, bounds.version_end_excluding) == ("9.0", "9.8")


def test_osv_almalinux(feeds_dir: Path) -> None:
    report = Loader().load([feeds_dir / "osv-almalinux9-2024"])
    assert report.all_errors == []
    assert report.records_by_source() == {"osv": 380}
    advisories = {a.id: a for a in report.advisories}
    thunderbird = advisories["ALSA-2024:0001"]
    assert "CVE-2023-6856" in thunderbird.aliases  # from "related", the AlmaLinux quirk
    package = thunderbird.affected[0]
    assert (package.type, package.namespace, package.name, package.distro) == (
        "rpm",
        "almalinux",
        "thunderbird",
        "almalinux-9",
    )
    assert package.fixed == ("115.6.0-1.el9_3.alma",)
    assert package.purl == "pkg:rpm/almalinux/thunderbird?distro=almalinux-9"


def test_csaf_advisories(feeds_dir: Path) -> None:
    report = Loader().load([feeds_dir / "csaf"])
    assert report.all_errors == []
    assert report.records_by_source() == {"csaf": 4}
    per_doc = [len(r.advisories) for r in report.results]
    assert sorted(per_doc) == [3, 3, 4, 4]
    ruby = next(
        a for a in report.advisories if a.id == "RHSA-2023:3821" and "CVE-2023-28755" in a.aliases
    )
    pkg = next(p for p in ruby.affected if p.name == "ruby")
    assert pkg.distro == "rhel-8"
    assert dict(pkg.qualifiers) == {"rpmmod": "ruby:2.7"}
    assert pkg.fixed == ("2.7.8-139.module+el8.8.0+18745+f1bef313",)
    assert ruby.cvss and ruby.cvss[0].version == "3.1"


def test_debian_lists(full_import: ImportReport, feeds_dir: Path) -> None:
    dsa = next(r for r in full_import.results if r.source == "debian-dsa")
    dla = next(r for r in full_import.results if r.source == "debian-dla")
    assert dsa.records == 5406
    assert dla.records == 3534
    assert dla.errors == [] and len(dla.advisories) == 3534
    # The real DSA list has one malformed entry: DSA-423 names a package where its version
    # should be. It is reported, and only it is left out.
    assert [e.record for e in dsa.errors] == ["DSA-423 (line 17242)"]
    assert len(dsa.advisories) == 5405
    text = (feeds_dir / "debian" / "DSA-list_2023-03-29.txt").read_text()
    lost = set(re.findall(r"CVE-\d+-\d+", text.split("DSA-423 ")[1].split("\n[")[0]))
    referenced = {
        cve
        for a in dsa.advisories
        for cve in (*a.aliases, *(c for n in a.notes for c in re.findall(r"CVE-\d+-\d+", n)))
    }
    assert len(referenced | lost) == 14770
    xorg = next(a for a in dsa.advisories if a.id == "DSA-5380-1")
    assert xorg.aliases == ("CVE-2023-1393",)
    assert xorg.affected[0].purl == "pkg:deb/debian/xorg-server?distro=bullseye"
    assert xorg.affected[0].fixed == ("2:1.20.11-1+deb11u6",)


def test_every_file_of_the_feeds_folder(full_import: ImportReport) -> None:
    assert full_import.records_by_source() == {
        "kev": 1404,
        "nvd": 567 + 1185 + 200 + 38,
        "osv": 380,
        "csaf": 4,
        "debian-dsa": 5406,
        "debian-dla": 3534,
    }
    assert len(full_import.all_errors) == 1
    skipped = {Path(o).name: r for o, r in full_import.skipped}
    assert "JSON Schema" in skipped["known_exploited_vulnerabilities_schema.json"]
    assert "SBOM" in skipped["keycloak-10.0.2.cdx.json"]
