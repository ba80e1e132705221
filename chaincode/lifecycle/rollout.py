"""Rollout records: one patch deployed to one organization's hosts in waves.

State machine (``status``)::

    PLANNED ──> RUNNING       advance: wave 0 starts, its deployments are SCHEDULED
    RUNNING ──> RUNNING       advance: wave n settled within the failure threshold and soaked,
                              wave n+1 starts
    RUNNING ──> PAUSED        pause: no wave starts; hosts may still report
    PAUSED ──> RUNNING        resume
    PLANNED, RUNNING, PAUSED ──> HALTED      halt: stop for good (failures, revocation, order)
    RUNNING ──> COMPLETED     complete: the last wave settled within the threshold (terminal)
    HALTED ──> ROLLED_BACK    roll back: hosts are ordered to roll back (terminal)

Each move may carry a ``reason`` (``DecideRollout``: the dispatcher's verdict, a revocation);
the record keeps the reason of its latest move (and the transaction's event lists it with the
change), so its history lists every decision with its reason. A move without one (the plain
transactions) clears it.

A wave is *settled* when every deployment in it is VERIFIED, FAILED or ROLLED_BACK; it is
*within the threshold* when ``failed * 100 <= failure_threshold_pct * hosts``. Failure counts
are evaluated when the operator advances or completes, not when hosts report, so host report
batches never write the rollout record and never conflict with each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.fields import id_tuple, identifier, integer, text
from patchledger.chaincode.lifecycle.record import Nested, Record
from patchledger.chaincode.lifecycle.statemachine import StateMachine, machine

MACHINE = machine(
    "Rollout",
    "PLANNED",
    {
        "PLANNED": {"RUNNING", "HALTED"},
        "RUNNING": {"RUNNING", "PAUSED", "HALTED", "COMPLETED"},
        "PAUSED": {"RUNNING", "HALTED"},
        "HALTED": {"ROLLED_BACK"},
    },
)


@dataclass(frozen=True)
class Wave(Nested):
    """A wave: the selectors it was planned with and the hosts they resolved to."""

    hosts: tuple[str, ...]
    groups: tuple[str, ...] = ()


def _waves(value: Any) -> tuple[Wave, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError("waves", "must be a non-empty list")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Wave):
            if not isinstance(item, dict):
                raise ValidationError(f"waves[{i}]", "must be an object")
            item = Wave(
                id_tuple(f"waves[{i}].hosts", item.get("hosts", ())),
                id_tuple(f"waves[{i}].groups", item.get("groups", ())),
            )
        id_tuple(f"waves[{i}].hosts", item.hosts, non_empty=True)
        id_tuple(f"waves[{i}].groups", item.groups)
        out.append(item)
    seen: set[str] = set()
    for i, wave in enumerate(out):
        if seen & set(wave.hosts):
            raise ValidationError(f"waves[{i}].hosts", "a host may be in one wave only")
        seen |= set(wave.hosts)
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class Rollout(Record):
    """A staged deployment plan and its progress (``current_wave`` is -1 until it starts)."""

    RECORD_TYPE = "Rollout"
    KEY_FIELDS = ("rollout_id",)
    MACHINE: ClassVar[StateMachine] = MACHINE
    rollout_id: str
    patch_id: str
    owner_msp: str
    waves: tuple[Wave, ...]
    failure_threshold_pct: int
    soak_seconds: int
    status: str = "PLANNED"
    current_wave: int = -1
    wave_started_at: int = 0
    reason: str = ""

    @classmethod
    def decode_field(cls, name: str, value: Any) -> Any:
        """Decode nested waves; lists become tuples."""
        return _waves(value) if name == "waves" else super().decode_field(name, value)

    def validate(self) -> None:
        """Check fields.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("rollout_id", self.rollout_id)
        identifier("patch_id", self.patch_id)
        identifier("owner_msp", self.owner_msp)
        _waves(self.waves)
        integer("failure_threshold_pct", self.failure_threshold_pct, maximum=100)
        integer("soak_seconds", self.soak_seconds)
        MACHINE.validate_state("status", self.status)
        integer("current_wave", self.current_wave, minimum=-1, maximum=len(self.waves) - 1)
        integer("wave_started_at", self.wave_started_at)
        text("reason", self.reason, optional=True)

    @property
    def state(self) -> str:
        """The ``status``."""
        return self.status

    @property
    def is_last_wave(self) -> bool:
        """True when the current wave is the last one."""
        return self.current_wave == len(self.waves) - 1
