"""The one durable write: a failure names the destination and leaves it as it was (the full
disk and read-only cases, which need a mounted file system, are in tests/reliability)."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchledger.common.durable import write_atomic


def test_a_failure_names_the_destination_not_the_temporary_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    path = blocker / "state.json"
    with pytest.raises(OSError) as caught:
        write_atomic(path, "{}")
    assert caught.value.filename == str(path)
    assert str(path) in str(caught.value)
    assert blocker.read_text() == "a file where a directory should be"


def test_replacing_a_directory_fails_and_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "keep").write_bytes(b"old")
    with pytest.raises(IsADirectoryError) as caught:
        write_atomic(tmp_path / "d", b"new")
    assert caught.value.filename == str(tmp_path / "d")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "keep"]
