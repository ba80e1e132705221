"""Key-level (state-based) endorsement policies built from organization MSP ids.

A key's endorsement policy is stored by the peer in the key's ``VALIDATION_PARAMETER``
metadata entry, as a serialized ``common.SignaturePolicyEnvelope``. A key-level policy
*replaces* the chaincode-level endorsement policy for writes to that key; it does not add to it.

Two ways to build one:

- :class:`KeyEndorsementPolicy` requires one signature from a member with the given role (PEER
  by default) of *every* listed organization, which is what Fabric's own state-based
  endorsement helper produces.
- :class:`SignedBy` and :class:`OutOf` describe any nested signature policy (``AND`` and ``OR``
  are ``OutOf`` with n = all or 1); :func:`encode_policy` serializes one and
  :func:`decode_policy` reads one back. :func:`owner_and_majority` builds "the owner
  organization's peer AND a majority of the channel organizations' peers".

Evaluation semantics (Fabric's ``cauthdsl``): each endorsement satisfies at most one
``SignedBy`` of the whole policy. ``AND('A.peer', OutOf(2, 'A.peer', 'B.peer', 'C.peer'))``
therefore needs A plus *two others*, not a majority that includes A; see
:func:`owner_and_majority` and :func:`is_satisfied_by`, which models the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from patchledger.chaincode.runtime._protos import (
    DecodeError,
    ProtoMessage,
    msp_principal_pb2,
    policies_pb2,
)

__all__ = [
    "ROLE_MEMBER",
    "ROLE_PEER",
    "VALIDATION_PARAMETER",
    "KeyEndorsementPolicy",
    "OutOf",
    "Rule",
    "SignedBy",
    "decode_policy",
    "encode_policy",
    "is_satisfied_by",
    "majority",
    "owner_and_majority",
]

#: Metadata key under which the peer keeps a key's endorsement policy.
VALIDATION_PARAMETER = "VALIDATION_PARAMETER"

ROLE_MEMBER: int = msp_principal_pb2.MSPRole.MEMBER
ROLE_PEER: int = msp_principal_pb2.MSPRole.PEER
_ROLE_NAMES = {v: k for k, v in msp_principal_pb2.MSPRole.MSPRoleType.items()}


class KeyEndorsementPolicy:
    """A mutable set of organizations whose endorsement a key requires.

    Build one empty, or from the bytes returned by
    :meth:`chaincode.runtime.stub.ChaincodeStub.get_state_validation_parameter`, change it with
    :meth:`add_orgs` / :meth:`del_orgs`, and serialize it with :meth:`policy`.
    """

    def __init__(self, policy: bytes | None = None) -> None:
        """Start from a serialized policy, or empty when ``policy`` is None or empty.

        Raises:
            ValueError: if ``policy`` is not a SignaturePolicyEnvelope made of MSP role
                principals requiring every one of them (a nested policy, e.g. one built by
                :func:`owner_and_majority`, is refused: read it with :func:`decode_policy`).
        """
        self._orgs: dict[str, int] = {}
        if policy:
            self._orgs = _orgs_from_policy(policy)

    def add_orgs(self, *msp_ids: str, role: int = ROLE_PEER) -> None:
        """Require an endorsement from each of ``msp_ids`` with ``role``.

        Raises:
            ValueError: for an empty MSP id or an unknown role.
        """
        if role not in _ROLE_NAMES:
            raise ValueError(f"unknown MSP role {role}")
        for msp_id in msp_ids:
            if not msp_id:
                raise ValueError("MSP id must not be empty")
            self._orgs[msp_id] = role

    def del_orgs(self, *msp_ids: str) -> None:
        """Stop requiring endorsements from ``msp_ids`` (absent ids are ignored)."""
        for msp_id in msp_ids:
            self._orgs.pop(msp_id, None)

    def list_orgs(self) -> list[str]:
        """The organizations the policy requires, sorted."""
        return sorted(self._orgs)

    def policy(self) -> bytes:
        """Serialize as a SignaturePolicyEnvelope requiring every listed organization.

        Raises:
            ValueError: if no organization is listed (an empty policy cannot be satisfied).
        """
        if not self._orgs:
            raise ValueError("a key endorsement policy needs at least one organization")
        return build_signature_policy(self._orgs.items())


def build_signature_policy(orgs: Iterable[tuple[str, int]]) -> bytes:
    """Serialize an N-out-of-N policy over ``(msp_id, role)`` pairs, sorted by MSP id."""
    env = policies_pb2.SignaturePolicyEnvelope(version=0)
    ordered = sorted(orgs)
    for index, (msp_id, role) in enumerate(ordered):
        role_msg = msp_principal_pb2.MSPRole(msp_identifier=msp_id, role=role)
        env.identities.append(
            msp_principal_pb2.MSPPrincipal(
                principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
                principal=role_msg.SerializeToString(),
            )
        )
        env.rule.n_out_of.rules.append(policies_pb2.SignaturePolicy(signed_by=index))
    env.rule.n_out_of.n = len(ordered)
    return bytes(env.SerializeToString())


def _orgs_from_policy(policy: bytes) -> dict[str, int]:
    """Read the ``msp_id -> role`` map out of a serialized SignaturePolicyEnvelope that
    requires every one of its principals (one signature each).

    Raises:
        ValueError: if the bytes are not an envelope of MSP role principals, or the policy is
            anything else than "every listed organization" (e.g. nested).
    """
    rule = decode_policy(policy)
    signers = [rule] if isinstance(rule, SignedBy) else list(rule.rules)
    flat = [s for s in signers if isinstance(s, SignedBy)]
    if (
        (isinstance(rule, OutOf) and rule.n != len(rule.rules))
        or len(flat) != len(signers)
        or len({s.msp_id for s in flat}) != len(flat)
    ):
        raise ValueError(
            f"{rule} is not a policy requiring every listed organization (read it with"
            " decode_policy)"
        )
    return {s.msp_id: s.role for s in flat}


# ----- nested signature policies ------------------------------------------------------------


@dataclass(frozen=True)
class SignedBy:
    """A signature by a ``role`` member (PEER by default) of organization ``msp_id``."""

    msp_id: str
    role: int = ROLE_PEER

    def __post_init__(self) -> None:
        if not self.msp_id:
            raise ValueError("MSP id must not be empty")
        if self.role not in _ROLE_NAMES:
            raise ValueError(f"unknown MSP role {self.role}")

    def __str__(self) -> str:
        return f"'{self.msp_id}.{_ROLE_NAMES[self.role].lower()}'"


@dataclass(frozen=True)
class OutOf:
    """At least ``n`` of ``rules`` satisfied (``AND``: n = len(rules); ``OR``: n = 1)."""

    n: int
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        if not 1 <= self.n <= len(self.rules):
            raise ValueError(
                f"OutOf needs 1 <= n <= {len(self.rules)} (the number of rules), got {self.n}"
            )

    def __str__(self) -> str:
        inner = ", ".join(str(r) for r in self.rules)
        if self.n == len(self.rules) and self.n > 1:
            return f"AND({inner})"
        if self.n == 1 and len(self.rules) > 1:
            return f"OR({inner})"
        return f"OutOf({self.n}, {inner})"


Rule: TypeAlias = "SignedBy | OutOf"

#: Deepest nesting :func:`decode_policy` accepts (a guard against hostile bytes).
MAX_POLICY_DEPTH = 8


def majority(count: int) -> int:
    """How many of ``count`` organizations make a majority: ``count // 2 + 1``."""
    return count // 2 + 1


def owner_and_majority(owner: str, orgs: Iterable[str], *, role: int = ROLE_PEER) -> Rule:
    """The owner organization's peer AND a majority of the channel organizations' peers.

    Because each endorsement satisfies one ``SignedBy`` only (see the module docstring), the
    majority is written as the owner plus ``majority(len(orgs)) - 1`` of the *other*
    organizations: ``AND('Owner.peer', OutOf(k - 1, <the others>))``, or just
    ``'Owner.peer'`` when the owner alone is a majority (a one-organization channel).

    Raises:
        ValueError: no organization, or ``owner`` is not one of ``orgs`` (fail closed: the
            owner of a record must be a channel organization).
    """
    channel = sorted(set(orgs))
    if not channel:
        raise ValueError("no channel organizations: cannot build an owner-and-majority policy")
    if owner not in channel:
        raise ValueError(f"{owner!r} is not one of the channel organizations {channel}")
    others = [SignedBy(msp, role) for msp in channel if msp != owner]
    need = majority(len(channel)) - 1
    if need == 0:
        return SignedBy(owner, role)
    return OutOf(2, (SignedBy(owner, role), OutOf(need, tuple(others))))


def is_satisfied_by(rule: Rule, endorsers: Sequence[tuple[str, int]]) -> bool:
    """Whether endorsements by ``endorsers`` (``(msp_id, role)`` each) satisfy ``rule``.

    Models Fabric's evaluation: rules are tried in order, each endorsement is consumed by the
    first ``SignedBy`` it satisfies, and a failed sub-rule gives back what it consumed. A
    ``MEMBER`` principal is satisfied by any role of its organization.
    """
    used = [False] * len(endorsers)
    return _evaluate(rule, endorsers, used)


def _evaluate(rule: Rule, endorsers: Sequence[tuple[str, int]], used: list[bool]) -> bool:
    if isinstance(rule, SignedBy):
        for i, (msp_id, role) in enumerate(endorsers):
            if used[i] or msp_id != rule.msp_id:
                continue
            if rule.role in (ROLE_MEMBER, role):
                used[i] = True
                return True
        return False
    verified = 0
    for sub in rule.rules:
        trial = list(used)
        if _evaluate(sub, endorsers, trial):
            verified += 1
            used[:] = trial
    return verified >= rule.n


def encode_policy(rule: Rule) -> bytes:
    """Serialize ``rule`` as a SignaturePolicyEnvelope (version 0; one identity per distinct
    principal, in order of first appearance)."""
    env = policies_pb2.SignaturePolicyEnvelope(version=0)
    index: dict[SignedBy, int] = {}

    def build(node: Rule) -> ProtoMessage:
        if isinstance(node, SignedBy):
            if node not in index:
                index[node] = len(index)
                role_msg = msp_principal_pb2.MSPRole(msp_identifier=node.msp_id, role=node.role)
                env.identities.append(
                    msp_principal_pb2.MSPPrincipal(
                        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
                        principal=role_msg.SerializeToString(),
                    )
                )
            return policies_pb2.SignaturePolicy(signed_by=index[node])
        out = policies_pb2.SignaturePolicy()
        out.n_out_of.n = node.n
        for sub in node.rules:
            out.n_out_of.rules.append(build(sub))
        return out

    top = build(rule)
    env.rule.CopyFrom(top)
    return bytes(env.SerializeToString())


def decode_policy(policy: bytes) -> Rule:
    """Read a serialized SignaturePolicyEnvelope of MSP role principals back into a rule.

    Raises:
        ValueError: not an envelope, a principal that is not an MSP role, a ``signed_by``
            index out of range, an ``n`` outside 1..len(rules), an empty rule, or nesting
            deeper than :data:`MAX_POLICY_DEPTH`.
    """
    env = policies_pb2.SignaturePolicyEnvelope()
    try:
        env.ParseFromString(policy)
    except DecodeError as exc:
        raise ValueError("not a SignaturePolicyEnvelope") from exc
    principals = [_principal(p) for p in env.identities]

    def read(node: ProtoMessage, depth: int) -> Rule:
        if depth > MAX_POLICY_DEPTH:
            raise ValueError(f"policy nested deeper than {MAX_POLICY_DEPTH} levels")
        kind = node.WhichOneof("Type")
        if kind == "signed_by":
            at = int(node.signed_by)
            if not 0 <= at < len(principals):
                raise ValueError(f"policy signed_by index {at} is out of range")
            return principals[at]
        if kind == "n_out_of":
            nout = node.n_out_of
            return OutOf(nout.n, tuple(read(r, depth + 1) for r in nout.rules))
        raise ValueError("policy has an empty rule")

    return read(env.rule, 1)


def _principal(principal: ProtoMessage) -> SignedBy:
    """The MSP role principal of an ``MSPPrincipal``.

    Raises:
        ValueError: not an MSP role, or undecodable.
    """
    classification = principal.principal_classification
    if classification != msp_principal_pb2.MSPPrincipal.ROLE:
        raise ValueError("policy has a principal that is not an MSP role")
    role = msp_principal_pb2.MSPRole()
    try:
        role.ParseFromString(principal.principal)
    except DecodeError as exc:
        raise ValueError("policy has an undecodable MSP role") from exc
    return SignedBy(role.msp_identifier, role.role)
