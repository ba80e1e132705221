"""One assignment, end to end: verify, apply inside the maintenance window, check health, roll
back on failure, and produce the signed deployment reports for ``ReportDeployments``.

Order (the I/O — files, clock, subprocess, the app relaying attestations — is given in, so
tests drive every branch)::

    dry run:  verify -> plan                     changes nothing, signs nothing
    run:      lock -> recover an interrupted run -> verify
              refused          -> report FAILED ("refused: <why>"), nothing applied
              window closed    -> DEFERRED, no report (the next run retries); the agent's
                                  configured window and the host record's attested window
                                  must both be open
              apply (under an ErrorHandler: an exception or a signal reverts the change)
              health check ok  -> commit, report VERIFIED (APPLIED when no check is set)
              health check bad -> rollback, report FAILED then ROLLED_BACK
              apply failed     -> reverted, report FAILED

*Verify* is: pick a fresh nonce, ask the app (``attestor``) for ``AttestDeployment(host_id,
rollout_id, nonce)`` endorsed by peers of several organizations, verify it offline
(:func:`agent.attestation.verify_deployment`: endorsements, the attested patch, policy,
quorum, approvals, artifact, rollout and wave), then the host's anti-rollback state
(:mod:`agent.rollback_guard`). Nothing the app serves is believed without that attestation.
After a committed change the anti-rollback state records the patch.

Reports are numbered from the host's durable sequence counter and signed with the host key.
The deployment state machine on the ledger allows SCHEDULED -> FAILED -> ROLLED_BACK and
SCHEDULED -> VERIFIED, so each list is accepted in order in one batch.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.agent.attestation import DeploymentAttestation, verify_deployment
from patchledger.agent.backends.base import ApplyPlan, InstallerBackend, Recovery
from patchledger.agent.backends.filetree import FileTreeBackend
from patchledger.agent.config import AgentConfig
from patchledger.agent.errors import BackendError, ConfigError, VerificationError
from patchledger.agent.guard import ErrorHandler
from patchledger.agent.health import CommandCheck, HealthCheck, HealthResult
from patchledger.agent.report import ReportContext, signed_report
from patchledger.agent.rollback_guard import RollbackGuard
from patchledger.agent.sequence import SequenceFile
from patchledger.agent.verify import ArtifactFacts, Verdict
from patchledger.agent.window import parse_window
from patchledger.chaincode.lifecycle.trust import OrgTrust

__all__ = ["Assignment", "Attestor", "Outcome", "RunResult", "run_assignment"]

#: Relays ``AttestDeployment(host_id, rollout_id, nonce)`` to the peers and returns the
#: endorsed-proposal bundle (see :mod:`agent.attestation`); the app's
#: ``app.fabric.attest.attest_deployment`` behind whatever transport reaches it.
Attestor = Callable[[str, str, str], Mapping[str, Any]]


@dataclass(frozen=True)
class Assignment:
    """What the agent was asked to do, with the artifact it downloaded. Nothing else is taken
    from the app: the patch, its approvals, the policy and the rollout come from the endorsed
    attestation.

    Attributes:
        rollout_id: the rollout the deployment belongs to.
        patch_id: the patch to apply.
        artifact: the downloaded artifact bytes.
    """

    rollout_id: str
    patch_id: str
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
        attestation: the verified attestation, when verification passed.
    """

    outcome: Outcome
    detail: str
    reports: tuple[dict[str, Any], ...] = ()
    plan: ApplyPlan | None = None
    verdict: Verdict | None = None
    recovery: Recovery | None = None
    attestation: DeploymentAttestation | None = None


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


def _new_nonce() -> str:
    return secrets.token_hex(32)


@dataclass(frozen=True)
class _Ledger:
    """How the run reaches the ledger: the attestor and the nonce source."""

    attestor: Attestor
    nonces: Callable[[], str]


def _verify(
    config: AgentConfig, job: Assignment, roots: OrgTrust, ledger: _Ledger, now: int
) -> DeploymentAttestation:
    nonce = ledger.nonces()
    bundle = ledger.attestor(config.host_id, job.rollout_id, nonce)
    attested = verify_deployment(
        bundle,
        channel=config.channel,
        chaincode=config.chaincode,
        host_id=config.host_id,
        rollout_id=job.rollout_id,
        patch_id=job.patch_id,
        nonce=nonce,
        artifact=_facts(job.artifact),
        roots=roots,
        now=now,
        min_quorum=config.min_quorum,
        min_endorsers=config.min_endorsers,
    )
    RollbackGuard(config.installed_file).check(job.patch_id, attested.verdict.patch.targets)
    return attested


def _closed_window(config: AgentConfig, attested: DeploymentAttestation, now: int) -> str:
    """Why the change must wait ("" when both windows are open)."""
    if not config.window.is_open(now):
        return f"maintenance window {config.maintenance_window!r} is closed"
    if attested.maintenance_window:
        try:
            ledger_window = parse_window(attested.maintenance_window)
        except ConfigError as exc:
            return f"the host record's maintenance window is unreadable: {exc}"
        if not ledger_window.is_open(now):
            return (f"the host record's maintenance window {attested.maintenance_window!r} is"
                    " closed")
    return ""


def _record(config: AgentConfig, job: Assignment, attested: DeploymentAttestation,
            outcome: Outcome, now: int) -> None:
    if outcome in (Outcome.VERIFIED, Outcome.APPLIED):
        RollbackGuard(config.installed_file).record(
            job.patch_id, attested.verdict.patch.targets, attested.supersedes_chain,
            rollout_id=job.rollout_id, now=now)


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
    attestor: Attestor,
    backend: InstallerBackend | None = None,
    health: HealthCheck | None = None,
    clock: Callable[[], int] = _wall_clock,
    nonces: Callable[[], str] = _new_nonce,
) -> RunResult:
    """Run one assignment (module docstring).

    Args:
        config: the agent's settings.
        job: the assignment and the downloaded artifact.
        roots: the organization roots pinned at enrollment.
        host_key: the host's enrollment key (signs the reports).
        attestor: relays ``AttestDeployment`` to the peers; returns the endorsed bundle.
        backend: the installer backend, any :class:`~agent.backends.base.InstallerBackend`
            (default: a file tree at ``config.target``).
        health: the health check (default: ``config.health_command`` when set, else none).
        clock: seconds since the epoch, UTC.
        nonces: the source of fresh nonces (256 random bits, hex, by default).

    Returns:
        The :class:`RunResult`; refusals and failures are results, not exceptions.

    Raises:
        LockError: another run holds the lock.
        Interrupted: a signal stopped the run (the change was reverted first).
        ConfigError: the sequence counter or the anti-rollback state file is corrupt.
        OSError: the state directory cannot be written.
        Exception: whatever ``attestor`` raises (the app could not be reached); nothing was
            applied.
    """
    backend = backend or FileTreeBackend(config.target)
    if health is None and config.health_command:
        health = CommandCheck(config.health_command, config.health_timeout)
    ledger = _Ledger(attestor, nonces)
    if config.dry_run:
        return _dry_run(config, job, roots, ledger, backend, clock())
    with backend.lock():
        recovery = backend.recover()
        now = clock()
        try:
            attested = _verify(config, job, roots, ledger, now)
        except VerificationError as exc:
            detail = f"refused: {exc}"
            reports = _reports(config, job, host_key, Outcome.REFUSED, detail,
                               inventory=backend.inventory_digest(), now=now)
            return RunResult(Outcome.REFUSED, detail, reports, recovery=recovery)
        closed = _closed_window(config, attested, now)
        if closed:
            return RunResult(Outcome.DEFERRED, closed, verdict=attested.verdict,
                             recovery=recovery, attestation=attested)
        outcome, detail, plan = _apply(backend, job, health)
        _record(config, job, attested, outcome, clock())
        reports = _reports(config, job, host_key, outcome, detail,
                           inventory=backend.inventory_digest(), now=clock())
        return RunResult(outcome, detail, reports, plan, attested.verdict, recovery, attested)


def _dry_run(
    config: AgentConfig,
    job: Assignment,
    roots: OrgTrust,
    ledger: _Ledger,
    backend: InstallerBackend,
    now: int,
) -> RunResult:
    try:
        attested = _verify(config, job, roots, ledger, now)
    except VerificationError as exc:
        return RunResult(Outcome.REFUSED, f"dry run: would refuse: {exc}")
    try:
        plan = backend.plan(job.artifact)
    except BackendError as exc:
        return RunResult(Outcome.FAILED, f"dry run: would fail: {exc}",
                         verdict=attested.verdict, attestation=attested)
    closed = _closed_window(config, attested, now)
    state = f"closed ({closed})" if closed else "open"
    detail = (
        f"dry run: would apply {len(plan.added)} new and {len(plan.replaced)} changed file(s);"
        f" maintenance window {state}"
    )
    return RunResult(Outcome.PLANNED, detail, plan=plan, verdict=attested.verdict,
                     attestation=attested)
