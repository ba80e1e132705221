"""The Gateway client against the in-process fake peer: requests, signatures, results."""

from __future__ import annotations

import hashlib

import grpc
import pytest

from patchledger.app.fabric._protos import (
    chaincode_pb2,
    common_pb2,
    gateway_pb2,
    identities_pb2,
    proposal_pb2,
)
from patchledger.app.fabric.errors import BlockParseError, MessageParseError, SigningError
from patchledger.app.fabric.gateway import Gateway, connect
from patchledger.app.fabric.signing import CURVE_ORDERS, is_low_s, verify_signature
from patchledger.app.fabric.transaction_context import TransactionContext, compute_transaction_id
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.fabric.pki import TestCA, TestIdentity

N = CURVE_ORDERS["secp256r1"]


def test_transaction_id_reference_vector() -> None:
    nonce = bytes(range(24))
    expected = "0c430263c6f36dbadd7a3346dd82bf70c8fbc9c66f642799c6ac7b8a1ec70bf9"
    assert compute_transaction_id(nonce, b"creator-bytes") == expected
    assert TransactionContext.new(b"creator-bytes", nonce).transaction_id == expected


def test_transaction_context_refuses_empty_inputs() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        TransactionContext.new(b"", b"x")


def test_proposal_structure(gateway: Gateway, alice: TestIdentity) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger", "PatchContract")
    proposal = contract.new_proposal(
        "Approve",
        ["P-1", b"\x00\x01"],
        transient_data={"secret": b"s3"},
        endorsing_organizations=["SecOpsMSP", "ITOpsMSP"],
        nonce=bytes(range(24)),
    )
    proposed = gateway_pb2.ProposedTransaction.FromString(proposal.bytes)
    assert proposed.endorsing_organizations == ["SecOpsMSP", "ITOpsMSP"]
    assert proposed.transaction_id == compute_transaction_id(
        bytes(range(24)), alice.identity.creator
    )
    inner = proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes)
    header = common_pb2.Header.FromString(inner.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    assert channel_header.type == common_pb2.ENDORSER_TRANSACTION
    assert channel_header.channel_id == "patches"
    assert channel_header.tx_id == proposal.transaction_id
    assert channel_header.epoch == 0
    assert channel_header.HasField("timestamp")
    extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    assert extension.chaincode_id.name == "patchledger"
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    assert signature_header.nonce == bytes(range(24))
    creator = identities_pb2.SerializedIdentity.FromString(signature_header.creator)
    assert creator.mspid == "SecOpsMSP"
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(inner.payload)
    assert dict(payload.TransientMap) == {"secret": b"s3"}
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input).chaincode_spec
    assert list(spec.input.args) == [b"PatchContract:Approve", b"P-1", b"\x00\x01"]
    assert proposal.digest == hashlib.sha256(proposed.proposal.proposal_bytes).digest()
    assert not proposed.proposal.signature  # signed lazily


def test_evaluate_sends_signed_low_s_proposal(
    gateway: Gateway, fake: FakeGateway, alice: TestIdentity
) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    assert contract.evaluate_transaction("GetPatch", "P-1") == b"GetPatch:P-1"
    (request,) = fake.captured.evaluate
    assert request.channel_id == "patches"
    signed = request.proposed_transaction
    assert is_low_s(signed.signature, N)
    assert verify_signature(alice.identity.certificate, signed.proposal_bytes, signed.signature)


def test_evaluate_targets_organizations(gateway: Gateway, fake: FakeGateway) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    contract.evaluate("Get", ["x"], endorsing_organizations=["ITOpsMSP"])
    assert list(fake.captured.evaluate[0].target_organizations) == ["ITOpsMSP"]


def test_submit_endorses_submits_and_waits(
    gateway: Gateway, fake: FakeGateway, alice: TestIdentity
) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    result = contract.submit("Propose", ["P-9"], endorsing_organizations=["SecOpsMSP"])
    assert result == b"Propose:P-9"
    (endorse,) = fake.captured.endorse
    (submit,) = fake.captured.submit
    (status,) = fake.captured.commit_status
    assert list(endorse.endorsing_organizations) == ["SecOpsMSP"]
    tx_id = endorse.transaction_id
    assert submit.transaction_id == tx_id
    envelope = submit.prepared_transaction
    assert verify_signature(alice.identity.certificate, envelope.payload, envelope.signature)
    inner = gateway_pb2.CommitStatusRequest.FromString(status.request)
    assert inner.transaction_id == tx_id
    assert inner.channel_id == "patches"
    assert inner.identity == alice.identity.creator
    assert verify_signature(alice.identity.certificate, status.request, status.signature)
    assert fake.height == 2


def test_submit_async_returns_commit_handle(gateway: Gateway) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    submitted = contract.submit_async("Propose", ["P-2"])
    assert submitted.result == b"Propose:P-2"
    status = submitted.get_status()
    assert status.successful
    assert status.block_number == 1
    assert status.transaction_id == submitted.transaction_id
    assert status.code_name == "VALID"


def test_offline_signing_flow(
    alice: TestIdentity, grpc_channel: grpc.Channel, fake: FakeGateway
) -> None:
    with connect(alice.identity, None, grpc_channel) as gateway:
        contract = gateway.get_network("patches").get_contract("patchledger")
        unsigned = contract.new_proposal("Propose", ["P-3"])
        with pytest.raises(SigningError, match="no sign implementation"):
            unsigned.endorse()
        # bytes out, signature in, at each step
        proposal = gateway.new_signed_proposal(unsigned.bytes, alice.signer(unsigned.digest))
        transaction = proposal.endorse()
        assert transaction.result == b"Propose:P-3"
        rebuilt = gateway.new_signed_transaction(
            transaction.bytes, alice.signer(transaction.digest)
        )
        assert rebuilt.transaction_id == unsigned.transaction_id
        commit = rebuilt.submit()
        signed_commit = gateway.new_signed_commit(commit.bytes, alice.signer(commit.digest))
        status = signed_commit.get_status()
    assert status.successful
    assert status.transaction_id == unsigned.transaction_id
    assert fake.captured.endorse[0].proposed_transaction.signature  # the offline signature


def test_proposal_bytes_round_trip(gateway: Gateway) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    proposal = contract.new_proposal("F", ["a"])
    rebuilt = gateway.new_proposal(proposal.bytes)
    assert rebuilt.transaction_id == proposal.transaction_id
    assert rebuilt.channel == "patches"
    assert rebuilt.digest == proposal.digest


def test_wrong_signer_is_refused_by_peer(
    alice: TestIdentity, grpc_channel: grpc.Channel, secops_ca: TestCA
) -> None:
    from patchledger.app.fabric.errors import GatewayError

    mallory = secops_ca.issue("mallory")
    with connect(alice.identity, mallory.signer, grpc_channel) as gateway:
        contract = gateway.get_network("patches").get_contract("patchledger")
        with pytest.raises(GatewayError) as info:
            contract.evaluate_transaction("Get")
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED


_BLOCK = common_pb2.Block(
    header=common_pb2.BlockHeader(number=1, previous_hash=b"\xff" * 32, data_hash=b"\xfe" * 32),
    data=common_pb2.BlockData(data=[b"envelope"]),
).SerializeToString()


@pytest.mark.parametrize("rebuild", ["new_proposal", "new_transaction", "new_commit"])
@pytest.mark.parametrize("data", [b"", b"\xff\xfe not protobuf", _BLOCK],
                         ids=["empty", "garbage", "a block"])
def test_bytes_that_are_not_the_message_raise_message_parse_error(
    gateway: Gateway, rebuild: str, data: bytes
) -> None:
    """Offline-signing bytes are proposals, transactions and commit requests, not blocks: a
    malformed one is a MessageParseError naming the message expected, not a BlockParseError."""
    with pytest.raises(MessageParseError, match=r"malformed .* bytes") as raised:
        getattr(gateway, rebuild)(data)
    assert not isinstance(raised.value, BlockParseError)
    expected = {"new_proposal": "ProposedTransaction", "new_transaction": "PreparedTransaction",
                "new_commit": "CommitStatusRequest"}[rebuild]
    assert expected in str(raised.value)
