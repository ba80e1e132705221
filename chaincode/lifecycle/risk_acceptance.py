"""Risk acceptances (exceptions): a vulnerability knowingly left open until an expiry.

State machine (``status``)::

    PROPOSED ──> PROPOSED   another organization agreed, quorum not reached
    PROPOSED ──> GRANTED    ``exception_quorum`` organizations agreed
    GRANTED ──> EXPIRED     at or after ``expires_at``
    PROPOSED ──> EXPIRED    the expiry passed before the quorum was reached

An exception with empty ``host_ids`` covers the whole estate and moves the vulnerability to
RISK_ACCEPTED; a scoped one (some hosts) is recorded without changing the vulnerability. When
an estate-wide exception expires, the vulnerability returns to OPEN unless another granted,
unexpired estate-wide exception still covers it.

Every organization that agrees must agree to the same terms (vulnerability, hosts,
justification, expiry): a vote with other terms is refused, never merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from patchledger.chaincode.lifecycle.fields import id_tuple, identifier, integer, text
from patchledger.chaincode.lifecycle.quorum import VotedRecord
from patchledger.chaincode.lifecycle.statemachine import StateMachine, machine

MACHINE = machine(
    "RiskAcceptance",
    "PROPOSED",
    {"PROPOSED": {"PROPOSED", "GRANTED", "EXPIRED"}, "GRANTED": {"EXPIRED"}},
)


@dataclass(frozen=True, kw_only=True)
class RiskAcceptance(VotedRecord):
    """An exception to remediating a vulnerability (empty ``host_ids``: the whole estate)."""

    RECORD_TYPE = "RiskAcceptance"
    KEY_FIELDS = ("vuln_id", "exception_id")
    MACHINE: ClassVar[StateMachine] = MACHINE
    DECIDED = "GRANTED"
    exception_id: str
    vuln_id: str
    justification: str
    expires_at: int
    host_ids: tuple[str, ...] = ()

    def validate(self) -> None:
        """Check fields.

        Raises:
            ValidationError: naming the offending field.
        """
        super().validate()
        identifier("exception_id", self.exception_id)
        identifier("vuln_id", self.vuln_id)
        text("justification", self.justification)
        integer("expires_at", self.expires_at, minimum=1)
        id_tuple("host_ids", self.host_ids)


    def same_terms(self, other: RiskAcceptance) -> bool:
        """True when both name the same vulnerability, hosts, justification and expiry."""

        def terms(r: RiskAcceptance) -> tuple[object, ...]:
            return (r.vuln_id, tuple(sorted(r.host_ids)), r.justification, r.expires_at)

        return terms(self) == terms(other)
