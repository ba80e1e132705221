"""BootstrapPolicy, ProposePolicy and ApprovePolicy: policy changes only by quorum.

The first policy is created by :func:`bootstrap_policy`, which refuses once any policy exists
(initialization happens once, and only for the default policy id) and writes it only with the
signed consent of a majority (at least 2) of the channel's organizations, each given by an admin
whose certificate chains to the organization's root (:mod:`~chaincode.lifecycle.consent`): no
one organization's admin sets the first policy alone. Every later change is a
:class:`~chaincode.lifecycle.policy_change.PolicyChange` adopted when ``change_quorum``
organizations of the policy in force approved it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from patchledger.chaincode.lifecycle.authz import authorize
from patchledger.chaincode.lifecycle.consent import initial_policy, verify_consents
from patchledger.chaincode.lifecycle.errors import AlreadyExistsError
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
from patchledger.chaincode.lifecycle.trust import OrgTrust


def bootstrap_policy(
    tx: TxLedger,
    data: Mapping[str, Any],
    consents: Any,
    *,
    channel_id: str,
    channel_orgs: Sequence[str],
    trust: OrgTrust,
) -> list[Change]:
    """Create the first policy (``default``, version 1) with the organizations' consent.

    Args:
        data: the policy.
        consents: the admins' signed consents over its digest
            (:class:`~..consent.SignedConsent` objects); those of
            :func:`~..consent.consent_quorum` distinct channel organizations are needed.
        channel_id: the transaction's channel (each consent names it).
        channel_orgs: the channel's organizations: the policy must name at least two of them
            and no other (see :func:`~..policy.check_new_policy`).
        trust: the organizations' roots; each consent's admin certificate must chain to its
            organization's.

    Raises:
        AuthorizationError: the caller is not an admin, or a consent is not an admin's.
        ValidationError: malformed policy, a quorum under the floor, an organization named
            twice, a policy naming other organizations than the channel's; a malformed
            consent, two of one organization, or too few organizations consenting.
        SignatureError: a forged consent, one over another digest or channel, or one whose
            certificate no root of its organization issued.
        ExpiredError: an expired consent.
        AlreadyExistsError: a policy exists already (whatever its id); checked after the
            consents, so a call with bad consents is refused for them in any state.
    """
    authorize(tx.caller, "bootstrap_policy")
    policy = initial_policy(data)
    check_new_policy(policy, tuple(channel_orgs))
    verify_consents(
        consents, policy, channel_id=channel_id, channel_orgs=channel_orgs, trust=trust,
        now=tx.now,
    )
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
