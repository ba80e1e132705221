"""Hostile documents that once crashed the parsers (found by tests/reliability's fuzzing): each
is now a refusal naming the file, or a per-record error, or imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchledger.app.feeds.errors import FeedFormatError, FetchError, InventoryError
from patchledger.app.feeds.formats import parse_bytes
from patchledger.app.feeds.http import _page_counts
from patchledger.app.feeds.inventory import parse_dpkg, read_inventory
from patchledger.app.feeds.jsontext import MalformedJSON, load_json


def _real(feeds_dir: Path, relative: str) -> Any:
    return json.loads((feeds_dir / relative).read_text())


@pytest.mark.parametrize(
    ("text", "reason", "in_feed"),
    [
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply", ": nested too"),
        ('{"count": ' + "9" * 5000 + "}", "a number of more than 4300 digits", ": a number of"),
        ('{"a": 1', "Expecting ',' delimiter at line 1 column 8",
         " at line 1 column 8: Expecting ',' delimiter"),
    ],
)
def test_json_that_cannot_be_decoded_is_one_error(text: str, reason: str, in_feed: str) -> None:
    with pytest.raises(MalformedJSON, match=reason):
        load_json(text)
    with pytest.raises(FeedFormatError, match=f"^feed.json: malformed or truncated JSON{in_feed}"):
        parse_bytes(text.encode(), "feed.json")


def test_an_infinite_declared_count_is_not_a_crash(feeds_dir: Path) -> None:
    page = _real(feeds_dir, "nvd-api-2.0/vunnel-full-page_2023-10-18.json")
    text = json.dumps(page).replace(f'"resultsPerPage": {page["resultsPerPage"]}',
                                    '"resultsPerPage": 1e999')
    result = parse_bytes(text.encode(), "page.json")
    assert len(result.advisories) == len(page["vulnerabilities"])
    assert result.errors == []


def test_a_lone_surrogate_in_a_record_is_read(feeds_dir: Path) -> None:
    kev = _real(feeds_dir, "kev/known_exploited_vulnerabilities.json")
    kev["vulnerabilities"] = kev["vulnerabilities"][:2]
    kev["count"] = 2
    kev["vulnerabilities"][0]["notes"] = "see \ud800"
    result = parse_bytes(json.dumps(kev).encode(), "kev.json")
    assert [a.id for a in result.advisories] == [v["cveID"] for v in kev["vulnerabilities"]]
    assert len({a.source.sha256 for a in result.advisories}) == 2


def test_a_package_name_that_is_no_package_url_fails_its_record(feeds_dir: Path) -> None:
    record = _real(feeds_dir, "osv-almalinux9-2024/ALSA-2024_0001.json")
    record["affected"][0]["package"]["name"] = "bad\ud800name"
    result = parse_bytes(json.dumps(record).encode(), "alsa.json")
    assert result.advisories == []
    [error] = result.errors
    assert error.record is not None and record["id"] in error.record
    assert "'bad\\ud800name': not a valid package URL" in error.reason


def test_nvd_page_counts_of_a_hostile_page_are_a_fetch_error() -> None:
    with pytest.raises(FetchError, match="not an NVD API page: nested too deeply"):
        _page_counts("https://nvd.example/p", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(FetchError, match="not an NVD API page"):
        _page_counts("https://nvd.example/p", b'{"totalResults": 1e999, "vulnerabilities": []}')


def test_an_empty_inventory_file_is_an_empty_inventory(tmp_path: Path) -> None:
    path = tmp_path / "host.txt"
    path.write_text("\n   \n")
    assert read_inventory(path).packages == ()


def test_a_dpkg_line_without_a_name_names_its_line() -> None:
    text = "ii\tbash\t5.2.15-2+b2\tamd64\tbash\t5.2.15-2\nii\t\t1.0\tamd64\t\t\n"
    with pytest.raises(InventoryError, match=r"dpkg-query: line 2: .*needs a name and a version"):
        parse_dpkg(text, host="h", release="bookworm")


def test_an_sbom_nested_too_deeply_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_text('{"bomFormat": "CycloneDX", "components": ' + "[" * 50_000 + "]" * 50_000
                    + "}")
    with pytest.raises(InventoryError, match=rf"{path}: malformed JSON: nested too deeply"):
        read_inventory(path)


def test_an_sbom_component_whose_purl_cannot_be_rebuilt_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_text(json.dumps({"bomFormat": "CycloneDX", "components": [
        {"bom-ref": "ok", "purl": "pkg:maven/org.example/good@1.0"},
        {"bom-ref": "bad", "purl": "pkg:maven/org.example/b\ud800d@1.0"},
    ]}))
    with pytest.raises(InventoryError, match=r"components\[1\] \(bad\): package .*valid package"):
        read_inventory(path)


@pytest.mark.parametrize("tags", [[None], [1, "Patch"], 7, {"Patch": 1}])
def test_nvd_reference_tags_that_are_no_strings_fail_their_record(
    feeds_dir: Path, tags: Any
) -> None:
    page = _real(feeds_dir, "nvd-api-2.0/vunnel-full-page_2023-10-18.json")
    page["vulnerabilities"] = page["vulnerabilities"][:2]
    page["resultsPerPage"] = 2
    page["vulnerabilities"][1]["cve"]["references"][0]["tags"] = tags
    result = parse_bytes(json.dumps(page).encode(), "page.json")
    assert [a.id for a in result.advisories] == [page["vulnerabilities"][0]["cve"]["id"]]
    [error] = result.errors
    assert "reference tags" in error.reason
