"""Records about the same vulnerability from several feeds merge into one."""

from __future__ import annotations

from patchledger.app.feeds.loader import ImportReport
from patchledger.app.feeds.merge import Vulnerability, merge


def test_kev_nvd_dsa_cve_merges_into_one_with_three_sources(
    full_import: ImportReport, vulns: dict[str, Vulnerability]
) -> None:
    def cves(source: str) -> set[str]:
        return {
            i
            for a in full_import.advisories
            if a.source.source == source
            for i in a.ids
            if i.startswith("CVE-")
        }

    common = cves("kev") & cves("nvd") & cves("debian-dsa")
    assert common, "the README promises CVEs present in KEV, NVD and the DSA list"
    for cve in common:
        vuln = vulns[cve]
        assert {"kev", "nvd", "debian-dsa"} <= set(vuln.source_names)
        assert vuln.kev is not None
        assert vuln.cvss, "NVD contributes CVSS"
        assert any(a.id.startswith("DSA-") for a in vuln.advisories)
        assert any(alias.startswith("DSA-") for alias in vuln.aliases)
    chrome = vulns["CVE-2020-6418"]
    assert chrome.source_names == ("debian-dsa", "kev", "nvd")
    assert len(chrome.sources) == len({(s.source, s.record) for s in chrome.sources})


def test_a_dsa_joins_every_cve_it_fixes_and_merge_is_idempotent(full_import: ImportReport) -> None:
    dsa = next(a for a in full_import.advisories if a.id == "DSA-5376-1")
    merged = merge([dsa, dsa])
    assert set(merged) == set(dsa.aliases)
    assert all(len(v.advisories) == 1 for v in merged.values())


def test_advisory_without_cve_keeps_its_own_id(full_import: ImportReport) -> None:
    sox = next(a for a in full_import.advisories if a.id == "DSA-5356-2")
    assert sox.aliases == ()
    assert list(merge([sox])) == ["DSA-5356-2"]
