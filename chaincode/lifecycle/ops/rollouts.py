"""CreateRollout, AdvanceRollout, PauseRollout, ResumeRollout, HaltRollout, CompleteRollout,
RollBackRollout, and DecideRollout (any of those moves with its reason recorded).

A rollout belongs to the caller's organization and may only include that organization's
enrolled hosts (their deployment records need that organization's endorsement). Waves are given
as explicit host lists and/or group selectors and are resolved when the rollout is created; a
host selected by several waves stays in the first. Wave gates are described in
:mod:`chaincode.lifecycle.rollout`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from patchledger.chaincode.lifecycle.authz import authorize, require_org
from patchledger.chaincode.lifecycle.deployment import SETTLED, Deployment
from patchledger.chaincode.lifecycle.errors import (
    AlreadyExistsError,
    PreconditionError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.fields import id_tuple, identifier, integer, text
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger
from patchledger.chaincode.lifecycle.ops.patches import release
from patchledger.chaincode.lifecycle.patch import DEPLOYABLE, Patch
from patchledger.chaincode.lifecycle.policy import DEFAULT_POLICY_ID, Policy
from patchledger.chaincode.lifecycle.rollout import MACHINE, Rollout, Wave


def _resolve_wave(
    tx: TxLedger, index: int, spec: Mapping[str, Any], taken: set[str], hosts: list[Host]
) -> Wave:
    if not isinstance(spec, Mapping):
        raise ValidationError(f"waves[{index}]", "must be an object with hosts and/or groups")
    explicit = id_tuple(f"waves[{index}].hosts", spec.get("hosts", []))
    groups = id_tuple(f"waves[{index}].groups", spec.get("groups", []))
    by_id = {h.host_id: h for h in hosts}
    selected: list[str] = []
    for host_id in explicit:
        host = by_id.get(host_id) or tx.load(Host, host_id)
        if host.owner_msp != tx.caller.msp_id or host.status != "ENROLLED":
            raise ValidationError(
                f"waves[{index}].hosts", f"{host_id} is not an enrolled host of {tx.caller.msp_id}"
            )
        if host_id in taken:
            raise ValidationError(f"waves[{index}].hosts", f"{host_id} is already in a wave")
        selected.append(host_id)
    for host in hosts:
        if set(groups) & set(host.groups) and host.host_id not in taken | set(selected):
            selected.append(host.host_id)
    if not selected:
        raise ValidationError(f"waves[{index}]", "selects no enrolled host")
    taken |= set(selected)
    return Wave(tuple(selected), groups)


def create_rollout(
    tx: TxLedger,
    rollout_id: str,
    patch_id: str,
    waves: Sequence[Mapping[str, Any]],
    *,
    failure_threshold_pct: int | None = None,
    soak_seconds: int | None = None,
) -> list[Change]:
    """Plan a rollout of an APPROVED (or RELEASED) patch over the caller's hosts.

    Thresholds default to the policy's rollout defaults.

    Raises:
        AuthorizationError: the caller is not an operator.
        ValidationError: malformed waves, a host that is not the caller's enrolled host, an
            empty wave, bad thresholds.
        NotFoundError: unknown patch, host or policy.
        PreconditionError: the patch is not APPROVED or RELEASED.
        AlreadyExistsError: the rollout id is taken.
    """
    authorize(tx.caller, "create_rollout")
    identifier("rollout_id", rollout_id)
    patch = tx.load(Patch, patch_id)
    _require_deployable(patch)
    if tx.find(Rollout, rollout_id) is not None:
        raise AlreadyExistsError("Rollout", rollout_id)
    if not isinstance(waves, Sequence) or not waves:
        raise ValidationError("waves", "must be a non-empty list")
    policy = tx.load(Policy, DEFAULT_POLICY_ID)
    if failure_threshold_pct is None:
        failure_threshold_pct = policy.failure_threshold_pct
    own = [h for h in tx.scan(Host) if h.owner_msp == tx.caller.msp_id and h.status == "ENROLLED"]
    taken: set[str] = set()
    resolved = tuple(_resolve_wave(tx, i, w, taken, own) for i, w in enumerate(waves))
    rollout = Rollout(
        rollout_id=rollout_id,
        patch_id=patch_id,
        owner_msp=tx.caller.msp_id,
        waves=resolved,
        failure_threshold_pct=integer("failure_threshold_pct", failure_threshold_pct, maximum=100),
        soak_seconds=policy.soak_seconds if soak_seconds is None else soak_seconds,
    )
    tx.save(rollout, owner_org=rollout.owner_msp)
    return tx.changes


def _require_deployable(patch: Patch) -> None:
    if patch.status not in DEPLOYABLE:
        raise PreconditionError(
            "Patch", patch.patch_id, patch.status, "only APPROVED or RELEASED patches roll out"
        )


def _load_own(tx: TxLedger, operation: str, rollout_id: str) -> Rollout:
    authorize(tx.caller, operation)
    rollout = tx.load(Rollout, rollout_id)
    require_org(tx.caller, rollout.owner_msp, f"rollout {rollout_id!r}")
    return rollout


def _check_gate(tx: TxLedger, rollout: Rollout) -> None:
    wave = rollout.current_wave
    deployments = [d for d in tx.scan(Deployment, rollout.rollout_id) if d.wave == wave]
    pending = [d.host_id for d in deployments if d.status not in SETTLED]
    rid = rollout.rollout_id
    if pending:
        raise PreconditionError(
            "Rollout", rid, rollout.status, f"wave {wave} not settled: {len(pending)} pending"
        )
    failed = sum(1 for d in deployments if d.status != "VERIFIED")
    if failed * 100 > rollout.failure_threshold_pct * len(deployments):
        raise PreconditionError(
            "Rollout",
            rid,
            rollout.status,
            f"wave {wave}: {failed}/{len(deployments)} failed, above "
            f"{rollout.failure_threshold_pct}%; halt it",
        )
    if tx.now < rollout.wave_started_at + rollout.soak_seconds:
        raise PreconditionError(
            "Rollout",
            rid,
            rollout.status,
            f"wave {wave} soaks until {rollout.wave_started_at + rollout.soak_seconds}",
        )


def advance_rollout(tx: TxLedger, rollout_id: str, *, reason: str = "") -> list[Change]:
    """Start the first wave (PLANNED) or the next one (RUNNING, gate passed).

    Starting the first wave releases the patch. Each started wave schedules one deployment per
    host (hosts decommissioned since planning are skipped).

    Raises:
        AuthorizationError: not an operator of the rollout's organization.
        NotFoundError: unknown rollout.
        TransitionError: the rollout is PAUSED, HALTED, COMPLETED or ROLLED_BACK.
        PreconditionError: the patch is no longer deployable, the last wave is running, or the
            current wave is not settled, failed too much or has not soaked.
    """
    rollout = _load_own(tx, "advance_rollout", rollout_id)
    MACHINE.check_from(
        rollout_id, rollout.status, "RUNNING", allowed_from=frozenset({"PLANNED", "RUNNING"})
    )
    patch = tx.load(Patch, rollout.patch_id)
    _require_deployable(patch)
    if rollout.status == "RUNNING":
        if rollout.is_last_wave:
            raise PreconditionError(
                "Rollout", rollout_id, "RUNNING", "the last wave is running; complete it"
            )
        _check_gate(tx, rollout)
    else:
        release(tx, patch)
    wave = rollout.current_wave + 1
    for host_id in rollout.waves[wave].hosts:
        host = tx.load(Host, host_id)
        if host.status == "ENROLLED":
            deployment = Deployment(
                rollout_id=rollout_id,
                host_id=host_id,
                patch_id=patch.patch_id,
                owner_msp=host.owner_msp,
                wave=wave,
            )
            # No key-level policy: reports then write it under the chaincode's (MAJORITY)
            # policy, evaluated once per transaction (ops/deployments.py, "Endorsement").
            tx.save(deployment)
    tx.save(
        rollout.evolve(status="RUNNING", current_wave=wave, wave_started_at=tx.now,
                       reason=reason),
        owner_org=rollout.owner_msp,
        reason=reason,
    )
    return tx.changes


def _move(
    tx: TxLedger, operation: str, rollout_id: str, target: str, *, only_from: str = "",
    reason: str = "",
) -> list[Change]:
    rollout = _load_own(tx, operation, rollout_id)
    if only_from:
        MACHINE.check_from(
            rollout_id, rollout.status, target, allowed_from=frozenset({only_from})
        )
    tx.save(rollout.evolve(status=target, reason=reason), owner_org=rollout.owner_msp,
            reason=reason)
    return tx.changes


def pause_rollout(tx: TxLedger, rollout_id: str, *, reason: str = "") -> list[Change]:
    """RUNNING -> PAUSED.

    Raises:
        AuthorizationError, NotFoundError, TransitionError.
    """
    return _move(tx, "pause_rollout", rollout_id, "PAUSED", only_from="RUNNING", reason=reason)


def resume_rollout(tx: TxLedger, rollout_id: str, *, reason: str = "") -> list[Change]:
    """PAUSED -> RUNNING.

    Raises:
        AuthorizationError, NotFoundError, TransitionError.
    """
    return _move(tx, "resume_rollout", rollout_id, "RUNNING", only_from="PAUSED", reason=reason)


def halt_rollout(tx: TxLedger, rollout_id: str, *, reason: str = "") -> list[Change]:
    """PLANNED, RUNNING or PAUSED -> HALTED.

    Raises:
        AuthorizationError, NotFoundError, TransitionError.
    """
    return _move(tx, "halt_rollout", rollout_id, "HALTED", reason=reason)


def roll_back_rollout(tx: TxLedger, rollout_id: str, *, reason: str = "") -> list[Change]:
    """HALTED -> ROLLED_BACK: agents roll back and report ROLLED_BACK per host.

    Raises:
        AuthorizationError, NotFoundError, TransitionError.
    """
    return _move(tx, "roll_back_rollout", rollout_id, "ROLLED_BACK", reason=reason)


def complete_rollout(tx: TxLedger, rollout_id: str, *, reason: str = "") -> list[Change]:
    """RUNNING (last wave, gate passed) -> COMPLETED.

    Raises:
        AuthorizationError, NotFoundError, TransitionError,
        PreconditionError: the patch is REVOKED, not the last wave, or the gate is not passed.
    """
    rollout = _load_own(tx, "complete_rollout", rollout_id)
    MACHINE.check(rollout_id, rollout.status, "COMPLETED")
    patch = tx.load(Patch, rollout.patch_id)
    if patch.status == "REVOKED":
        raise PreconditionError(
            "Patch", patch.patch_id, patch.status, f"rollout {rollout_id!r} cannot complete"
        )
    if not rollout.is_last_wave:
        raise PreconditionError(
            "Rollout",
            rollout_id,
            rollout.status,
            f"wave {rollout.current_wave} of {len(rollout.waves)} is running; advance first",
        )
    _check_gate(tx, rollout)
    tx.save(rollout.evolve(status="COMPLETED", reason=reason), owner_org=rollout.owner_msp,
            reason=reason)
    return tx.changes


#: The moves DecideRollout takes, by name.
DECISIONS = {
    "advance": advance_rollout,
    "pause": pause_rollout,
    "resume": resume_rollout,
    "halt": halt_rollout,
    "complete": complete_rollout,
    "roll_back": roll_back_rollout,
}


def decide_rollout(tx: TxLedger, rollout_id: str, action: str, reason: str) -> list[Change]:
    """One of the moves above (``action``: a key of :data:`DECISIONS`) with its ``reason``
    recorded on the rollout record: a dispatcher's decision, attributable and explained.

    Raises:
        ValidationError: an unknown action, or an empty or over-long reason.
        AuthorizationError, NotFoundError, TransitionError, PreconditionError: as the move.
    """
    move = DECISIONS.get(action)
    if move is None:
        raise ValidationError("action", f"must be one of {sorted(DECISIONS)}, not {action!r}")
    return move(tx, rollout_id, reason=text("reason", reason))
