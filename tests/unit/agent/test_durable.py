"""The agent's one durable write: unique temporary names, nothing partial, nothing left."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from patchledger.agent.durable import write_durably, write_json_durably
from patchledger.agent.sequence import SequenceFile


def test_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_durably(path, {"last": 1})
    write_json_durably(path, {"last": 2})
    assert json.loads(path.read_text()) == {"last": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_leftover_fixed_tmp_name_is_neither_used_nor_clobbered(tmp_path: Path) -> None:
    """The old helper wrote ``<name>.tmp``: a stale or hostile file there (even a link
    pointing elsewhere) no longer matters."""
    outside = tmp_path / "outside"
    outside.write_text("keep me")
    (tmp_path / "state.json.tmp").symlink_to(outside)
    write_json_durably(tmp_path / "state.json", {"last": 7})
    assert outside.read_text() == "keep me"
    assert json.loads((tmp_path / "state.json").read_text()) == {"last": 7}


def test_concurrent_writers_never_share_a_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    payloads = [bytes([i]) * 50_000 for i in range(8)]

    def write(data: bytes) -> None:
        for _ in range(20):
            write_durably(path, data)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_bytes() in payloads  # one writer's whole content, never a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_failed_write_leaves_the_destination_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old")
    os.mkdir(tmp_path / "d")
    with pytest.raises(OSError):
        write_durably(tmp_path / "d", b"new")  # cannot replace a directory with a file
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]


def test_the_sequence_counter_uses_it(tmp_path: Path) -> None:
    counter = SequenceFile(tmp_path / "seq.json")
    assert counter.reserve(3) == (1, 2, 3)
    assert SequenceFile(tmp_path / "seq.json").reserve(1) == (4,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq.json"]
