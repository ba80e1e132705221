"""Votes of distinct organizations on a governance decision.

A vote list is a sorted tuple of MSP ids. An organization can be in it once: a second vote is
refused with :class:`~chaincode.lifecycle.errors.DuplicateVoteError`, never counted. Only the
policy's voting organizations may vote.
"""

from __future__ import annotations

from patchledger.chaincode.lifecycle.errors import DuplicateVoteError
from patchledger.chaincode.lifecycle.policy import Policy, check_voter


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


def reached(votes: tuple[str, ...], needed: int) -> bool:
    """True when at least ``needed`` distinct organizations voted."""
    return len(set(votes)) >= needed
