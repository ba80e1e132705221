"""Governance decisions taken by a quorum of distinct organizations: one record base, one flow.

Policy changes, revocations and risk acceptances are :class:`VotedRecord` s: proposed by one
organization (whose proposal is its vote), agreed to by others, decided in the call whose vote
reaches the quorum. Their machines share the shape ``PROPOSED -> PROPOSED`` (a vote short of
the quorum) and ``PROPOSED -> <DECIDED>``. :func:`cast_vote` is the one voting flow:

- the record must still be open (its machine allows ``status -> DECIDED``), else
  :class:`~chaincode.lifecycle.errors.TransitionError`;
- only the policy's voting organizations may vote (ValidationError), each once
  (:class:`~chaincode.lifecycle.errors.DuplicateVoteError`, never counted twice);
- a vote counts only while its organization is a voter of the policy in force
  (:func:`counted`): an organization removed from the policy after voting no longer counts.

The caller applies the decision's effect (adopt the policy, revoke the patch, accept the
risk) when the returned record is decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar

from patchledger.chaincode.lifecycle.errors import DuplicateVoteError
from patchledger.chaincode.lifecycle.fields import id_tuple, identifier
from patchledger.chaincode.lifecycle.policy import Policy, check_voter
from patchledger.chaincode.lifecycle.record import Record

V = TypeVar("V", bound="VotedRecord")


@dataclass(frozen=True, kw_only=True)
class VotedRecord(Record):
    """Base of the quorum-voted records.

    Attributes:
        proposed_by: MSP id of the proposing organization.
        approvals: sorted MSP ids of the organizations that voted for it.
        status: ``PROPOSED`` until decided (``DECIDED``), or another state of its machine.
    """

    DECIDED: ClassVar[str] = ""
    proposed_by: str
    approvals: tuple[str, ...] = ()
    status: str = "PROPOSED"

    def validate(self) -> None:
        """Check the voting fields (subclasses check theirs after calling this).

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("proposed_by", self.proposed_by)
        id_tuple("approvals", self.approvals)
        if self.MACHINE is not None:
            self.MACHINE.validate_state("status", self.status)

    @property
    def state(self) -> str:
        """The ``status``."""
        return self.status

    @property
    def decided(self) -> bool:
        """True once the quorum was reached."""
        return self.status == self.DECIDED


def counted(policy: Policy, votes: tuple[str, ...]) -> frozenset[str]:
    """The votes that count under ``policy``: distinct organizations that vote in it now."""
    return frozenset(votes) & frozenset(policy.organizations)


def add_vote(
    policy: Policy, votes: tuple[str, ...], organization: str, record_type: str, record_id: str
) -> tuple[str, ...]:
    """Add ``organization``'s vote.

    Raises:
        ValidationError: not a voting organization.
        DuplicateVoteError: the organization already voted.
    """
    check_voter(policy, organization)
    if organization in votes:
        raise DuplicateVoteError(record_type, record_id, organization)
    return tuple(sorted({*votes, organization}))


def cast_vote(policy: Policy, record: V, organization: str, needed: int) -> V:
    """``record`` with ``organization``'s vote, decided when the counted votes reach
    ``needed`` (rules in the module docstring). Nothing is saved here.

    Raises:
        TransitionError: the record is no longer open for votes.
        ValidationError: ``organization`` does not vote in ``policy``.
        DuplicateVoteError: it already voted.
    """
    if record.MACHINE is not None:
        record.MACHINE.check(str(record.key), record.status, record.DECIDED)
    votes = add_vote(policy, record.approvals, organization, record.RECORD_TYPE, str(record.key))
    decided = len(counted(policy, votes)) >= needed
    return record.evolve(approvals=votes, status=record.DECIDED if decided else record.status)
