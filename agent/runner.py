"""One assignment, end to end: verify, apply inside the maintenance window, check health, roll
back on failure, and produce the signed deployment reports for ``ReportDeployments``.

Order (the I/O — files, clock, subprocess — is given in, so tests drive every branch)::

    dry run:  verify -> plan                     changes nothing, signs nothing
    run:      lock -> recover an interrupted run -> verify
              refused          -> report FAILED ("refused: <why>"), nothing applied
              window closed    -> DEFERRED, no report (the next run retries)
              apply (under an ErrorHandler: an exception or a signal reverts the change)
              health check ok  -> commit, report VERIFIED (APPLIED when no check is set)
              health check bad -> rollback, report FAILED then ROLLED_BACK
              apply failed     -> reverted, report FAILED

Reports are numbered from the host's durable sequence counter and signed with the host key.
The deployment state machine on the ledger allows SCHEDULED -> FAILED -> ROLLED_BACK and
SCHEDULED -> VERIFIED, so each list is accepted in order in one batch.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.agent.backends.base import ApplyPlan, InstallerBackend, Recovery
from patchledger.agent.backends.filetree import FileTreeBackend
from patchledger.agent.config import AgentConfig
from patchledger.agent.errors import BackendError, VerificationError
from patchledger.agent.guard import ErrorHandler
from patchledger.agent.health import CommandCheck, HealthCheck, HealthResult
from patchledger.agent.report import ReportContext, signed_report
from patchledger.agent.sequence import SequenceFile
from patchledger.agent.verify import ArtifactFacts, Verdict, verify_patch
from patchledger.chaincode.lifecycle.policy import Policy
from patchledger.chaincode.lifecycle.trust import OrgTrust

__all__ = ["Assignment", "Outcome", "RunResult", "run_assignment"]


@dataclass(frozen=True)
class Assignment:
    """What the agent was asked to do, with what it fetched for it.

    Attributes:
        rollout_id: the rollout the deployment belongs to.
        patch_id: the patch to apply.
        bundle: ``GetApprovalBundle(patch_id)``'s answer.
        policy: the approval policy record.
        artifact: the downloaded artifact bytes.
    """

    rollout_id: str
    patch_id: str
    bundle: Mapping[str, Any]
    policy: Policy
    artifact: bytes


class Outcome(StrEnum):
    """How a run ended."""

    VERIFIED = "VERIFIED"
    APPLIED = "APPLIED"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"
    REFUSED = "REFUSED"
    DEFERRED = "DEFERRED"
    PLANNED = "PLANNED"


@dataclass(frozen=True)
class RunResult:
    """The run's outcome and the signed reports to send (in order, one batch).

    Attributes:
        outcome: how the run ended.
        detail: a one-line explanation (the refusal, the health check's output, ...).
        reports: ``ReportDeployments`` elements; empty for DEFERRED and dry runs.
        plan: the changes (planned in a dry run, made otherwise), when known.
        verdict: the verification verdict, when it passed.
        recovery: what the recovery routine did at the start of the run.
    """

    outcome: Outcome
    detail: str
    reports: tuple[dict[str, Any], ...] = ()
    plan: ApplyPlan | None = None
    verdict: Verdict | None = None
    recovery: Recovery | None = None


#: Ledger outcomes reported for each run outcome, in order.
_REPORTED: dict[Outcome, tuple[str, ...]] = {
    Outcome.VERIFIED: ("VERIFIED",),
    Outcome.APPLIED: ("APPLIED",),
    Outcome.ROLLED_BACK: ("FAILED", "ROLLED_BACK"),
    Outcome.FAILED: ("FAILED",),
    Outcome.REFUSED: ("FAILED",),
}


def _wall_clock() -> int:
    return int(time.time())


def _facts(artifact: bytes) -> ArtifactFacts:
    return ArtifactFacts(hashlib.sha256(artifact).hexdigest(), len(artifact))


def _verify(
    config: AgentConfig, job: Assignment, roots: OrgTrust, now: int
) -> Verdict:
    return verify_patch(
        patch_id=job.patch_id,
        bundle=job.bundle,
        artifact=_facts(job.artifact),
        policy=job.policy,
        roots=roots,
        now=now,
        min_quorum=config.min_quorum,
    )


def _checked(health: HealthCheck, backend: InstallerBackend) -> HealthResult:
    try:
        return health(backend.target)
    except Exception as exc:  # a failing check is an unhealthy host, not a crash
        return HealthResult(False, f"health check raised {type(exc).__name__}: {exc}")


def _apply(
    backend: InstallerBackend, job: Assignment, health: HealthCheck | None
) -> tuple[Outcome, str, ApplyPlan | None]:
    try:
        with ErrorHandler(backend.recover):
            plan = backend.stage(job.artifact, job.patch_id)
            backend.apply()
            backend.verify()
            if health is None:
                backend.commit()
                return Outcome.APPLIED, "applied; no health check configured", plan
            result = _checked(health, backend)
            if result.healthy:
                backend.commit()
                return Outcome.VERIFIED, f"healthy: {result.detail}".rstrip(": "), plan
            backend.rollback()
            return Outcome.ROLLED_BACK, f"health check failed, rolled back: {result.detail}", plan
    except (BackendError, OSError) as exc:
        return Outcome.FAILED, f"apply failed, change reverted: {exc}", None


def _reports(
    config: AgentConfig,
    job: Assignment,
    key: ec.EllipticCurvePrivateKey,
    outcome: Outcome,
    detail: str,
    *,
    inventory: str,
    now: int,
) -> tuple[dict[str, Any], ...]:
    states = _REPORTED.get(outcome, ())
    numbers = SequenceFile(config.sequence_file).reserve(len(states)) if states else ()
    context = ReportContext(config.host_id, job.rollout_id, job.patch_id)
    return tuple(
        signed_report(key, context, outcome=state, sequence=number,
                      inventory_sha256=inventory, reported_at=now, detail=detail)
        for state, number in zip(states, numbers, strict=True)
    )


def run_assignment(
    config: AgentConfig,
    job: Assignment,
    *,
    roots: OrgTrust,
    host_key: ec.EllipticCurvePrivateKey,
    backend: InstallerBackend | None = None,
    health: HealthCheck | None = None,
    clock: Callable[[], int] = _wall_clock,
) -> RunResult:
    """Run one assignment (module docstring).

    Args:
        config: the agent's settings.
        job: the assignment and what was fetched for it.
        roots: the organization roots pinned at enrollment.
        host_key: the host's enrollment key (signs the reports).
        backend: the installer backend, any :class:`~agent.backends.base.InstallerBackend`
            (default: a file tree at ``config.target``).
        health: the health check (default: ``config.health_command`` when set, else none).
        clock: seconds since the epoch, UTC.

    Returns:
        The :class:`RunResult`; refusals and failures are results, not exceptions.

    Raises:
        LockError: another run holds the lock.
        Interrupted: a signal stopped the run (the change was reverted first).
        ConfigError: the sequence counter file is corrupt.
        OSError: the state directory cannot be written.
    """
    backend = backend or FileTreeBackend(config.target)
    if health is None and config.health_command:
        health = CommandCheck(config.health_command, config.health_timeout)
    if config.dry_run:
        return _dry_run(config, job, roots, backend, clock())
    with backend.lock():
        recovery = backend.recover()
        now = clock()
        try:
            verdict = _verify(config, job, roots, now)
        except VerificationError as exc:
            detail = f"refused: {exc}"
            reports = _reports(config, job, host_key, Outcome.REFUSED, detail,
                               inventory=backend.inventory_digest(), now=now)
            return RunResult(Outcome.REFUSED, detail, reports, recovery=recovery)
        if not config.window.is_open(now):
            detail = f"maintenance window {config.maintenance_window!r} is closed"
            return RunResult(Outcome.DEFERRED, detail, verdict=verdict, recovery=recovery)
        outcome, detail, plan = _apply(backend, job, health)
        reports = _reports(config, job, host_key, outcome, detail,
                           inventory=backend.inventory_digest(), now=clock())
        return RunResult(outcome, detail, reports, plan, verdict, recovery)


def _dry_run(
    config: AgentConfig, job: Assignment, roots: OrgTrust, backend: InstallerBackend, now: int
) -> RunResult:
    try:
        verdict = _verify(config, job, roots, now)
    except VerificationError as exc:
        return RunResult(Outcome.REFUSED, f"dry run: would refuse: {exc}")
    try:
        plan = backend.plan(job.artifact)
    except BackendError as exc:
        return RunResult(Outcome.FAILED, f"dry run: would fail: {exc}", verdict=verdict)
    state = "open" if config.window.is_open(now) else "closed"
    detail = (
        f"dry run: would apply {len(plan.added)} new and {len(plan.replaced)} changed file(s);"
        f" maintenance window {state}"
    )
    return RunResult(Outcome.PLANNED, detail, plan=plan, verdict=verdict)
