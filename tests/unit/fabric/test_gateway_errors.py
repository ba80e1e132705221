"""Errors per phase: gRPC code, transaction id, and each failing node's address/MSP/message."""

from __future__ import annotations

import grpc
import pytest

from patchledger.app.fabric._client import Timeouts
from patchledger.app.fabric._rpcstatus import decode_error_details, encode_status
from patchledger.app.fabric.errors import (
    CommitError,
    CommitStatusError,
    EndorseError,
    ErrorDetail,
    GatewayError,
    SubmitError,
)
from patchledger.app.fabric.gateway import Gateway, connect
from tests.support.fabric.fake_gateway import FakeGateway, ScriptedFailure
from tests.support.fabric.pki import TestIdentity

PEER_DETAILS = (
    ErrorDetail("peer0.itops:9051", "ITOpsMSP", "chaincode response 500, patch P-1 is APPROVED"),
    ErrorDetail("peer0.compliance:11051", "ComplianceMSP", "access denied"),
)


def test_status_details_round_trip() -> None:
    encoded = encode_status(grpc.StatusCode.ABORTED, "failed to endorse", PEER_DETAILS)
    assert decode_error_details(encoded) == list(PEER_DETAILS)
    assert decode_error_details(b"\xff\xff garbage") == []


def test_endorse_error_carries_details(gateway: Gateway, fake: FakeGateway) -> None:
    fake.fail_next(
        "endorse",
        ScriptedFailure(grpc.StatusCode.ABORTED, "failed to endorse transaction", PEER_DETAILS),
    )
    contract = gateway.get_network("patches").get_contract("patchledger")
    with pytest.raises(EndorseError) as info:
        contract.submit("Approve", ["P-1"])
    error = info.value
    assert error.code == grpc.StatusCode.ABORTED
    assert error.details == PEER_DETAILS
    assert error.transaction_id == fake.captured.endorse[0].transaction_id
    assert error.endpoint == fake.address
    text = str(error)
    assert error.transaction_id in text
    assert "Address: peer0.itops:9051, MspId: ITOpsMSP, Message: chaincode response 500" in text
    assert "MspId: ComplianceMSP" in text
    assert not fake.captured.submit


def test_evaluate_error_is_gateway_error(gateway: Gateway, fake: FakeGateway) -> None:
    fake.fail_next("evaluate", ScriptedFailure(grpc.StatusCode.UNKNOWN, "chaincode response 404"))
    contract = gateway.get_network("patches").get_contract("patchledger")
    with pytest.raises(GatewayError) as info:
        contract.evaluate_transaction("Get", "nope")
    assert type(info.value) is GatewayError
    assert info.value.code == grpc.StatusCode.UNKNOWN
    assert "chaincode response 404" in str(info.value)


def test_submit_error(gateway: Gateway, fake: FakeGateway) -> None:
    orderer = ErrorDetail("orderer1:7050", "OrdererMSP", "SERVICE_UNAVAILABLE")
    fake.fail_next("submit", ScriptedFailure(grpc.StatusCode.UNAVAILABLE, "no orderers", [orderer]))
    contract = gateway.get_network("patches").get_contract("patchledger")
    with pytest.raises(SubmitError) as info:
        contract.submit("Approve", ["P-1"])
    assert info.value.details == (orderer,)
    assert info.value.transaction_id == fake.captured.endorse[0].transaction_id


def test_commit_status_error(gateway: Gateway, fake: FakeGateway) -> None:
    fake.fail_next("commit_status", ScriptedFailure(grpc.StatusCode.PERMISSION_DENIED, "ACL"))
    contract = gateway.get_network("patches").get_contract("patchledger")
    with pytest.raises(CommitStatusError) as info:
        contract.submit("Approve", ["P-1"])
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_commit_status_deadline(
    alice: TestIdentity, grpc_channel: grpc.Channel, fake: FakeGateway
) -> None:
    timeouts = Timeouts(commit_status=0.2)
    with connect(alice.identity, alice.signer, grpc_channel, timeouts=timeouts) as gateway:
        contract = gateway.get_network("patches").get_contract("patchledger")
        fake.hold_commits = True  # accepted by the orderers, never committed
        commit = contract.submit_async("Approve", ["P-1"])
        with pytest.raises(CommitStatusError) as info:
            commit.get_status()
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert info.value.transaction_id == commit.transaction_id


def test_invalid_commit_raises_commit_error(gateway: Gateway, fake: FakeGateway) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    proposal = contract.new_proposal("Approve", ["P-1"])
    fake.commit_codes[proposal.transaction_id] = 11  # MVCC_READ_CONFLICT
    transaction = proposal.endorse()
    status = transaction.submit().get_status()
    assert not status.successful
    assert status.code_name == "MVCC_READ_CONFLICT"
    # and through contract.submit():
    fake.default_commit_code = 11
    with pytest.raises(CommitError) as info:
        contract.submit("Approve", ["P-1"])
    assert info.value.code == 11
    assert info.value.code_name == "MVCC_READ_CONFLICT"
    assert "MVCC_READ_CONFLICT" in str(info.value)
    assert info.value.block_number == 2


def test_unreachable_peer(alice: TestIdentity) -> None:
    channel = grpc.insecure_channel("127.0.0.1:1")
    try:
        with connect(alice.identity, alice.signer, channel, endpoint="127.0.0.1:1") as gateway:
            contract = gateway.get_network("patches").get_contract("patchledger")
            with pytest.raises(GatewayError) as info:
                contract.evaluate("Get", timeout=2)
    finally:
        channel.close()
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert "127.0.0.1:1" in str(info.value)
