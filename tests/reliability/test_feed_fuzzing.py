"""Fuzzing the feed connectors and the inventory parsers with mutations of the real shared files.

Every connector (KEV, NVD API 2.0, NVD 1.1, OSV, CSAF, the Debian DSA/DLA lists) and every
inventory parser (dpkg, rpm, CycloneDX, SPDX) reads hostile variants of the real documents: byte
mutations (flips, truncation, insertion, deletion, duplication) and JSON structural mutations
(wrong types, deletions, deep nesting, huge numbers, lone surrogates). The property: a document
is either imported (with per-record errors in its result) or refused with the library's own
:class:`~patchledger.app.feeds.errors.FeedError` family (or, for a recognized non-feed,
:class:`~patchledger.app.feeds.formats.NotAFeed`); nothing else escapes. What is imported is then
used as the import command uses it (merged, turned into JSON, package URLs built), which must
not fail either.

The large feeds are fuzzed through windows of their real records (a few consecutive records with
the document's real header), so that one example costs milliseconds; a test of each whole file
truncated at drawn offsets covers the full documents.
"""

from __future__ import annotations

import functools
import gzip
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from patchledger.app.feeds.errors import FeedError, InventoryError
from patchledger.app.feeds.export import vulnerability_json
from patchledger.app.feeds.formats import NotAFeed, decompress, parse_bytes
from patchledger.app.feeds.inventory import DPKG_FORMAT, Inventory, read_inventory
from patchledger.app.feeds.merge import merge
from tests.reliability.budget import Budget
from tests.reliability.mutations import byte_mutations, json_mutations, render

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
RPM_DATA = REPO / "tests" / "unit" / "feeds" / "data"

#: format -> (files under the feeds folder, the record list's key, the declared count's key)
JSON_FEEDS: dict[str, tuple[str, str, str | None]] = {
    "kev": ("kev/known_exploited_vulnerabilities.json", "vulnerabilities", "count"),
    "nvd-api-2.0": ("nvd-api-2.0/*.json", "vulnerabilities", "resultsPerPage"),
    "nvd-1.1": ("nvd-1.1/*.json", "CVE_Items", "CVE_data_numberOfCVEs"),
    "csaf": ("csaf/*.json", "vulnerabilities", None),
}


def check_feed(data: bytes, origin: str = "fuzz.json") -> None:
    """The property (module docstring) for one feed document."""
    try:
        result = parse_bytes(decompress(data, origin, 64 * 1024 * 1024), origin)
    except (FeedError, NotAFeed):
        return
    vulns = merge(result.advisories)
    json.dumps([vulnerability_json(v) for v in vulns.values()])
    for advisory in result.advisories:
        for package in advisory.affected:
            assert package.purl.startswith("pkg:")
    assert all(str(e) for e in result.errors)


@functools.cache
def _load_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _documents(feeds_dir: Path, pattern: str) -> list[Path]:
    found = sorted(feeds_dir.glob(pattern))
    if not found:
        pytest.skip(f"no {pattern} in {feeds_dir}")
    return found


def _window(doc: dict[str, Any], key: str, count_key: str | None, start: int,
            size: int) -> dict[str, Any]:
    """``doc`` with only ``size`` records from ``start`` (its declared count made to match)."""
    sample = dict(doc)
    sample[key] = doc[key][start:start + size]
    if count_key is not None:
        value = len(sample[key])
        sample[count_key] = str(value) if isinstance(doc.get(count_key), str) else value
    return sample


def feed_samples(feeds_dir: Path, name: str) -> st.SearchStrategy[Any]:
    """Real documents of format ``name``: record windows of the large feeds, whole OSV files."""
    if name == "osv":
        files = _documents(feeds_dir, "osv-almalinux9-2024/*.json")
        return st.sampled_from(files).map(_load_json)
    pattern, key, count_key = JSON_FEEDS[name]
    docs = [_load_json(p) for p in _documents(feeds_dir, pattern)]

    @st.composite
    def window(draw: st.DrawFn) -> Any:
        doc = draw(st.sampled_from(docs))
        start = draw(st.integers(0, max(len(doc[key]) - 1, 0)))
        return _window(doc, key, count_key, start, draw(st.integers(1, 6)))

    return window()


def debian_samples(feeds_dir: Path) -> st.SearchStrategy[bytes]:
    """Windows of real DSA/DLA list entries (whole entries, starting at an entry's first line)."""
    lists = []
    for path in _documents(feeds_dir, "debian/*.txt"):
        lines = path.read_bytes().splitlines(keepends=True)
        starts = [i for i, line in enumerate(lines) if line.startswith(b"[")]
        lists.append((lines, starts))

    @st.composite
    def window(draw: st.DrawFn) -> bytes:
        lines, starts = draw(st.sampled_from(lists))
        first = draw(st.integers(0, len(starts) - 1))
        last = min(first + draw(st.integers(1, 8)), len(starts) - 1)
        end = starts[last] if last > first else len(lines)
        return b"".join(lines[starts[first]:end])

    return window()


FEED_FORMATS = (*JSON_FEEDS, "osv")


@pytest.mark.parametrize("name", FEED_FORMATS)
def test_json_feed_structural_mutations(name: str, feeds_dir: Path, budget: Budget) -> None:
    budget.run(feed_samples(feeds_dir, name).flatmap(json_mutations), check_feed)


@pytest.mark.parametrize("name", FEED_FORMATS)
def test_json_feed_byte_mutations(name: str, feeds_dir: Path, budget: Budget) -> None:
    strategy = feed_samples(feeds_dir, name).map(render).flatmap(byte_mutations)
    budget.run(strategy, check_feed)


def test_debian_list_byte_mutations(feeds_dir: Path, budget: Budget) -> None:
    budget.run(debian_samples(feeds_dir).flatmap(byte_mutations), check_feed,
               factor=2)


def test_gzip_feed_byte_mutations(feeds_dir: Path, budget: Budget) -> None:
    """Corrupt gzip containers of real documents: refused as corrupt, or parsed."""
    strategy = feed_samples(feeds_dir, "kev").map(
        lambda doc: gzip.compress(render(doc), mtime=0)).flatmap(byte_mutations)
    budget.run(strategy, check_feed, factor=0.5)


def test_every_whole_file_truncated(feeds_dir: Path, budget: Budget) -> None:
    """Each real feed file, whole, cut at a drawn offset."""
    files = [p for p in sorted(feeds_dir.rglob("*")) if p.suffix in (".json", ".txt")
             and p.is_file() and p.parent.name != "osv-almalinux9-2024"]
    data = {p: p.read_bytes() for p in files}

    @st.composite
    def truncated(draw: st.DrawFn) -> tuple[str, bytes]:
        path = draw(st.sampled_from(files))
        raw = data[path]
        return str(path), raw[:draw(st.integers(0, len(raw)))]

    budget.run(truncated(), lambda case: check_feed(case[1], case[0]), factor=0.5)


# --- inventories -------------------------------------------------------------------------------


def check_inventory(tmp: Path, data: bytes, kind: str | None = None) -> None:
    """The property for one inventory file (read from ``tmp``)."""
    tmp.write_bytes(data)
    try:
        inventory = read_inventory(tmp, host="fuzz", kind=kind, release="bookworm")
    except InventoryError:
        return
    _use(inventory)


def _use(inventory: Inventory) -> None:
    for package in inventory.packages:
        assert package.purl.startswith("pkg:")


@functools.cache
def _dpkg_lines() -> tuple[bytes, ...]:
    if shutil.which("dpkg-query") is None:
        pytest.skip("dpkg-query is not installed on this machine (the real dpkg inventory)")
    out = subprocess.run(["dpkg-query", "-W", "-f", DPKG_FORMAT], capture_output=True,
                         check=True, timeout=60).stdout
    return tuple(out.splitlines(keepends=True))


def _line_windows(lines: tuple[bytes, ...]) -> st.SearchStrategy[bytes]:
    @st.composite
    def window(draw: st.DrawFn) -> bytes:
        start = draw(st.integers(0, len(lines) - 1))
        return b"".join(lines[start:start + draw(st.integers(1, 12))])

    return window()


def _rpm_lines() -> tuple[bytes, ...]:
    files = sorted(RPM_DATA.glob("*rpm*.txt"))
    if not files:
        pytest.skip(f"no rpm inventories in {RPM_DATA}")
    return tuple(line for f in files for line in f.read_bytes().splitlines(keepends=True))


def _cyclonedx_docs(feeds_dir: Path) -> list[Any]:
    return [_load_json(p) for p in _documents(feeds_dir, "sbom-cyclonedx/*.json")]


def _spdx_from(cdx: dict[str, Any]) -> dict[str, Any]:
    """An SPDX 2.3 document of a real CycloneDX SBOM's components (the shared folder holds no
    SPDX file; the packages, versions and purls are the real build's)."""
    packages = []
    for index, component in enumerate(cdx.get("components", [])):
        refs = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                 "referenceLocator": component["purl"]}] if "purl" in component else []
        packages.append({"SPDXID": f"SPDXRef-Package-{index}", "name": component.get("name"),
                         "versionInfo": component.get("version"), "externalRefs": refs})
    return {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "fuzz",
            "dataLicense": "CC0-1.0", "packages": packages}


def sbom_samples(feeds_dir: Path, kind: str) -> st.SearchStrategy[Any]:
    """Component windows of the real SBOMs, as CycloneDX or (converted) SPDX."""
    docs = _cyclonedx_docs(feeds_dir)

    @st.composite
    def window(draw: st.DrawFn) -> Any:
        doc = draw(st.sampled_from(docs))
        start = draw(st.integers(0, len(doc["components"]) - 1))
        sample = _window(doc, "components", None, start, draw(st.integers(1, 8)))
        return sample if kind == "cyclonedx" else _spdx_from(sample)

    return window()


TEXT_INVENTORIES: dict[str, Callable[[], tuple[bytes, ...]]] = {
    "dpkg": _dpkg_lines, "rpm": _rpm_lines,
}


@pytest.mark.parametrize("kind", sorted(TEXT_INVENTORIES))
def test_package_list_byte_mutations(kind: str, tmp_path: Path, budget: Budget) -> None:
    strategy = _line_windows(TEXT_INVENTORIES[kind]()).flatmap(byte_mutations)
    target = tmp_path / f"{kind}.txt"
    budget.run(strategy, lambda data: check_inventory(target, data, "deb" if kind == "dpkg"
                                                      else "rpm"))


@pytest.mark.parametrize("kind", ["cyclonedx", "spdx"])
def test_sbom_structural_mutations(kind: str, feeds_dir: Path, tmp_path: Path,
                                   budget: Budget) -> None:
    target = tmp_path / f"{kind}.json"
    budget.run(sbom_samples(feeds_dir, kind).flatmap(json_mutations),
               lambda data: check_inventory(target, data))


@pytest.mark.parametrize("kind", ["cyclonedx", "spdx"])
def test_sbom_byte_mutations(kind: str, feeds_dir: Path, tmp_path: Path,
                             budget: Budget) -> None:
    target = tmp_path / f"{kind}.json"
    budget.run(sbom_samples(feeds_dir, kind).map(render).flatmap(byte_mutations),
               lambda data: check_inventory(target, data))
