"""Precise rpm matching (issue 10, points 1-3): binary names, epochs, module streams.

The inventories in ``data/`` are in the formats the library documents: ``rpm -qa --qf`` with
:data:`~patchledger.app.feeds.inventory.RPM_FORMAT` (each binary package with its source rpm
and module label) and bare ``rpm -qa`` NEVRA lines. Their versions are AlmaLinux 9 builds that
the real AlmaLinux OSV advisories of the shared feeds folder name; the advisories are the real
ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchledger.app.feeds.inventory import Inventory, read_inventory
from patchledger.app.feeds.loader import ImportReport
from patchledger.app.feeds.matching import (
    EPOCH_UNKNOWN,
    MODULE_TAG,
    STREAM_UNKNOWN_INVENTORY,
    Finding,
    Matcher,
)
from patchledger.app.feeds.model import Advisory, AffectedPackage

DATA = Path(__file__).parent / "data"


def _inventory(name: str, kind: str | None = "rpm") -> Inventory:
    return read_inventory(DATA / name, kind=kind, release="almalinux-9.4")


def _entries(advisories: list[Advisory], advisory_id: str, name: str) -> list[AffectedPackage]:
    return [
        pkg
        for a in advisories
        if a.id == advisory_id
        for pkg in a.affected
        if pkg.name == name and pkg.distro == "almalinux-9"
    ]


def _name(finding: Finding) -> str:
    return finding.package.split("@")[0].removeprefix("pkg:rpm/")


def _by_package(findings: list[Finding]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in findings:
        found.setdefault(_name(f), set()).add(f.advisory)
    return found


def test_binary_packages_are_judged_by_their_own_fixes(
    matcher: Matcher, full_import: ImportReport
) -> None:
    patched = _inventory("almalinux9-rpm-qf.txt")
    older = _inventory("almalinux9-rpm-qf-host2.txt")
    # the inventory carries the real source rpms: npm is built from nodejs
    npm = next(p for p in patched.packages if p.name == "npm")
    assert (npm.source_name, npm.version) == ("nodejs", "1:8.19.4-1.16.20.2.8.el9_4")
    advisories = full_import.advisories
    for inventory in (patched, older):
        for finding in matcher.match(inventory).findings:
            own = _entries(advisories, finding.advisory, _name(finding))
            # every fixed version reported is one of the package's own fixes, never its
            # source package's (nodejs 1:16.20.2-... for npm 1:8.19.4-...)
            assert own, finding
            assert any(finding.fixed_version in e.fixed for e in own), finding
    # npm 1:8.19.4-1.16.20.2.8.el9_4 is above npm's own fix (1:8.19.4-1.16.20.2.4.el9_3)
    assert "npm" not in _by_package(matcher.match(patched).findings)
    older_npm = [f for f in matcher.match(older).findings if _name(f) == "npm"]
    assert {f.fixed_version for f in older_npm} == {"1:8.19.4-1.16.20.2.4.el9_3"}


def test_bare_rpm_qa_gives_no_data_for_fixes_with_an_epoch(matcher: Matcher) -> None:
    bare = _inventory("almalinux9-rpm-qa.txt", kind=None)
    assert all(not p.epoch_known for p in bare.packages)
    full = _inventory("almalinux9-rpm-qf.txt")
    report = matcher.match(bare)
    found = _by_package(report.findings)
    epoch_gap = [n for n in report.no_data if n.reason == EPOCH_UNKNOWN]
    assert len(epoch_gap) == 1
    # openssl, openssl-libs and mod_ssl are fixed at epoch 1 (1:3.0.7-28.el9_4, 1:2.4.62-1.el9):
    # taking the missing epoch as 0 would call them vulnerable whatever their version
    assert set(epoch_gap[0].packages) == {"openssl", "openssl-libs", "mod_ssl"}
    assert not {"openssl", "openssl-libs", "mod_ssl"} & set(found)
    assert "rpm -qa --qf" in epoch_gap[0].reason
    # fixes without an epoch are still judged, exactly as with the full query
    full_found = _by_package(matcher.match(full).findings)
    for name in ("httpd", "ruby"):
        assert found[name] == full_found[name]


def test_module_streams_never_cross(matcher: Matcher, full_import: ImportReport) -> None:
    advisories = {a.id: a for a in full_import.advisories}
    for inventory in (
        _inventory("almalinux9-rpm-qf.txt"),
        _inventory("almalinux9-rpm-qf-host2.txt"),
    ):
        packages = {p.name: p for p in inventory.packages}
        for finding in matcher.match(inventory).findings:
            package = packages[_name(finding)]
            for entry in _entries(list(advisories.values()), finding.advisory, package.name):
                stream = dict(entry.qualifiers).get("rpmmod")
                modular = any(MODULE_TAG.search(v) for v in entry.fixed)
                assert modular == (stream is not None), entry
                assert stream == package.module, (finding, entry)
    pg15 = _by_package(matcher.match(_inventory("almalinux9-rpm-qf.txt")).findings)
    default = _by_package(matcher.match(_inventory("almalinux9-rpm-qf-host2.txt")).findings)
    summaries = {i: advisories[i].summary for i in pg15["postgresql"] | default["postgresql"]}
    # postgresql:15 15.6 is fixed by the postgresql:15 update only, not by postgresql:16's
    # 16.4 / 16.6 nor by the default stream's 13.x
    assert all("postgresql:15" in summaries[i] for i in pg15["postgresql"])
    # the default stream (13.14, no module) is fixed by the non-modular updates only
    assert default["postgresql"]
    assert all("postgresql security" in summaries[i] for i in default["postgresql"])
    # ruby:3.1 gets the ruby:3.1 updates, not ruby:3.3's nor the default ruby 3.0's
    ruby31 = {advisories[i].summary.split()[1] for i in default["ruby"]}
    assert ruby31 == {"ruby:3.1"}
    # and the default-stream ruby 3.0.7 gets only the non-modular ruby update
    assert {advisories[i].summary.split()[1] for i in pg15["ruby"]} == {"ruby"}


def test_modular_package_without_its_label_is_no_data(matcher: Matcher) -> None:
    bare = _inventory("almalinux9-rpm-qa.txt", kind=None)
    postgresql = next(p for p in bare.packages if p.name == "postgresql")
    assert postgresql.module is None and MODULE_TAG.search(postgresql.version)
    report = matcher.match(bare)
    gap = [n for n in report.no_data if n.reason == STREAM_UNKNOWN_INVENTORY]
    assert [n.packages for n in gap] == [("postgresql",)]
    assert "postgresql" not in _by_package(report.findings)


@pytest.mark.parametrize(
    ("line", "epoch_known", "version"),
    [
        (
            "openssl-libs\t1:3.0.7-27.el9\tx86_64\topenssl-3.0.7-27.el9.src.rpm\t(none)",
            True,
            "1:3.0.7-27.el9",
        ),
        ("httpd\t0:2.4.57-8.el9\tx86_64\thttpd-2.4.57-8.el9.src.rpm\t(none)", True, "2.4.57-8.el9"),
        ("openssl-libs 3.0.7-27.el9", False, "3.0.7-27.el9"),
        ("openssl-libs-3.0.7-27.el9.x86_64", False, "3.0.7-27.el9"),
        ("openssl-libs-1:3.0.7-27.el9.x86_64", True, "1:3.0.7-27.el9"),
    ],
)
def test_rpm_line_shapes_say_whether_the_epoch_is_known(
    tmp_path: Path, line: str, epoch_known: bool, version: str
) -> None:
    path = tmp_path / "host.txt"
    path.write_text(line + "\n")
    (package,) = read_inventory(path, kind="rpm", release="almalinux-9").packages
    assert (package.name, package.version, package.epoch_known) == (
        "openssl-libs" if "openssl" in line else "httpd",
        version,
        epoch_known,
    )
