"""Deployment records: one host's part in one rollout.

State machine (``status``), driven by signed host reports::

    SCHEDULED ──> DISPATCHED, APPLIED, VERIFIED, FAILED, ROLLED_BACK
    DISPATCHED ──> APPLIED, VERIFIED, FAILED, ROLLED_BACK
    APPLIED ──> VERIFIED, FAILED, ROLLED_BACK
    VERIFIED ──> ROLLED_BACK       rolled back on order (the rollout was halted)
    FAILED ──> ROLLED_BACK
    ROLLED_BACK                    terminal

A report may skip intermediate success steps (an agent that applied and verified in one run
reports VERIFIED directly), but never goes backwards and never leaves ROLLED_BACK. ROLLED_BACK
from SCHEDULED or DISPATCHED records a host that applied the patch while its rollout was being
halted (its VERIFIED report was refused, as a stopped rollout takes only ROLLED_BACK reports)
and then undid it on order. VERIFIED,
FAILED and ROLLED_BACK are *settled* states for the rollout's wave gates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from patchledger.chaincode.lifecycle.fields import identifier, integer, sha256_hex, text
from patchledger.chaincode.lifecycle.host import EMPTY_INVENTORY
from patchledger.chaincode.lifecycle.record import Record
from patchledger.chaincode.lifecycle.statemachine import StateMachine, machine

MACHINE = machine(
    "Deployment",
    "SCHEDULED",
    {
        "SCHEDULED": {"DISPATCHED", "APPLIED", "VERIFIED", "FAILED", "ROLLED_BACK"},
        "DISPATCHED": {"APPLIED", "VERIFIED", "FAILED", "ROLLED_BACK"},
        "APPLIED": {"VERIFIED", "FAILED", "ROLLED_BACK"},
        "VERIFIED": {"ROLLED_BACK"},
        "FAILED": {"ROLLED_BACK"},
    },
)
SETTLED = frozenset({"VERIFIED", "FAILED", "ROLLED_BACK"})


@dataclass(frozen=True, kw_only=True)
class Deployment(Record):
    """One host's deployment in a rollout."""

    RECORD_TYPE = "Deployment"
    KEY_FIELDS = ("rollout_id", "host_id")
    MACHINE: ClassVar[StateMachine] = MACHINE
    rollout_id: str
    host_id: str
    patch_id: str
    owner_msp: str
    wave: int
    status: str = "SCHEDULED"
    report_sequence: int = 0
    inventory_sha256: str = EMPTY_INVENTORY
    detail: str = ""

    def validate(self) -> None:
        """Check fields.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("rollout_id", self.rollout_id)
        identifier("host_id", self.host_id)
        identifier("patch_id", self.patch_id)
        identifier("owner_msp", self.owner_msp)
        integer("wave", self.wave)
        MACHINE.validate_state("status", self.status)
        integer("report_sequence", self.report_sequence)
        sha256_hex("inventory_sha256", self.inventory_sha256)
        text("detail", self.detail, optional=True)


    @property
    def state(self) -> str:
        """The ``status``."""
        return self.status
