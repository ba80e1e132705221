"""Storage faults: a full disk and a read-only directory under every durable state file.

For the durable write itself (:mod:`patchledger.common.durable`), the Fabric client's event
checkpoint and wallet, the feeds export, and the agent's state files (report sequence, anti-
rollback state, run lock, the file-tree backend's checkpoint, the daemon's state and its outbox of
queued reports): the write fails with a clear
error that names the file, and nothing is corrupted: every file holds its previous content, no
temporary file is left, and what the process holds in memory still agrees with the disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from patchledger.agent.backends import FileTreeBackend
from patchledger.agent.daemon import DaemonState
from patchledger.agent.lock import LockFile
from patchledger.agent.outbox import Outbox
from patchledger.agent.rollback_guard import RollbackGuard
from patchledger.agent.sequence import SequenceFile
from patchledger.app.cli import main
from patchledger.app.fabric.checkpoint import FileCheckpointer
from patchledger.app.fabric.errors import CheckpointError, WalletError
from patchledger.app.fabric.wallet import ScryptParams, Wallet
from patchledger.common.durable import write_atomic
from tests.reliability.storage import FAULTS, fill, small_tmpfs, snapshot
from tests.support.fabric.pki import TestCA
from tests.unit.agent.agent_support import make_tar
from tests.unit.lifecycle.lifecycle_support import ITOPS, host_identity, report

pytestmark = pytest.mark.reliability

FAST = ScryptParams(n=2**10, r=8, p=1)


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "fs") as mounted:
        yield mounted


@pytest.fixture(params=sorted(FAULTS))
def fault(request: pytest.FixtureRequest) -> Callable[[Path], None]:
    return FAULTS[request.param]


def _names_file(exc: BaseException, path: Path) -> None:
    assert str(path) in str(exc), f"the error does not name {path}: {exc}"


def test_the_durable_write(fs: Path, fault: Callable[[Path], None]) -> None:
    path = fs / "state" / "state.json"
    write_atomic(path, '{"old": true}')
    before = snapshot(fs)
    fault(fs)
    with pytest.raises(OSError) as caught:
        write_atomic(path, '{"new": true}' * 100)
    assert caught.value.filename == str(path)
    _names_file(caught.value, path)
    assert snapshot(fs) == before


def test_a_new_file_in_a_missing_directory(fs: Path, fault: Callable[[Path], None]) -> None:
    fault(fs)
    path = fs / "new" / "dir" / "file.json"
    with pytest.raises(OSError) as caught:
        write_atomic(path, "{}")
    _names_file(caught.value, path)
    assert snapshot(fs) == {}


def test_the_fabric_event_checkpoint(fs: Path, fault: Callable[[Path], None]) -> None:
    path = fs / "events.checkpoint"
    checkpointer = FileCheckpointer(path)
    checkpointer.checkpoint_transaction(7, "tx-a", 0)
    before = snapshot(fs)
    fault(fs)
    with pytest.raises(CheckpointError) as caught:
        checkpointer.checkpoint_block(7)
    _names_file(caught.value, path)
    assert snapshot(fs) == before
    # memory and disk still agree: the consumer resumes where the file says
    assert (checkpointer.block_number, checkpointer.transaction_id) == (7, "tx-a")
    reread = FileCheckpointer(path)
    assert (reread.block_number, reread.transaction_id, reread.transaction_index) == (7, "tx-a", 0)


def test_the_wallet(fs: Path, fault: Callable[[Path], None]) -> None:
    ca = TestCA("SecOpsMSP")
    alice, bob = ca.issue("alice"), ca.issue("bob")
    wallet = Wallet(fs / "wallet", "pw", scrypt=FAST)
    wallet.put("alice", alice.identity, alice.signer)
    before = snapshot(fs)
    fault(fs)
    with pytest.raises(WalletError) as replaced:
        wallet.put("alice", bob.identity, bob.signer)
    _names_file(replaced.value, fs / "wallet" / "alice.id")
    with pytest.raises(WalletError) as added:
        wallet.put("bob", bob.identity, bob.signer)
    _names_file(added.value, fs / "wallet" / "bob.id")
    assert snapshot(fs) == before
    identity, signer = wallet.get("alice")
    assert identity == alice.identity and signer.matches(identity.certificate)
    assert wallet.labels() == ["alice"]


def test_deleting_from_a_read_only_wallet(fs: Path) -> None:
    ca = TestCA("SecOpsMSP")
    alice = ca.issue("alice")
    wallet = Wallet(fs / "wallet", "pw", scrypt=FAST)
    wallet.put("alice", alice.identity, alice.signer)
    FAULTS["read-only"](fs)
    with pytest.raises(WalletError, match=r"cannot delete wallet entry .*alice\.id"):
        wallet.remove("alice")
    assert wallet.get("alice")[0] == alice.identity


def test_the_feeds_export(fs: Path, fault: Callable[[Path], None], feeds_dir: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out = fs / "export.json"
    out.write_text('{"previous": "export"}')
    before = snapshot(fs)
    fault(fs)
    code = main(["feeds", "import", str(feeds_dir / "kev"), "--out", str(out), "--quiet"])
    assert code == 2
    error = capsys.readouterr().err
    assert f"cannot write {out}" in error and error.count("\n") == 1
    assert snapshot(fs) == before


def test_the_agent_report_sequence(fs: Path, fault: Callable[[Path], None]) -> None:
    path = fs / "state" / "sequence.json"
    counter = SequenceFile(path)
    assert counter.reserve(2) == (1, 2)
    before = snapshot(fs)
    fault(fs)
    with pytest.raises(OSError) as caught:
        counter.reserve(3)
    assert caught.value.filename == str(path)
    assert snapshot(fs) == before
    assert counter.last() == 2  # no number was handed out, none is lost or reused


def test_the_agent_anti_rollback_state(fs: Path, fault: Callable[[Path], None]) -> None:
    path = fs / "state" / "installed.json"
    guard = RollbackGuard(path)
    guard.record("P-1", ["pkg:deb/debian/xz-utils"], [], rollout_id="R-1", now=1)
    before = snapshot(fs)
    fault(fs)
    with pytest.raises(OSError) as caught:
        guard.record("P-2", ["pkg:deb/debian/xz-utils"], ["P-1"], rollout_id="R-2", now=2)
    assert caught.value.filename == str(path)
    assert snapshot(fs) == before
    state = guard.load()
    assert state.targets["pkg:deb/debian/xz-utils"]["patch_id"] == "P-1"
    assert state.retired == frozenset()


def test_the_agent_run_lock(fs: Path, fault: Callable[[Path], None]) -> None:
    path = fs / "state" / ".target.lock"
    path.parent.mkdir()
    fault(fs)
    with pytest.raises(OSError) as caught, LockFile(path):
        pass
    assert caught.value.filename == str(path)


def test_the_agent_lock_is_not_held_after_a_failed_take(fs: Path) -> None:
    """On a full disk the pid cannot be written: the run stops and the lock is released."""
    path = fs / ".target.lock"
    fill(fs)
    with pytest.raises(OSError), LockFile(path):
        pass
    fill(fs, leave_pages=1)  # room again: the next run takes the lock
    with LockFile(path) as held:
        assert held.path == path


@pytest.mark.parametrize("free_pages", [0, 2, 4])
def test_the_agent_apply_on_a_filling_disk(fs: Path, free_pages: int) -> None:
    """The backend's checkpoint and staging copy on a disk with no, or a few pages left: the
    step that finds the disk full fails naming a file, and recovery leaves the target exactly
    as it was, with no checkpoint, staging or kept copy left behind."""
    target = fs / "target"
    (target / "etc").mkdir(parents=True)
    for index in range(4):
        (target / "etc" / f"app{index}.conf").write_bytes(f"setting={index}\n".encode() * 200)
    artifact = make_tar({f"etc/app{i}.conf": b"setting=new\n" * 300 for i in range(4)})
    before = snapshot(fs)
    backend = FileTreeBackend(target)
    fill(fs, leave_pages=free_pages)
    with pytest.raises(OSError) as caught:
        backend.stage(artifact, "P-9")
    assert str(fs) in str(caught.value)
    recovery = backend.recover()
    assert recovery.action in ("none", "discarded-staging")
    assert snapshot(fs) == before
    assert backend.checkpoint() is None


def test_the_agent_daemon_state(fs: Path, fault: Callable[[Path], None]) -> None:
    path = fs / "state" / "daemon.json"
    DaemonState(etag='"v1"', settled={"R-1/P-1": "VERIFIED"}, failures=0).save(path)
    before = snapshot(fs)
    fault(fs)
    with pytest.raises(OSError) as caught:
        DaemonState(etag='"v2"', settled={"R-1/P-1": "VERIFIED", "R-2/P-2": "APPLIED"}).save(path)
    assert caught.value.filename == str(path)
    assert snapshot(fs) == before
    assert DaemonState.load(path).etag == '"v1"'


def test_the_agent_outbox(fs: Path, fault: Callable[[Path], None]) -> None:
    """Queued reports stay whole and queued; a report that cannot be queued is named."""
    host = host_identity(ITOPS, "h1")
    outbox = Outbox(fs / "state" / "outbox")
    first = [report(host, 1, "APPLIED"), report(host, 2, "VERIFIED")]
    outbox.add(first)
    before = snapshot(fs)
    fault(fs)
    with pytest.raises(OSError) as caught:
        outbox.add([report(host, 3, "APPLIED", rollout_id="R-2")])
    assert caught.value.filename == str(fs / "state" / "outbox" / f"{3:012d}.json")
    assert snapshot(fs) == before
    assert outbox.pending() == first
    assert outbox.deployments() == {"R-1/P-1": "VERIFIED"}
