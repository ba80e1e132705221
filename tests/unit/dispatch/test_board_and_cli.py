"""The board files shared by the dispatcher and the relay, and the CLI's refusal of bad input
(one line naming what was wrong, exit status 2, nothing sent)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from patchledger.app.cli import main
from patchledger.app.dispatch.board import STALE_TEMPORARY, Board, BoardError, Order
from patchledger.app.dispatch.relay import ArtifactDirectory, RelayError


def test_orders_reports_and_polls_round_trip(tmp_path: Path) -> None:
    board = Board(tmp_path)
    assert board.order_for("h1") is None and board.seen() is None
    order = Order("apply", "R-1", "P-1", "ab" * 32)
    board.publish_orders({"h1": order})
    assert board.order_for("h1") == order and board.order_for("h2") is None
    board.publish_orders({})
    assert board.order_for("h1") is None  # a rewritten file is read again
    first = board.put_reports([{"report": {"host_id": "h1", "sequence": 1}}])
    second = board.put_reports([{"report": {"host_id": "h1", "sequence": 2}}])
    assert [f.path for f in board.pending_reports()] == [first, second]  # arrival order
    board.mark_seen("h1", now=100.0)
    board.flush_seen()
    assert board.seen() == {"h1": 100.0}
    # a relay started later (another process, or a restart) keeps the hosts noted before
    later = Board(tmp_path)
    later.mark_seen("h2", now=200.0)
    assert later.seen() == {"h1": 100.0, "h2": 200.0}


def test_a_corrupt_inbox_file_is_set_aside_and_a_corrupt_orders_file_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    board = Board(tmp_path)
    board.inbox.mkdir(parents=True)
    (board.inbox / "0001.json").write_text('{"not": "a list"}')
    (board.inbox / "0002.json").write_bytes(b"\xff\xfe")
    good = board.put_reports([{"report": {"host_id": "h1", "sequence": 1}}])
    assert [f.path for f in board.pending_reports()] == [good]
    assert sorted(p.name for p in (tmp_path / "corrupt").iterdir()) == ["0001.json", "0002.json"]
    assert "0001.json is not a list of signed reports" in caplog.text
    board.orders_path.write_text("{broken")
    with pytest.raises(BoardError, match=r"orders\.json is unreadable"):
        board.order_for("h1")


def test_artifacts_are_served_by_digest_only(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path)
    digest = store.put(b"artifact")
    assert store.get(digest) == b"artifact"
    with pytest.raises(RelayError, match="not a SHA-256"):
        store.get("../../etc/passwd")
    with pytest.raises(RelayError, match="no artifact"):
        store.get("0" * 64)


@pytest.mark.parametrize(("argv", "message"), [
    (["dispatch", "plan", "--org", "itops", "--rollout", "R-1", "--patch", "P-1",
      "--canary", "ten"], "--canary: 'ten' is neither a number of hosts nor a percentage"),
    (["dispatch", "plan", "--org", "itops", "--rollout", "R-1", "--patch", "P-1",
      "--wave", "5"], "--wave '5': give a percentage of the fleet (25%) or group:NAME"),
    (["dispatch", "plan", "--org", "itops", "--rollout", "R-1", "--patch", "P-1",
      "--budget", "150%"], "--budget: a percentage of hosts must be at most 100"),
    (["fleet", "simulate", "--org", "itops", "--hosts", "0"], "at least one host, not 0"),
    (["fleet", "simulate", "--org", "itops", "--hosts", "3", "--window", "db"],
     "--window 'db': expected GROUP=WINDOW"),
])
def test_bad_input_is_one_line_and_exit_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATCHLEDGER_STATE_DIR", str(tmp_path / "no-network"))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # no state directory, no plan, nothing sent


def test_a_killed_writers_temporary_is_ignored_then_swept(tmp_path: Path) -> None:
    board = Board(tmp_path)
    kept = board.put_reports([{"report": {"host_id": "h1", "sequence": 1}}])
    fresh = board.inbox / f".{kept.name}.abc123"  # a write in progress, or just killed
    stale = board.inbox / ".0001-killed.json.xyz789"
    fresh.write_text("[{")
    stale.write_text("[{")
    old = time.time() - STALE_TEMPORARY - 60
    os.utime(stale, (old, old))
    assert [f.path for f in board.pending_reports()] == [kept]
    assert fresh.exists() and not stale.exists()
