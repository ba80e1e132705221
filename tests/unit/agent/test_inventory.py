"""Inventory: real dpkg-query output of a root with packages installed by dpkg (epoch and
source package included) read by the org app's own feeds parser; rpm and SBOM forms; the
canonical digest; "changed since the last report" across restarts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from patchledger.agent import inventory
from patchledger.agent.backends.dpkg import DpkgBackend
from patchledger.agent.errors import ConfigError
from patchledger.agent.inventory import (
    InventoryError,
    InventoryState,
    collect,
    rpm_snapshot,
    sbom_snapshot,
    text_snapshot,
)
from patchledger.app.feeds import inventory as feeds
from tests.unit.agent.debs import build_deb


def test_formats_are_the_feeds_parsers() -> None:
    assert inventory.DPKG_FORMAT == feeds.DPKG_FORMAT
    assert inventory.RPM_FORMAT == feeds.RPM_FORMAT


@pytest.fixture
def root(tmp_path: Path) -> Path:
    out = tmp_path / "debs"
    out.mkdir()
    b = DpkgBackend(tmp_path / "root", tmp_path / "state", scripts="chrootless")
    b.install(build_deb(out, "1:2.5-3", source="plhello-src (1:2.5-1)"), "P-0")
    b.commit()
    b.install(build_deb(out, "0.9", package="plworld", source=None), "P-1")
    b.commit()
    (b.root / "etc").mkdir()
    (b.root / "etc/os-release").write_text(
        'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    return b.root


def test_dpkg_inventory_is_what_the_feeds_parser_reads(root: Path) -> None:
    snap = collect("auto", root=root)
    assert (snap.format, snap.release) == ("dpkg-query", "bookworm")
    assert isinstance(snap.content, str)
    parsed = feeds.parse_dpkg(snap.content, host="h1", release=snap.release)
    by_name = {p.name: p for p in parsed.packages}
    hello = by_name["plhello"]
    assert (hello.version, hello.arch, hello.source_name, hello.source_version) == (
        "1:2.5-3", "all", "plhello-src", "1:2.5-1")
    assert hello.purl == "pkg:deb/debian/plhello@1:2.5-3?arch=all"
    assert (by_name["plworld"].source_name, by_name["plworld"].version) == ("plworld", "0.9")
    assert parsed.distro is not None and parsed.distro.release == "bookworm"


def test_the_hosts_own_dpkg_inventory_parses() -> None:
    if shutil.which("dpkg-query") is None or not Path("/var/lib/dpkg/status").exists():
        pytest.skip("this machine has no dpkg database")
    snap = collect("dpkg")
    parsed = feeds.parse_dpkg(str(snap.content), host="me", release=snap.release or None)
    assert any(p.name == "dpkg" for p in parsed.packages)


def test_the_digest_is_canonical_and_follows_changes(root: Path, tmp_path: Path) -> None:
    snap = collect("dpkg", root=root)
    text = str(snap.content)
    shuffled = "\n".join(reversed(text.splitlines())) + "\n\n"
    assert text_snapshot("dpkg-query", "bookworm", shuffled).sha256 == snap.sha256
    assert text_snapshot("dpkg-query", "trixie", text).sha256 != snap.sha256
    b = DpkgBackend(root, tmp_path / "state", scripts="chrootless")
    b.install(build_deb(tmp_path / "debs", "1.0", package="plworld", source=None), "P-2")
    b.commit()
    assert collect("dpkg", root=root).sha256 != snap.sha256


def test_changed_since_last_report_survives_a_restart(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "state" / "inventory.json"
    snap = collect("dpkg", root=root)
    assert InventoryState(path).changed(snap)
    InventoryState(path).mark_reported(snap, at=1)
    assert not InventoryState(path).changed(collect("dpkg", root=root))  # a new process
    path.write_text("{garbage")
    assert InventoryState(path).changed(snap)  # unreadable: send again


RPM_LINES = (
    "openssl-libs\t1:3.0.7-27.el9\tx86_64\topenssl-3.0.7-27.el9.src.rpm\t(none)\n"
    "nodejs\t1:18.19.0-1.module_el9\tx86_64\tnodejs-18.19.0-1.module_el9.src.rpm\t"
    "nodejs:18:9040020240110:rhel9\n"
)


def test_rpm_query_and_its_output_as_the_feeds_parser_reads_it(tmp_path: Path) -> None:
    calls: list[Sequence[str]] = []

    def rpm(argv: Sequence[str]) -> str:
        calls.append(argv)
        return RPM_LINES

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID="almalinux"\nVERSION_ID="9.3"\n')
    snap = rpm_snapshot(tmp_path, run=rpm)
    assert calls == [["rpm", f"--root={tmp_path}", "-qa", "--qf", inventory.RPM_FORMAT]]
    parsed = feeds.parse_rpm(str(snap.content), host="h", distro=snap.release)
    ssl = next(p for p in parsed.packages if p.name == "openssl-libs")
    assert (ssl.version, ssl.source_name) == ("1:3.0.7-27.el9", "openssl")
    node = next(p for p in parsed.packages if p.name == "nodejs")
    assert node.module == "nodejs:18"
    assert snap.release == "almalinux-9.3"


def test_real_rpm_when_installed(tmp_path: Path) -> None:
    if shutil.which("rpm") is None:
        pytest.skip("rpm is not installed on this machine")
    snap = rpm_snapshot(Path("/"))
    parsed = feeds.parse_rpm(str(snap.content), host="me", distro=snap.release or None)
    assert len(parsed.packages) == len(str(snap.content).splitlines())


CYCLONEDX = {
    "bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": "urn:uuid:1",
    "metadata": {"timestamp": "2026-01-01T00:00:00Z"},
    "components": [{"type": "library", "name": "xz-utils", "version": "5.4.1-0.2",
                    "purl": "pkg:deb/debian/xz-utils@5.4.1-0.2?arch=amd64"}],
}


def test_an_sbom_is_sent_as_it_is_and_its_digest_ignores_volatile_fields(tmp_path: Path) -> None:
    path = tmp_path / "sbom.json"
    path.write_text(json.dumps(CYCLONEDX))
    snap = collect("sbom", sbom=path)
    assert snap.format == "cyclonedx"
    assert feeds.parse_sbom(snap.content, host="h", origin="t").packages[0].name == "xz-utils"
    regenerated = {**CYCLONEDX, "serialNumber": "urn:uuid:2",
                   "metadata": {"timestamp": "2026-02-02T00:00:00Z"}}
    path.write_text(json.dumps(regenerated, indent=2))
    assert sbom_snapshot(path).sha256 == snap.sha256
    changed = json.loads(json.dumps(CYCLONEDX))
    changed["components"][0]["version"] = "5.4.1-0.3"
    path.write_text(json.dumps(changed))
    assert sbom_snapshot(path).sha256 != snap.sha256


@pytest.mark.parametrize(("text", "problem"), [
    ("{", "not JSON"), ('{"a": 1}', "neither CycloneDX nor SPDX"), ("", "not JSON")])
def test_bad_sboms_are_refused_by_name(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InventoryError, match=problem):
        sbom_snapshot(path)


def test_bad_sources_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs the SBOM file"):
        collect("sbom")
    with pytest.raises(ConfigError, match="not 'apk'"):
        collect("apk")
    with pytest.raises(InventoryError, match="unreadable"):
        sbom_snapshot(tmp_path / "missing.json")


def test_a_failing_query_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no dpkg database"):
        collect("dpkg", root=tmp_path)
    if shutil.which("rpm") is None:
        with pytest.raises(InventoryError, match="rpm is not installed"):
            collect("rpm", root=tmp_path)
