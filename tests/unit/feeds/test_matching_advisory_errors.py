"""One bad advisory entry is reported as an advisory error; it does not hide the others.

Synthetic advisories (no feed files needed): each test builds the exact data it is about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchledger.app.feeds.inventory import InstalledPackage, Inventory
from patchledger.app.feeds.matching import Matcher
from patchledger.app.feeds.merge import merge
from patchledger.app.feeds.model import Advisory, AffectedPackage, RangeEvent, SourceRecord


def _osv(adv_id: str, cve: str, affected: AffectedPackage) -> Advisory:
    return Advisory(
        adv_id,
        source=SourceRecord("osv", "test", adv_id, "0"),
        aliases=(cve,),
        affected=(affected,),
    )


def _pypi(fixed: str, *, extra_fixed: tuple[str, ...] = ()) -> AffectedPackage:
    return AffectedPackage(
        "pypi",
        "foo",
        ranges=((RangeEvent("introduced", "0"), RangeEvent("fixed", fixed)),),
        fixed=(fixed, *extra_fixed),
    )


def _foo(version: str) -> Inventory:
    return Inventory("h1", (InstalledPackage("pypi", "foo", version),))


def test_bad_advisory_range_is_an_advisory_error_and_other_hits_are_kept() -> None:
    advisories = [
        _osv("OSV-A", "CVE-2001-0001", _pypi("2.0")),
        _osv("OSV-B", "CVE-2001-0002", _pypi("not a version")),
        _osv("OSV-C", "CVE-2001-0003", _pypi("3.0")),
    ]
    report = Matcher(merge(advisories)).match(_foo("1.0"))
    assert sorted(f.advisory for f in report.findings) == ["OSV-A", "OSV-C"]
    assert report.no_data == []
    (error,) = report.advisory_errors
    assert (error.host, error.vulnerability, error.advisory, error.source) == (
        "h1",
        "CVE-2001-0002",
        "OSV-B",
        "osv",
    )
    assert error.package.startswith("pkg:pypi/foo@1.0")
    assert "not a version" in error.reason


def test_malformed_fixed_version_keeps_the_finding_and_reports_the_entry() -> None:
    advisory = _osv("OSV-F", "CVE-2001-0004", _pypi("2.0", extra_fixed=("bogus fix",)))
    report = Matcher(merge([advisory])).match(_foo("1.0"))
    (finding,) = report.findings
    assert (finding.advisory, finding.fixed_version) == ("OSV-F", "2.0")
    (error,) = report.advisory_errors
    assert error.advisory == "OSV-F" and "bogus fix" in error.reason


def test_only_an_unparsable_installed_version_is_no_data() -> None:
    advisories = [_osv("OSV-A", "CVE-2001-0001", _pypi("2.0"))]
    report = Matcher(merge(advisories)).match(_foo("not a version"))
    assert report.findings == [] and report.advisory_errors == []
    (gap,) = report.no_data
    assert gap.packages == ("foo",) and "not a version" in gap.reason


def test_cli_match_shows_advisory_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from patchledger.app.cli import main

    def entry(osv_id: str, fixed: str) -> dict[str, Any]:
        return {
            "id": osv_id,
            "modified": "2024-01-01T00:00:00Z",
            "aliases": [f"CVE-2001-{osv_id[-4:]}"],
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "foo"},
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": fixed}],
                        }
                    ],
                }
            ],
        }

    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "a.json").write_text(json.dumps(entry("PYSEC-0001", "2.0")))
    (feeds / "b.json").write_text(json.dumps(entry("PYSEC-0002", "not a version")))
    sbom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "metadata": {"component": {"name": "h1", "type": "application"}},
        "components": [
            {"type": "library", "name": "foo", "version": "1.0", "purl": "pkg:pypi/foo@1.0"}
        ],
    }
    inventory = tmp_path / "h1.cdx.json"
    inventory.write_text(json.dumps(sbom))
    args = ["feeds", "match", "--inventory", str(inventory), "--feeds", str(feeds), "--quiet"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["finding"]["advisory"] for r in result["findings"]] == ["PYSEC-0001"]
    assert [e["advisory"] for e in result["advisory_errors"]] == ["PYSEC-0002"]
    assert main(args) == 0
    assert "advisory error: " in capsys.readouterr().out
