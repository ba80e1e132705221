"""BootstrapPolicy, ProposePolicy and ApprovePolicy: policy changes only by quorum.

The first policy is created by :func:`bootstrap_policy`, which refuses once any policy exists
(initialization happens once, and only for the default policy id);
the contract calls it from its initialization transaction, which the chaincode definition's
MAJORITY endorsement policy already makes a multi-organization decision. Every later change is a
:class:`~chaincode.lifecycle.policy_change.PolicyChange` adopted when ``change_quorum``
organizations of the policy in force approved it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from patchledger.chaincode.lifecycle.authz import authorize
from patchledger.chaincode.lifecycle.errors import AlreadyExistsError, ValidationError
from patchledger.chaincode.lifecycle.fields import identifier
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger
from patchledger.chaincode.lifecycle.policy import (
    DEFAULT_POLICY_ID,
    Policy,
    check_new_policy,
    check_voter,
)
from patchledger.chaincode.lifecycle.policy_change import MACHINE, PolicyChange
from patchledger.chaincode.lifecycle.quorum import cast_vote


def bootstrap_policy(
    tx: TxLedger, data: Mapping[str, Any], *, channel_orgs: Sequence[str] = ()
) -> list[Change]:
    """Create the first policy (version 1).

    Args:
        channel_orgs: the channel's organizations, when known: the policy must name at least
            two of them and no other (see :func:`~..policy.check_new_policy`).

    Raises:
        AuthorizationError: the caller is not an admin.
        ValidationError: malformed policy, a quorum under the floor, an organization named
            twice, or a policy that lets fewer organizations decide than the channel holds.
        AlreadyExistsError: a policy exists already (whatever its id).
    """
    authorize(tx.caller, "bootstrap_policy")
    if data.get("policy_id", DEFAULT_POLICY_ID) != DEFAULT_POLICY_ID:
        raise ValidationError("policy_id", f"the ledger is initialized with {DEFAULT_POLICY_ID!r}")
    policy = Policy.from_dict({**data, "policy_id": DEFAULT_POLICY_ID, "version": 1})
    check_new_policy(policy, tuple(channel_orgs))
    existing = tx.scan(Policy)
    if existing:
        raise AlreadyExistsError("Policy", existing[0].policy_id)
    tx.save(policy)
    return tx.changes


def propose_policy(
    tx: TxLedger,
    proposal_id: str,
    data: Mapping[str, Any],
    *,
    channel_orgs: Sequence[str] = (),
) -> list[Change]:
    """Propose a replacement of the policy named in ``data`` (default policy if none).

    The proposer's organization approves by proposing; with a change quorum of one the change
    is adopted at once.

    Raises:
        AuthorizationError: the caller is not an admin.
        ValidationError: malformed proposal (quorum floors and channel check as for
            :func:`bootstrap_policy`), or the caller's organization does not vote.
        NotFoundError: the policy does not exist.
        AlreadyExistsError: the proposal id is taken.
    """
    authorize(tx.caller, "propose_policy")
    identifier("proposal_id", proposal_id)
    current = tx.load(Policy, str(data.get("policy_id", DEFAULT_POLICY_ID)))
    check_voter(current, tx.caller.msp_id)
    proposed = Policy.from_dict({**data, "policy_id": current.policy_id, "version": 1})
    check_new_policy(proposed, tuple(channel_orgs))
    if tx.find(PolicyChange, proposal_id) is not None:
        raise AlreadyExistsError("PolicyChange", proposal_id)
    change = PolicyChange(
        proposal_id=proposal_id,
        policy_id=current.policy_id,
        base_version=current.version,
        proposed=proposed.to_dict(),
        proposed_by=tx.caller.msp_id,
    )
    _settle(tx, cast_vote(current, change, tx.caller.msp_id, current.change_quorum), current)
    return tx.changes


def approve_policy(tx: TxLedger, proposal_id: str) -> list[Change]:
    """Add the caller's organization's approval to a policy change.

    A proposal whose base version is no longer the policy in force becomes STALE instead.

    Raises:
        AuthorizationError: the caller is not an admin.
        ValidationError: the caller's organization does not vote.
        NotFoundError: unknown proposal.
        TransitionError: the proposal is ADOPTED or STALE.
        DuplicateVoteError: the organization already approved.
    """
    authorize(tx.caller, "approve_policy")
    change = tx.load(PolicyChange, proposal_id)
    MACHINE.check(proposal_id, change.status, "ADOPTED")  # open for votes (else refused)
    current = tx.load(Policy, change.policy_id)
    if current.version != change.base_version:
        tx.save(change.evolve(status="STALE"))
        return tx.changes
    _settle(tx, cast_vote(current, change, tx.caller.msp_id, current.change_quorum), current)
    return tx.changes


def _settle(tx: TxLedger, change: PolicyChange, current: Policy) -> None:
    if change.decided:
        tx.save(change.policy().evolve(version=current.version + 1))
    tx.save(change)
