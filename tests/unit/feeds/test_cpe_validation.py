"""CPE names: validated (11 components) at import; unparsable inventory CPEs are "no data".

Synthetic records (no feed files needed): each test builds the exact data it is about.
"""

from __future__ import annotations

from typing import Any

import pytest

from patchledger.app.feeds.connectors import nvd
from patchledger.app.feeds.inventory import InstalledPackage, Inventory
from patchledger.app.feeds.matching import Matcher
from patchledger.app.feeds.merge import merge
from patchledger.app.feeds.model import Advisory, CpeMatch, CpeNode, SourceRecord


def _nvd_page(*criteria: str) -> dict[str, Any]:
    def vuln(index: int, crit: str) -> dict[str, Any]:
        return {
            "cve": {
                "id": f"CVE-2002-000{index}",
                "configurations": [
                    {
                        "nodes": [
                            {
                                "operator": "OR",
                                "cpeMatch": [{"vulnerable": True, "criteria": crit}],
                            }
                        ]
                    }
                ],
            }
        }

    return {
        "format": "NVD_CVE",
        "version": "2.0",
        "vulnerabilities": [vuln(i, c) for i, c in enumerate(criteria)],
    }


@pytest.mark.parametrize("parse", [nvd.parse_api2, nvd.parse_legacy])
def test_nvd_criterion_without_11_components_is_a_record_error(parse: Any) -> None:
    good = "cpe:2.3:a:acme:widget:1.0:*:*:*:*:*:*:*"
    short = "cpe:2.3:a:acme:widget:1.0"
    if parse is nvd.parse_api2:
        doc = _nvd_page(good, short)
    else:
        doc = {
            "CVE_Items": [
                {
                    "cve": {"CVE_data_meta": {"ID": f"CVE-2002-000{i}"}},
                    "configurations": {
                        "nodes": [
                            {
                                "operator": "OR",
                                "cpe_match": [{"vulnerable": False, "cpe23Uri": crit}],
                            }
                        ]
                    },
                }
                for i, crit in enumerate((good, short))
            ]
        }
    result = parse(doc, "page.json")
    assert [a.id for a in result.advisories] == ["CVE-2002-0000"]
    (error,) = result.errors
    assert error.record == "#1 (CVE-2002-0001)"
    assert "components" in error.reason and short in error.reason


def test_unparsable_inventory_cpe_is_no_data_with_the_reason() -> None:
    crit = CpeMatch("cpe:2.3:a:acme:widget:*:*:*:*:*:*:*:*", True, version_end_excluding="2.0")
    adv = Advisory(
        "CVE-2002-0001",
        source=SourceRecord("nvd", "t", "CVE-2002-0001", "0"),
        cpe_configurations=(CpeNode("OR", matches=(crit,)),),
    )
    inv = Inventory(
        "appliance",
        (
            InstalledPackage("cpe", "widget", "1.0", cpes=("cpe:2.3:a:acme:widget:1.0",)),
            InstalledPackage(
                "cpe", "gadget", "1.0", cpes=("cpe:2.3:a:acme:widget:1.0:*:*:*:*:*:*:*",)
            ),
        ),
    )
    report = Matcher(merge([adv])).match(inv)
    assert [f.package for f in report.findings] == [inv.packages[1].purl]
    (gap,) = report.no_data
    assert (gap.scope, gap.packages) == ("cpe", ("widget",))
    assert "cpe:2.3:a:acme:widget:1.0" in gap.reason and "components" in gap.reason


def test_hand_made_malformed_criterion_does_not_fail_the_match() -> None:
    vulnerable = CpeMatch("cpe:2.3:a:acme:widget:1.0:*:*:*:*:*:*:*", True)
    platform = CpeMatch("cpe:2.3:o:acme:os", False)  # malformed, not vulnerable
    bad = Advisory(
        "CVE-2002-0001",
        source=SourceRecord("nvd", "t", "CVE-2002-0001", "0"),
        cpe_configurations=(
            CpeNode(
                "AND",
                children=(CpeNode("OR", matches=(vulnerable,)), CpeNode("OR", matches=(platform,))),
            ),
        ),
    )
    good = Advisory(
        "CVE-2002-0002",
        source=SourceRecord("nvd", "t", "CVE-2002-0002", "0"),
        cpe_configurations=(CpeNode("OR", matches=(vulnerable,)),),
    )
    matcher = Matcher(merge([bad, good]))
    inv = Inventory("h", (InstalledPackage("cpe", "widget", "1.0", cpes=(vulnerable.criteria,)),))
    report = matcher.match(inv)
    assert [f.vulnerability for f in report.findings] == ["CVE-2002-0002"]
    (error,) = report.advisory_errors
    assert error.vulnerability == "CVE-2002-0001" and "cpe:2.3:o:acme:os" in error.reason
    assert len(matcher.match_all([inv, inv]).advisory_errors) == 1  # reported once
