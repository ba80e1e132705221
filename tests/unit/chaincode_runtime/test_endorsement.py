"""Nested key-level endorsement policies: the owner's peer AND a majority of the channel.

A key-level policy replaces the chaincode's MAJORITY policy for its key, so the policy of an
owned record must itself require the majority. The bytes are checked with the protobuf
classes directly (not only through our own decoder), and the satisfaction model follows
Fabric's cauthdsl, where each endorsement satisfies at most one SignedBy.
"""

from __future__ import annotations

from typing import Any

import pytest

from patchledger.chaincode.runtime import KeyEndorsementPolicy
from patchledger.chaincode.runtime._protos import msp_principal_pb2, policies_pb2
from patchledger.chaincode.runtime.endorsement import (
    MAX_POLICY_DEPTH,
    ROLE_MEMBER,
    ROLE_PEER,
    VALIDATION_PARAMETER,
    OutOf,
    SignedBy,
    decode_policy,
    encode_policy,
    is_satisfied_by,
    majority,
    owner_and_majority,
)
from patchledger.chaincode.runtime.stub import ChaincodeStub
from tests.support.chaincode_runtime import FakePeer
from tests.unit.chaincode_runtime.test_stub import run_tx

SECOPS, ITOPS, COMPLIANCE = "SecOpsMSP", "ITOpsMSP", "ComplianceMSP"
ORGS = (SECOPS, ITOPS, COMPLIANCE)


def peers(*msp_ids: str) -> list[tuple[str, int]]:
    return [(m, ROLE_PEER) for m in msp_ids]


def raw_structure(policy: bytes) -> tuple[list[tuple[str, int]], Any]:
    """The identities and the rule tree of serialized policy bytes, read with protobuf only."""
    env = policies_pb2.SignaturePolicyEnvelope()
    env.ParseFromString(policy)
    identities = []
    for principal in env.identities:
        assert principal.principal_classification == msp_principal_pb2.MSPPrincipal.ROLE
        role = msp_principal_pb2.MSPRole()
        role.ParseFromString(principal.principal)
        identities.append((role.msp_identifier, role.role))

    def tree(rule: Any) -> Any:
        if rule.WhichOneof("Type") == "signed_by":
            return identities[rule.signed_by][0]
        return (rule.n_out_of.n, [tree(r) for r in rule.n_out_of.rules])

    return identities, tree(env.rule)


def test_owner_and_majority_bytes_decode_to_owner_and_the_rest_of_a_majority() -> None:
    policy = encode_policy(owner_and_majority(COMPLIANCE, ORGS))
    identities, tree = raw_structure(policy)
    assert identities == peers(COMPLIANCE, ITOPS, SECOPS)
    # AND(Compliance, OutOf(1, [ITOps, SecOps])): the owner plus majority(3) - 1 = 1 other.
    assert tree == (2, [COMPLIANCE, (1, [ITOPS, SECOPS])])
    rule = decode_policy(policy)
    assert rule == owner_and_majority(COMPLIANCE, ORGS)
    assert str(rule) == "AND('ComplianceMSP.peer', OR('ITOpsMSP.peer', 'SecOpsMSP.peer'))"


@pytest.mark.parametrize(
    ("endorsers", "satisfied"),
    [
        ((COMPLIANCE,), False),  # the owner alone: no majority
        ((SECOPS, ITOPS), False),  # a majority without the owner
        ((COMPLIANCE, SECOPS), True),
        ((ITOPS, COMPLIANCE), True),
        ((SECOPS, ITOPS, COMPLIANCE), True),
    ],
)
def test_owner_and_majority_needs_the_owner_and_a_majority(
    endorsers: tuple[str, ...], satisfied: bool
) -> None:
    rule = decode_policy(encode_policy(owner_and_majority(COMPLIANCE, ORGS)))
    assert is_satisfied_by(rule, peers(*endorsers)) is satisfied


def test_the_naive_nesting_would_demand_every_organization() -> None:
    """AND(owner, OutOf(2, all three)): the owner's endorsement cannot count twice."""
    naive = OutOf(2, (SignedBy(COMPLIANCE), OutOf(2, tuple(SignedBy(m) for m in ORGS))))
    assert not is_satisfied_by(naive, peers(COMPLIANCE, SECOPS))
    assert is_satisfied_by(naive, peers(COMPLIANCE, SECOPS, ITOPS))


def test_majority_sizes() -> None:
    assert [majority(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    # One organization: its peer alone is the majority.
    assert owner_and_majority(ITOPS, [ITOPS]) == SignedBy(ITOPS)
    # Two: both. Five: the owner and two others.
    assert owner_and_majority(ITOPS, [ITOPS, SECOPS]) == OutOf(
        2, (SignedBy(ITOPS), OutOf(1, (SignedBy(SECOPS),)))
    )
    five = owner_and_majority("C", "ABCDE")
    assert str(five) == "AND('C.peer', OutOf(2, 'A.peer', 'B.peer', 'D.peer', 'E.peer'))"
    assert not is_satisfied_by(five, peers("C", "A"))
    assert is_satisfied_by(five, peers("E", "C", "A"))


def test_owner_and_majority_fails_closed() -> None:
    with pytest.raises(ValueError, match="no channel organizations"):
        owner_and_majority(ITOPS, [])
    with pytest.raises(ValueError, match="not one of the channel organizations"):
        owner_and_majority("RogueMSP", ORGS)


def test_member_principals_and_rule_validation() -> None:
    rule = OutOf(1, (SignedBy(ITOPS, ROLE_MEMBER),))
    assert is_satisfied_by(rule, [(ITOPS, ROLE_PEER)])
    assert not is_satisfied_by(OutOf(1, (SignedBy(ITOPS),)), [(ITOPS, ROLE_MEMBER)])
    assert decode_policy(encode_policy(rule)) == rule
    assert str(OutOf(1, (SignedBy(ITOPS, ROLE_MEMBER),))) == "OutOf(1, 'ITOpsMSP.member')"
    with pytest.raises(ValueError, match="1 <= n <= 1"):
        OutOf(0, (SignedBy(ITOPS),))
    with pytest.raises(ValueError, match="1 <= n <= 0"):
        OutOf(1, ())
    with pytest.raises(ValueError, match="must not be empty"):
        SignedBy("")
    with pytest.raises(ValueError, match="unknown MSP role"):
        SignedBy(ITOPS, 99)


def _envelope(rule: Any, *msp_ids: str) -> bytes:
    env = policies_pb2.SignaturePolicyEnvelope(version=0)
    for msp in msp_ids:
        role = msp_principal_pb2.MSPRole(msp_identifier=msp, role=ROLE_PEER)
        env.identities.append(
            msp_principal_pb2.MSPPrincipal(
                principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
                principal=role.SerializeToString(),
            )
        )
    if rule is not None:
        env.rule.CopyFrom(rule)
    return bytes(env.SerializeToString())


def _nout(n: int, *rules: Any) -> Any:
    out = policies_pb2.SignaturePolicy()
    out.n_out_of.n = n
    for r in rules:
        out.n_out_of.rules.append(r)
    return out


def test_decode_refuses_what_it_cannot_represent() -> None:
    with pytest.raises(ValueError, match="not a SignaturePolicyEnvelope"):
        decode_policy(b"\xff\xff\xff")
    out_of_range = _nout(1, policies_pb2.SignaturePolicy(signed_by=3))
    with pytest.raises(ValueError, match="index 3 is out of range"):
        decode_policy(_envelope(out_of_range, ITOPS))
    with pytest.raises(ValueError, match="empty rule"):
        decode_policy(_envelope(None, ITOPS))
    with pytest.raises(ValueError, match="1 <= n"):
        decode_policy(_envelope(_nout(0), ITOPS))
    deep = policies_pb2.SignaturePolicy(signed_by=0)
    for _ in range(MAX_POLICY_DEPTH):
        deep = _nout(1, deep)
    with pytest.raises(ValueError, match="nested deeper"):
        decode_policy(_envelope(deep, ITOPS))
    env = policies_pb2.SignaturePolicyEnvelope()
    env.identities.append(
        msp_principal_pb2.MSPPrincipal(
            principal_classification=msp_principal_pb2.MSPPrincipal.IDENTITY, principal=b"x"
        )
    )
    with pytest.raises(ValueError, match="not an MSP role"):
        decode_policy(bytes(env.SerializeToString()))
    bad_role = msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE, principal=b"\xff\xff"
    )
    env2 = policies_pb2.SignaturePolicyEnvelope()
    env2.identities.append(bad_role)
    with pytest.raises(ValueError, match="undecodable MSP role"):
        decode_policy(bytes(env2.SerializeToString()))


def test_the_every_org_helper_refuses_a_nested_policy_instead_of_misreading_it() -> None:
    nested = encode_policy(owner_and_majority(COMPLIANCE, ORGS))
    with pytest.raises(ValueError, match="decode_policy"):
        KeyEndorsementPolicy(nested)
    flat = KeyEndorsementPolicy()
    flat.add_orgs(ITOPS, SECOPS)
    assert decode_policy(flat.policy()) == OutOf(2, (SignedBy(ITOPS), SignedBy(SECOPS)))
    assert KeyEndorsementPolicy(encode_policy(SignedBy(ITOPS))).list_orgs() == [ITOPS]


def test_stub_sets_and_reads_a_nested_key_policy() -> None:
    peer = FakePeer()
    policy = encode_policy(owner_and_majority(ITOPS, ORGS))

    async def body(stub: ChaincodeStub) -> tuple[Any, Any, str]:
        before = await stub.get_key_endorsement_policy("host:h1")
        await stub.set_key_endorsement_policy("host:h1", policy)
        try:
            await stub.set_key_endorsement_policy("host:h2", b"\xff\xff")
            refusal = "accepted"
        except ValueError as exc:
            refusal = str(exc)
        return before, await stub.get_key_endorsement_policy("host:h1"), refusal

    before, after, refusal = run_tx(body, peer)
    assert before is None
    assert after == owner_and_majority(ITOPS, ORGS)
    assert peer.metadata["host:h1"][VALIDATION_PARAMETER] == policy
    assert refusal == "not a SignaturePolicyEnvelope"
    assert "host:h2" not in peer.metadata
