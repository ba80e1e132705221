"""Prioritization, CVSS, inventory parsers and the CLI, on the real data."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from patchledger.app.cli import main
from patchledger.app.feeds.cvss import base_score
from patchledger.app.feeds.errors import InventoryError
from patchledger.app.feeds.inventory import parse_dpkg, parse_rpm, parse_sbom, read_inventory
from patchledger.app.feeds.loader import ImportReport
from patchledger.app.feeds.merge import Vulnerability
from patchledger.app.feeds.priority import prioritize


def test_cvss_v3_computation_agrees_with_every_nvd_score(full_import: ImportReport) -> None:
    scores = [
        s
        for a in full_import.advisories
        if a.source.source == "nvd"
        for s in a.cvss
        if s.version.startswith("3")
    ]
    assert len(scores) > 700
    assert all(base_score(s.vector) == s.base_score for s in scores)


def test_priority_is_explained(vulns: dict[str, Vulnerability]) -> None:
    vuln = vulns["CVE-2020-6418"]  # KEV + NVD + DSA
    assert vuln.kev is not None
    prio = prioritize(vuln, criticality="critical", today=date(2030, 1, 1))
    texts = [text for _, text in prio.reasons]
    assert any(t.startswith("CVSS 3.1") for t in texts)
    assert any("listed in CISA KEV" in t for t in texts)
    assert f"KEV due date {vuln.kev.due_date} has passed" in texts
    assert "asset criticality critical" in texts
    assert prio.score == pytest.approx(sum(p for p, _ in prio.reasons))
    assert prio.deadline is not None and prio.deadline <= vuln.kev.due_date
    low = prioritize(vuln, criticality="low", today=vuln.kev.date_added)
    assert low.score == prio.score - 20 - 10


def test_ransomware_and_sla_deadline(vulns: dict[str, Vulnerability]) -> None:
    ransom = next(v for v in vulns.values() if v.kev is not None and v.kev.known_ransomware)
    prio = prioritize(ransom, today=date(2000, 1, 1))
    assert (15.0, "known use in ransomware campaigns") in prio.reasons
    nvd_only = vulns["CVE-2023-27314"]
    p = prioritize(nvd_only, today=date(2023, 10, 20))
    assert p.severity == "high"
    assert str(p.deadline) == "2023-11-11" and "high SLA of 30 days" in p.deadline_reason
    with pytest.raises(ValueError, match="criticality"):
        prioritize(nvd_only, criticality="extreme", today=date(2023, 1, 1))


_JACKSON_PURL = "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.10"
_JACKSON_CPE = "cpe:2.3:a:fasterxml:jackson-databind:2.9.10:*:*:*:*:*:*:*"


def test_inventory_parsers() -> None:
    deb = parse_dpkg(
        "ii \tlibssl3\t3.0.11-1~deb12u2\tamd64\topenssl\t3.0.11-1~deb12u2\n"
        "rc \told\t1.0\tamd64\told\t1.0\nbash 5.2.15-2+b2\n",
        host="h",
        release="12",
    )
    assert deb.distro is not None and deb.distro.release == "bookworm"
    assert [(p.name, p.source_name) for p in deb.packages] == [
        ("libssl3", "openssl"),
        ("bash", None),
    ]
    assert deb.packages[0].purl == "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64"
    rpm = parse_rpm(
        "openssl-libs\t1:3.0.7-25.el9_3\tx86_64\topenssl-3.0.7-25.el9_3.src.rpm\t(none)\n"
        "kernel-5.14.0-362.8.1.el9_3.x86_64\n",
        host="r",
        distro="almalinux-9.3",
    )
    assert rpm.distro is not None and rpm.distro.release == "almalinux-9"
    assert [(p.name, p.version, p.source_name) for p in rpm.packages] == [
        ("openssl-libs", "1:3.0.7-25.el9_3", "openssl"),
        ("kernel", "5.14.0-362.8.1.el9_3", None),
    ]
    with pytest.raises(InventoryError, match="line 1"):
        parse_rpm("garbage\n", host="r", distro=None)
    spdx = {
        "spdxVersion": "SPDX-2.3",
        "packages": [
            {
                "SPDXID": "SPDXRef-1",
                "name": "jackson",
                "versionInfo": "2.9.10",
                "externalRefs": [
                    {
                        "referenceType": "purl",
                        "referenceLocator": _JACKSON_PURL,
                    },
                    {
                        "referenceType": "cpe23Type",
                        "referenceLocator": _JACKSON_CPE,
                    },
                ],
            }
        ],
    }
    inv = parse_sbom(spdx, host="s", origin="spdx.json")
    assert inv.packages[0].namespace == "com.fasterxml.jackson.core" and inv.packages[0].cpes


def test_cyclonedx_keycloak(feeds_dir: Path) -> None:
    inv = read_inventory(
        feeds_dir / "sbom-cyclonedx" / "keycloak-10.0.2.cdx.json", criticality="high"
    )
    assert len(inv.packages) == 903 and inv.criticality == "high"
    assert all(p.type == "maven" for p in inv.packages)


def test_cli_import_json_and_table(
    feeds_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "vulns.json"
    assert (
        main(
            [
                "feeds",
                "import",
                str(feeds_dir / "kev"),
                str(feeds_dir / "csaf"),
                "--json",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == {"kev": 1404, "csaf": 4}
    assert summary["errors"] == []
    stored = json.loads(out.read_text())
    assert stored["summary"]["merged_vulnerabilities"] == summary["merged_vulnerabilities"]
    assert main(["feeds", "import", str(feeds_dir / "debian"), "--strict"]) == 1
    table = capsys.readouterr()
    assert "debian-dsa" in table.out and "DSA-423" in table.out
    assert "importing" not in table.err  # only 2 documents: no progress line


def test_cli_match(feeds_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "web1.txt"
    inv.write_text(
        "ii \txserver-xorg-core\t2:1.20.11-1+deb11u5\tamd64\txorg-server\t2:1.20.11-1+deb11u5\n"
    )
    code = main(
        [
            "feeds",
            "match",
            "--inventory",
            str(inv),
            "--release",
            "bullseye",
            "--feeds",
            str(feeds_dir / "debian"),
            "--feeds",
            str(feeds_dir / "kev"),
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    found = {r["finding"]["vulnerability"] for r in result["findings"]}
    assert "CVE-2023-1393" in found
    assert all(r["priority"]["reasons"] for r in result["findings"])
    assert main(["feeds", "match", "--feeds", str(feeds_dir / "kev")]) == 2
    assert "--inventory" in capsys.readouterr().err
