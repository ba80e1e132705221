"""Bad input: each case gives its error naming file and record; good records still import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchledger.app.feeds.errors import FeedFormatError
from patchledger.app.feeds.formats import parse_bytes
from patchledger.app.feeds.loader import Loader


def _kev(feeds_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (feeds_dir / "kev" / "known_exploited_vulnerabilities.json").read_text()
    )
    return data


def test_bad_records_are_reported_and_the_rest_imported(feeds_dir: Path, tmp_path: Path) -> None:
    kev = _kev(feeds_dir)
    broken_id = kev["vulnerabilities"][3]["cveID"]
    kev["vulnerabilities"][3]["dueDate"] = "next tuesday"
    del kev["vulnerabilities"][7]["cveID"]
    (tmp_path / "kev.json").write_text(json.dumps(kev))
    report = Loader().load([tmp_path / "kev.json"])
    errors = report.all_errors
    assert [e.record for e in errors] == [f"#3 ({broken_id})", "#7"]
    assert "dueDate" in errors[0].reason and "next tuesday" in errors[0].reason
    assert "cveID" in errors[1].reason
    assert all(e.origin == str(tmp_path / "kev.json") for e in errors)
    assert len(report.advisories) == 1402


def test_batch_with_malformed_truncated_mislabelled_unknown_and_oversized(
    feeds_dir: Path, tmp_path: Path
) -> None:
    good = feeds_dir / "osv-almalinux9-2024" / "ALSA-2024_0001.json"
    raw = good.read_bytes()
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "1-good.json").write_bytes(raw)
    (batch / "2-truncated.json").write_bytes(raw[: len(raw) // 2])
    (batch / "3-malformed.json").write_text('{"id": "x", "modified": }')
    (batch / "4-unknown.json").write_text('{"hello": "world"}')
    (batch / "5-not-json.txt").write_text("this is not a feed\n")
    (batch / "6-big.json").write_bytes(raw + b" " * 200_000)
    bad_osv = json.loads(raw)
    bad_osv["affected"][0]["ranges"][0]["events"].append({"bogus": "1"})
    (batch / "7-bad-record.json").write_text(json.dumps([json.loads(raw), bad_osv]))
    report = Loader(max_bytes=150_000).load([batch])
    by_file = {Path(e.origin).name: e for e in report.all_errors}
    assert set(by_file) == {
        "2-truncated.json",
        "3-malformed.json",
        "4-unknown.json",
        "5-not-json.txt",
        "6-big.json",
        "7-bad-record.json",
    }
    assert "truncated JSON" in by_file["2-truncated.json"].reason
    assert "line 1 column 25" in by_file["3-malformed.json"].reason
    assert "unknown format" in by_file["4-unknown.json"].reason
    assert "unknown format" in by_file["5-not-json.txt"].reason
    assert "over the limit" in by_file["6-big.json"].reason
    assert by_file["7-bad-record.json"].record == "#1 (ALSA-2024:0001)"
    assert "bogus" in by_file["7-bad-record.json"].reason
    # the good file and the good record of the mixed file are imported
    assert [a.id for a in report.advisories] == ["ALSA-2024:0001", "ALSA-2024:0001"]


def test_mislabelled_file_is_refused(feeds_dir: Path) -> None:
    data = (feeds_dir / "kev" / "known_exploited_vulnerabilities.json").read_bytes()
    with pytest.raises(FeedFormatError, match="labelled 'osv' but the content is 'kev'"):
        parse_bytes(data, "kev.json", expected="osv")
    report = Loader(expected_format="nvd-1.1").load(
        [feeds_dir / "kev" / "known_exploited_vulnerabilities.json"]
    )
    assert report.advisories == []
    assert "labelled 'nvd-1.1'" in report.all_errors[0].reason


def test_declared_count_mismatch_is_reported(feeds_dir: Path, tmp_path: Path) -> None:
    kev = _kev(feeds_dir)
    kev["vulnerabilities"] = kev["vulnerabilities"][:100]  # cut off, but still valid JSON
    (tmp_path / "short.json").write_text(json.dumps(kev))
    report = Loader().load([tmp_path / "short.json"])
    assert len(report.advisories) == 100
    assert [e.reason for e in report.all_errors] == [
        "declares count=1404 but holds 100 records (truncated?)"
    ]


def test_malformed_debian_record_is_left_out_whole(feeds_dir: Path, tmp_path: Path) -> None:
    lines = (feeds_dir / "debian" / "DSA-list_2023-03-29.txt").read_text().splitlines()[:9]
    lines[5] = "\t[bullseye] - dino-im <fixed-somehow>"
    (tmp_path / "dsa.txt").write_text("\n".join(lines) + "\n")
    report = Loader().load([tmp_path / "dsa.txt"])
    assert [a.id for a in report.advisories] == ["DSA-5380-1", "DSA-5378-1"]
    assert [(e.record, e.reason) for e in report.all_errors] == [
        ("DSA-5379-1 (line 4)", "line 6: unknown status '<fixed-somehow>'")
    ]


def test_missing_path_and_gzip(feeds_dir: Path, tmp_path: Path) -> None:
    import gzip

    source = feeds_dir / "nvd-api-2.0" / "vunnel-full-page_2023-10-18.json"
    (tmp_path / "page.json.gz").write_bytes(gzip.compress(source.read_bytes()))
    (tmp_path / "corrupt.json.gz").write_bytes(gzip.compress(source.read_bytes())[:500])
    report = Loader().load(
        [tmp_path / "page.json.gz", tmp_path / "corrupt.json.gz", tmp_path / "nope.json"]
    )
    assert len(report.advisories) == 38
    reasons = {Path(e.origin).name: e.reason for e in report.all_errors}
    assert "corrupt gzip" in reasons["corrupt.json.gz"]
    assert reasons["nope.json"] == "no such file or directory"
