"""Signatures from custom or offline signers are normalised to low S before they are sent."""

from __future__ import annotations

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from patchledger.app.fabric.errors import SigningError
from patchledger.app.fabric.gateway import connect
from patchledger.app.fabric.signing import CURVE_ORDERS, Signer, is_low_s, verify_signature
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.fabric.pki import TestIdentity

N = CURVE_ORDERS["secp256r1"]


def _high_s(signer: Signer) -> Signer:
    """A signer (an HSM, say) that returns the other valid form of each signature: high S."""

    def sign(digest: bytes) -> bytes:
        r, s = decode_dss_signature(signer(digest))
        high = encode_dss_signature(r, N - s)
        assert not is_low_s(high, N)
        return high

    return sign


def test_custom_signer_high_s_is_normalised(
    alice: TestIdentity, grpc_channel: grpc.Channel, fake: FakeGateway
) -> None:
    with connect(alice.identity, _high_s(alice.signer), grpc_channel) as gateway:
        network = gateway.get_network("patches")
        contract = network.get_contract("patchledger")
        assert contract.evaluate_transaction("GetPatch", "P-1") == b"GetPatch:P-1"
        assert contract.submit_transaction("Propose", "P-1") == b"Propose:P-1"
        with network.read_blocks() as blocks:
            assert [b.number for b in blocks] == [0, 1]
    signed = fake.captured.evaluate[0].proposed_transaction
    assert is_low_s(signed.signature, N)
    assert verify_signature(alice.identity.certificate, signed.proposal_bytes, signed.signature)
    envelope = fake.captured.submit[0].prepared_transaction
    assert verify_signature(alice.identity.certificate, envelope.payload, envelope.signature)
    status = fake.captured.commit_status[0]
    assert verify_signature(alice.identity.certificate, status.request, status.signature)


def test_offline_high_s_signatures_are_normalised(
    alice: TestIdentity, grpc_channel: grpc.Channel, fake: FakeGateway
) -> None:
    hsm = _high_s(alice.signer)
    with connect(alice.identity, None, grpc_channel) as gateway:
        network = gateway.get_network("patches")
        unsigned = network.get_contract("patchledger").new_proposal("Propose", ["P-3"])
        proposal = gateway.new_signed_proposal(unsigned.bytes, hsm(unsigned.digest))
        transaction = proposal.endorse()
        signed_tx = gateway.new_signed_transaction(transaction.bytes, hsm(transaction.digest))
        commit = signed_tx.submit()
        status = gateway.new_signed_commit(commit.bytes, hsm(commit.digest)).get_status()
        request = network.new_block_events_request(start_block=0, stop_block=-1)
        request.sign_with(hsm(request.digest))
        with request.get_blocks() as blocks:
            assert [b.number for b in blocks] == [0, 1]
    assert status.successful
    assert is_low_s(fake.captured.endorse[0].proposed_transaction.signature, N)
    assert is_low_s(fake.captured.submit[0].prepared_transaction.signature, N)
    assert is_low_s(fake.captured.commit_status[0].signature, N)


def test_signer_returning_no_der_signature_is_a_signing_error(
    alice: TestIdentity, grpc_channel: grpc.Channel
) -> None:
    with connect(alice.identity, lambda digest: b"not DER", grpc_channel) as gateway:
        contract = gateway.get_network("patches").get_contract("patchledger")
        with pytest.raises(SigningError, match="DER"):
            contract.evaluate_transaction("GetPatch", "P-1")
        unsigned = contract.new_proposal("Propose", ["P-3"])
        with pytest.raises(SigningError, match="DER"):
            gateway.new_signed_proposal(unsigned.bytes, b"not DER")
