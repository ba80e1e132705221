"""Vendor versions that differ only by trailing zero components, at the NVD bounds.

Synthetic advisories (no feed files needed): each test builds the exact data it is about.
"""

from __future__ import annotations

import pytest

from patchledger.app.feeds.cpe import version_key
from patchledger.app.feeds.inventory import InstalledPackage, Inventory
from patchledger.app.feeds.matching import Matcher
from patchledger.app.feeds.merge import merge
from patchledger.app.feeds.model import Advisory, CpeMatch, CpeNode, SourceRecord


def test_trailing_zero_components_compare_equal() -> None:
    assert version_key("2.0") == version_key("2.0.0") == version_key("2")
    assert version_key("1.0") < version_key("1.0.1")
    assert version_key("2.0") < version_key("2.0rc1")  # documented: no pre-release rule
    assert version_key("10") > version_key("1.0.0")
    assert version_key("0") == version_key("0.0")


@pytest.mark.parametrize(
    ("bound", "value", "installed", "vulnerable"),
    [
        ("version_start_including", "2.0.0", "2.0", True),
        ("version_start_including", "2.0", "2.0.0", True),
        ("version_start_excluding", "2.0.0", "2.0", False),
        ("version_end_excluding", "1.0.0", "1.0", False),
        ("version_end_excluding", "1.0", "1.0.0", False),
        ("version_end_excluding", "1.0.0", "0.9.9", True),
        ("version_end_including", "1.0.0", "1.0", True),
        ("version_end_including", "1.0", "1.0.0.1", False),
    ],
)
def test_cpe_bounds_ignore_trailing_zeros(
    bound: str, value: str, installed: str, vulnerable: bool
) -> None:
    crit = CpeMatch("cpe:2.3:a:acme:widget:*:*:*:*:*:*:*:*", True, **{bound: value})
    adv = Advisory(
        "CVE-2003-0001",
        source=SourceRecord("nvd", "t", "CVE-2003-0001", "0"),
        cpe_configurations=(CpeNode("OR", matches=(crit,)),),
    )
    cpe = f"cpe:2.3:a:acme:widget:{installed}:*:*:*:*:*:*:*"
    inv = Inventory("h", (InstalledPackage("cpe", "widget", installed, cpes=(cpe,)),))
    assert bool(Matcher(merge([adv])).match(inv).findings) is vulnerable
