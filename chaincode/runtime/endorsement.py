"""Key-level (state-based) endorsement policies built from organization MSP ids.

A key's endorsement policy is stored by the peer in the key's ``VALIDATION_PARAMETER``
metadata entry, as a serialized ``common.SignaturePolicyEnvelope``. The policy built here
requires one signature from a member with the given role (PEER by default) of *every* listed
organization, which is what Fabric's own state-based endorsement helper produces.
"""

from __future__ import annotations

from collections.abc import Iterable

from chaincode.runtime._protos import DecodeError, msp_principal_pb2, policies_pb2

__all__ = ["ROLE_MEMBER", "ROLE_PEER", "VALIDATION_PARAMETER", "KeyEndorsementPolicy"]

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
                principals.
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
    """Read the ``msp_id -> role`` map out of a serialized SignaturePolicyEnvelope.

    Raises:
        ValueError: if the bytes are not an envelope of MSP role principals.
    """
    env = policies_pb2.SignaturePolicyEnvelope()
    try:
        env.ParseFromString(policy)
    except DecodeError as exc:
        raise ValueError("not a SignaturePolicyEnvelope") from exc
    orgs: dict[str, int] = {}
    for principal in env.identities:
        if principal.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
            raise ValueError("policy has a principal that is not an MSP role")
        role = msp_principal_pb2.MSPRole()
        try:
            role.ParseFromString(principal.principal)
        except DecodeError as exc:
            raise ValueError("policy has an undecodable MSP role") from exc
        orgs[role.msp_identifier] = role.role
    return orgs
