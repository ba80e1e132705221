"""Policy change proposals: a new policy, adopted only by a quorum of organizations.

State machine (``status``)::

    PROPOSED ──> PROPOSED   another organization approved, quorum not reached yet
    PROPOSED ──> ADOPTED    ``change_quorum`` organizations approved: the policy is replaced
    PROPOSED ──> STALE      the policy changed since the proposal (``base_version`` is old)

ADOPTED and STALE are terminal. The proposing organization's vote counts as the first approval.
A proposal changes exactly one policy version (``base_version``): two proposals racing on the
same version cannot both be adopted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from patchledger.chaincode.lifecycle.fields import identifier, integer
from patchledger.chaincode.lifecycle.policy import Policy
from patchledger.chaincode.lifecycle.quorum import VotedRecord
from patchledger.chaincode.lifecycle.statemachine import StateMachine, machine

MACHINE = machine(
    "PolicyChange",
    "PROPOSED",
    {"PROPOSED": {"PROPOSED", "ADOPTED", "STALE"}},
)


@dataclass(frozen=True, kw_only=True)
class PolicyChange(VotedRecord):
    """A proposed replacement of a policy."""

    RECORD_TYPE = "PolicyChange"
    KEY_FIELDS = ("proposal_id",)
    MACHINE: ClassVar[StateMachine] = MACHINE
    DECIDED = "ADOPTED"
    proposal_id: str
    policy_id: str
    base_version: int
    proposed: Mapping[str, Any]

    def validate(self) -> None:
        """Check fields; the proposed policy must itself be valid.

        Raises:
            ValidationError: naming the offending field.
        """
        super().validate()
        identifier("proposal_id", self.proposal_id)
        identifier("policy_id", self.policy_id)
        integer("base_version", self.base_version, minimum=1)
        self.policy()

    def policy(self) -> Policy:
        """The proposed policy as a record (its version is set on adoption)."""
        return Policy.from_dict(self.proposed)

