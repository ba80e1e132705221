"""Issue 10, points 3-7: CSAF platforms and streams, truncated DSA lists, SBOM components,
SemVer build metadata, NVD rejected records, bad inventories among good ones, ``--out`` mode.

Advisories are the real ones of the shared feeds folder; where a case needs a broken document
(a list cut mid-line, a product tree without purls, an SBOM with unreadable components) it is
derived from a real file by the damage named in the test.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from patchledger.app.cli import main
from patchledger.app.feeds.connectors import csaf
from patchledger.app.feeds.errors import InventoryError
from patchledger.app.feeds.formats import parse_bytes
from patchledger.app.feeds.inventory import parse_sbom, read_inventory
from patchledger.app.feeds.loader import ImportReport, Loader
from patchledger.app.feeds.matching import Matcher
from patchledger.app.feeds.merge import Vulnerability, merge
from patchledger.app.feeds.model import RangeEvent
from patchledger.app.feeds.versions import compare, in_range

DATA = Path(__file__).parent / "data"


# --- 3/4. CSAF: module streams and platform CPEs ---------------------------------------------


@pytest.fixture(scope="module")
def csaf_matcher(feeds_dir: Path) -> Matcher:
    return Matcher(merge(Loader().load([feeds_dir / "csaf"]).advisories))


def test_csaf_module_stream_applies_only_to_its_stream(csaf_matcher: Matcher) -> None:
    # RHEL 8 ships ruby as the streams 2.5, 2.7 and 3.1; the host runs ruby:2.5
    inventory = read_inventory(DATA / "rhel8-rpm-qf.txt", kind="rpm", release="rhel-8.9")
    report = csaf_matcher.match(inventory)
    ruby = {f.advisory for f in report.findings if "/ruby" in f.package}
    assert ruby == {"RHSA-2023:7025"}  # the ruby:2.5 advisory; not 2.7's RHSA-2023:3821
    assert all(f.fixed_version and ".module+el8" in f.fixed_version for f in report.findings)
    # sudo 1.9.5p2-1.el8_9 is the rhel-8 fix itself
    assert not [f for f in report.findings if "/sudo" in f.package]


@pytest.mark.parametrize(
    ("cpe", "release"),
    [
        ("cpe:/o:redhat:rhel_els:6", "rhel-6"),
        ("cpe:/o:redhat:enterprise_linux:6::server", "rhel-6"),
        ("cpe:/a:redhat:enterprise_linux:8::appstream", "rhel-8"),
        ("cpe:/o:redhat:enterprise_linux:9::baseos", "rhel-9"),
        ("cpe:/a:redhat:rhel_eus:9.2::appstream", "rhel-9.2-eus"),
        ("cpe:/o:redhat:rhel_eus:8.8::baseos", "rhel-8.8-eus"),
        ("cpe:/a:redhat:rhel_e4s:8.4::appstream", "rhel-8.4-e4s"),
        ("cpe:2.3:o:redhat:enterprise_linux:7:*:*:*:*:*:*:*", "rhel-7"),
        ("cpe:/a:redhat:openshift:4.12::el8", None),
        ("cpe:/a:example:enterprise_linux:8", None),
    ],
)
def test_redhat_platform_cpes_map_to_distribution_releases(cpe: str, release: str | None) -> None:
    assert csaf.redhat_release(cpe) == release


def test_every_real_csaf_platform_maps_to_a_release(feeds_dir: Path) -> None:
    report = Loader().load([feeds_dir / "csaf"])
    distros = {p.distro for a in report.advisories for p in a.affected}
    assert distros and all(d is not None and d.startswith("rhel-") for d in distros), distros
    assert {"rhel-9.2-eus", "rhel-8.8-eus", "rhel-8", "rhel-9"} <= distros


def test_eus_host_gets_its_stream_fix(csaf_matcher: Matcher) -> None:
    eus = read_inventory(DATA / "rhel9-eus-rpm-qf.txt", kind="rpm", release="rhel-9.2-eus")
    main_line = read_inventory(DATA / "rhel9-eus-rpm-qf.txt", kind="rpm", release="rhel-9.2")
    assert eus.distro is not None and eus.distro.release == "rhel-9.2-eus"
    assert {f.fixed_version for f in csaf_matcher.match(eus).findings} == {"1.9.5p2-9.el9_2.2"}
    assert {f.fixed_version for f in csaf_matcher.match(main_line).findings} == {"1.9.5p2-10.el9_3"}


def _strip_purls(node: Any) -> None:
    if isinstance(node, dict):
        helper = node.get("product_identification_helper")
        if isinstance(helper, dict):
            helper.pop("purl", None)
        for value in node.values():
            _strip_purls(value)
    elif isinstance(node, list):
        for value in node:
            _strip_purls(value)


def test_csaf_products_without_purl_are_no_data_with_the_reason(feeds_dir: Path) -> None:
    doc = json.loads((feeds_dir / "csaf" / "rhsa-2024_0811.json").read_bytes())
    _strip_purls(doc["product_tree"])  # a vendor that names products by name only
    result = csaf.parse(doc, "rhsa-2024_0811-no-purls.json")
    assert result.errors == []
    assert len(result.advisories) == len(doc["vulnerabilities"]) == len(result.no_data)
    assert all(a.affected == () for a in result.advisories)
    first = result.no_data[0]
    assert first.record.startswith("RHSA-2024:0811 vulnerability #0 (CVE-")
    assert "products carry neither a purl nor a CPE, so no inventory can be judged" in (
        first.reason
    )
    assert "'AppStream-9.0.0.Z.EUS:sudo-0:1.9.5p2-7.el9_0.4.x86_64'" in first.reason
    # the import summary says so instead of importing nothing silently
    report = ImportReport(results=[result])
    assert str(report.no_data[0]).startswith(
        "rhsa-2024_0811-no-purls.json: record RHSA-2024:0811 vulnerability #0"
    )


# --- 5. a DSA/DLA list cut mid-line ----------------------------------------------------------


@pytest.mark.parametrize("name", ["DSA-list_2023-03-29.txt", "DLA-list_2023-03.txt"])
def test_truncated_debian_list_is_reported_not_imported_short(feeds_dir: Path, name: str) -> None:
    text = (feeds_dir / "debian" / name).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    # cut inside the first "+debNNuM" fixed version past the first tenth of the list, leaving
    # "+deb1" of "+deb11u5": a shorter, lower version that would hide the vulnerability
    index = next(
        i for i in range(len(lines) // 10, len(lines)) if re.search(r"\+deb1\du\d", lines[i])
    )
    cut_line = lines[index]
    cut = "".join(lines[:index]) + cut_line[: cut_line.index("+deb1") + 5]
    assert re.search(r"\+deb1\du\d", cut_line) and cut.endswith("+deb1")
    whole = parse_bytes(text.encode(), "whole")
    result = parse_bytes(cut.encode(), "cut")
    truncated = [e for e in result.errors if "truncated" in e.reason]
    assert len(truncated) == 1
    assert f"line {index + 1}" in truncated[0].reason
    short_versions = {
        v for a in result.advisories for p in a.affected for v in p.fixed if v.endswith("+deb1")
    }
    assert not short_versions
    # every record before the cut is imported as from the whole list, or is an error
    assert result.records == len(result.advisories) + len(result.errors)
    kept = {a.id: a for a in whole.advisories}
    assert {a.id for a in result.advisories} < set(kept)
    assert all(kept[a.id].affected == a.affected for a in result.advisories)


# --- 6. CycloneDX components that cannot be read ---------------------------------------------


def test_sbom_components_of_the_wrong_type_are_named(feeds_dir: Path) -> None:
    doc = json.loads((feeds_dir / "sbom-cyclonedx" / "dropwizard-1.3.15.cdx.json").read_bytes())
    first_ref = doc["components"][0]["bom-ref"]
    doc["components"][0]["purl"] = 42  # a purl that is not a string
    doc["components"][3] = "pkg:maven/com.example/lib@1.0"  # a component that is a string
    doc["components"][5]["cpe"] = ["cpe:2.3:a:x:y:1:*:*:*:*:*:*:*"]
    with pytest.raises(InventoryError) as info:
        parse_sbom(doc, host="h", origin="dropwizard.json")
    problems = info.value.problems
    assert problems == (
        "components[3] is a string, expected an object",
        f"components[5] ({doc['components'][5]['bom-ref']}): cpe is an array, expected a string",
        f"components[0] ({first_ref}): purl is a number, expected a string",
    )
    assert str(info.value).startswith("dropwizard.json: 3 components cannot be read: ")
    doc["components"] = {"not": "an array"}
    with pytest.raises(InventoryError, match="components is an object, expected an array"):
        parse_sbom(doc, host="h", origin="dropwizard.json")


# --- 7. the smaller ones ---------------------------------------------------------------------


@pytest.mark.parametrize("ptype", ["npm", "cargo", "golang"])
def test_semver_build_metadata_does_not_change_precedence(ptype: str) -> None:
    prefix = "v" if ptype == "golang" else ""
    plain, build = f"{prefix}1.0.0", f"{prefix}1.0.0+build.1"
    assert compare(ptype, build, plain) == compare(ptype, plain, build) == 0
    assert compare(ptype, f"{prefix}1.0.0-rc.1+b", plain) == -1
    assert compare(ptype, plain, f"{prefix}1.0.1+b") == -1
    fixed = (RangeEvent("introduced", "0"), RangeEvent("fixed", plain))
    assert not in_range(ptype, build, fixed)


def test_nvd_rejected_records_are_not_vulnerabilities(
    full_import: ImportReport, vulns: dict[str, Vulnerability]
) -> None:
    rejected = full_import.withdrawn_by_source()["nvd"]
    assert len(rejected) == 31
    nvd_only = [cve for cve in rejected if cve in vulns]
    # a rejected CVE may still be named by another source, never by NVD
    assert all("nvd" not in vulns[cve].source_names for cve in nvd_only)


def test_one_bad_inventory_does_not_stop_the_match(
    feeds_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.cdx.json"
    bad.write_text('{"bomFormat": "CycloneDX", "components": "nope"}')
    code = main(
        [
            "feeds",
            "match",
            "--feeds",
            str(feeds_dir / "osv-almalinux9-2024"),
            "--inventory",
            str(bad),
            "--inventory",
            str(DATA / "almalinux9-rpm-qf.txt"),
            "--type",
            "rpm",
            "--release",
            "almalinux-9.4",
            "--json",
            "--quiet",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["inventory_errors"] == [
        f"{bad}: 1 component cannot be read: components is a string, expected an array"
    ]
    assert {r["finding"]["host"] for r in out["findings"]} == {"almalinux9-rpm-qf"}
    # no readable inventory at all: one line, exit 2
    assert main(["feeds", "match", "--feeds", str(feeds_dir / "kev"), "--inventory", str(bad)]) == 2
    assert "no inventory could be read" in capsys.readouterr().err


def test_import_out_follows_the_umask(
    feeds_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "vulns.json"
    previous = os.umask(0o022)
    try:
        assert main(["feeds", "import", str(feeds_dir / "kev"), "--out", str(out), "--quiet"]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert json.loads(out.read_text())["summary"]["records"] == {"kev": 1404}
    capsys.readouterr()


def test_import_summary_lists_withdrawn_records(
    feeds_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["feeds", "import", str(feeds_dir / "nvd-api-2.0"), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["withdrawn"]["nvd"]) == 3
    assert summary["no_data"] == []
