"""Rolling back on order: the host undoes a patch it applied in a rollout that was halted or
rolled back, or whose patch was revoked, and reports ROLLED_BACK.

The order comes from the host's organization's app, which the agent does not believe (an app
could otherwise undo any patch on any host). As for an assignment (:mod:`agent.runner`), the
agent asks for a fresh ``AttestDeployment(host_id, rollout_id, nonce)`` endorsed by peers of
several organizations (its own or a batch holding its nonce) and verifies it offline
(:func:`agent.attestation.verify_deployment_answer`,
at least ``min_endorsers`` distinct organizations). It rolls back only when the attested state
says so: the rollout is HALTED or ROLLED_BACK, or the patch is REVOKED; the host's deployment
of that rollout is not ROLLED_BACK already; and the host's own anti-rollback state shows that
this patch, from this rollout, is what it installed (the deployment may still read SCHEDULED
when the ledger refused the host's VERIFIED report because the rollout had stopped). The kept
copy then replaces the target (the backend's ``rollback``) and one signed ROLLED_BACK report
is produced.

Refusals are results (``REFUSED`` with the reason, nothing changed, no report); a run whose
lock is held raises as :func:`agent.runner.run_assignment` does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.agent.attestation import require_endorsers, verify_deployment_answer
from patchledger.agent.backends.base import InstallerBackend
from patchledger.agent.backends.filetree import FileTreeBackend
from patchledger.agent.config import AgentConfig
from patchledger.agent.errors import AttestationError, BackendError
from patchledger.agent.report import ReportContext, signed_report
from patchledger.agent.rollback_guard import RollbackGuard
from patchledger.agent.runner import Attestor, Outcome, RunResult
from patchledger.agent.sequence import SequenceFile
from patchledger.chaincode.lifecycle.trust import OrgTrust

__all__ = ["run_rollback_order"]

#: Attested states in which an order to roll back is obeyed.
_STOPPED_ROLLOUT = frozenset({"HALTED", "ROLLED_BACK"})


def _why_not(config: AgentConfig, rollout_id: str, patch_id: str, state: dict[str, object]
             ) -> str:
    """Why the attested ``state`` does not order this rollback ("" when it does)."""
    rollout = state.get("rollout")
    patch = state.get("patch")
    deployment = state.get("deployment")
    if not (isinstance(rollout, dict) and isinstance(patch, dict)
            and isinstance(deployment, dict)):
        return "the attestation lacks the rollout, patch or deployment record"
    if rollout.get("patch_id") != patch_id or deployment.get("host_id") != config.host_id:
        return f"the attested rollout {rollout_id!r} is not this host's deployment of {patch_id!r}"
    if rollout.get("status") not in _STOPPED_ROLLOUT and patch.get("status") != "REVOKED":
        return (f"rollout {rollout_id!r} is {rollout.get('status')} and patch {patch_id!r} is "
                f"{patch.get('status')} on the ledger: nothing orders a rollback")
    if deployment.get("status") == "ROLLED_BACK":
        return "the deployment is already ROLLED_BACK"
    installed = RollbackGuard(config.installed_file).load().targets.values()
    if not any(t.get("patch_id") == patch_id and t.get("rollout_id") == rollout_id
               for t in installed):
        return f"this host did not install {patch_id!r} in rollout {rollout_id!r}"
    return ""


def _cause(state: dict[str, object]) -> str:
    rollout, patch = state.get("rollout"), state.get("patch")
    r = rollout.get("status") if isinstance(rollout, dict) else None
    p = patch.get("status") if isinstance(patch, dict) else None
    return f"rollout {r}, patch {p}"


def run_rollback_order(
    config: AgentConfig,
    rollout_id: str,
    patch_id: str,
    *,
    roots: OrgTrust,
    host_key: ec.EllipticCurvePrivateKey,
    attestor: Attestor,
    backend: InstallerBackend | None = None,
    clock: Callable[[], int] = lambda: int(time.time()),
    nonces: Callable[[], str] = lambda: secrets.token_hex(32),
) -> RunResult:
    """Obey an order to roll ``patch_id`` of ``rollout_id`` back (module docstring).

    Returns:
        ``ROLLED_BACK`` with the signed report, or ``REFUSED``/``FAILED`` with the reason.

    Raises:
        LockError: another run holds the lock.
        ConfigError: the sequence counter or the anti-rollback state is corrupt.
        Exception: whatever ``attestor`` raises (nothing was changed).
    """
    backend = backend or FileTreeBackend(config.target)
    with backend.lock():
        recovery = backend.recover()
        nonce = nonces()
        now = clock()
        try:
            endorsed, state = verify_deployment_answer(
                attestor(config.host_id, rollout_id, nonce), channel=config.channel,
                chaincode=config.chaincode, host_id=config.host_id, rollout_id=rollout_id,
                nonce=nonce, roots=roots, now=now)
            require_endorsers(endorsed, config.min_endorsers,
                              f"the rollback order for rollout {rollout_id!r}")
        except AttestationError as exc:
            return RunResult(Outcome.REFUSED, f"rollback refused: {exc}", recovery=recovery)
        if state.get("nonce") != nonce or state.get("host_id") != config.host_id:
            return RunResult(Outcome.REFUSED, "rollback refused: the attestation answers "
                             "another question", recovery=recovery)
        why = _why_not(config, rollout_id, patch_id, state)
        cause = _cause(state)
        if why:
            return RunResult(Outcome.REFUSED, f"rollback refused: {why}", recovery=recovery)
        try:
            backend.rollback()
        except (BackendError, OSError) as exc:
            return RunResult(Outcome.FAILED, f"rollback failed: {exc}", recovery=recovery)
        (number,) = SequenceFile(config.sequence_file).reserve(1)
        report = signed_report(
            host_key, ReportContext(config.host_id, rollout_id, patch_id), outcome="ROLLED_BACK",
            sequence=number, inventory_sha256=backend.inventory_digest(), reported_at=clock(),
            detail=f"rolled back on order: {cause}")
        return RunResult(Outcome.ROLLED_BACK, "rolled back on order", (report,),
                         recovery=recovery)
