"""Revocations: withdrawing a patch's approval for good, by quorum.

State machine (``status``)::

    PROPOSED ──> PROPOSED    another organization agreed, quorum not reached
    PROPOSED ──> EFFECTIVE   ``revocation_quorum`` organizations agreed; the patch moves to
                             REVOKED (terminal)

Keyed by patch id: a patch has at most one revocation. Agents refuse revoked patches, and
rollouts of a revoked patch can no longer advance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from patchledger.chaincode.lifecycle.fields import identifier, text
from patchledger.chaincode.lifecycle.quorum import VotedRecord
from patchledger.chaincode.lifecycle.statemachine import StateMachine, machine

MACHINE = machine(
    "Revocation",
    "PROPOSED",
    {"PROPOSED": {"PROPOSED", "EFFECTIVE"}},
)


@dataclass(frozen=True, kw_only=True)
class Revocation(VotedRecord):
    """A (proposed or effective) revocation of one patch."""

    RECORD_TYPE = "Revocation"
    KEY_FIELDS = ("patch_id",)
    MACHINE: ClassVar[StateMachine] = MACHINE
    DECIDED = "EFFECTIVE"
    patch_id: str
    reason: str

    def validate(self) -> None:
        """Check fields.

        Raises:
            ValidationError: naming the offending field.
        """
        super().validate()
        identifier("patch_id", self.patch_id)
        text("reason", self.reason)

