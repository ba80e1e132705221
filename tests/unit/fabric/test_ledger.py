"""Ledger verification on self-built, self-signed chains: the first tampering is pinpointed."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from patchledger.app.fabric._protos import common_pb2, transaction_pb2
from patchledger.app.fabric.blockhash import block_header_hash, header_bytes, header_hash
from patchledger.app.fabric.gateway import Gateway
from patchledger.app.fabric.ledger import LedgerVerifier, verify_chain
from patchledger.app.fabric.trust import TrustAnchors
from tests.support.fabric.blocks import ChainBuilder, sign_block, signed_transaction
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.fabric.pki import TestCA, TestIdentity


def test_header_der_reference_vectors() -> None:
    assert header_bytes(0, b"", bytes([1, 2, 3])).hex() == "300a02010004000403010203"
    assert (
        header_hash(0, b"", bytes([1, 2, 3])).hex()
        == "114fdb6d816c6123d3b087e6a228f00b16886c178e0674565ec12b19ead76e29"
    )
    assert header_bytes(255, b"\xff", b"\x80").hex() == "300a020200ff0401ff040180"
    assert (
        header_hash(128, bytes(32), bytes(32)).hex()
        == "c27767b427898d8d4193098c5eb3584a44e19eaa2dfe84e83df348ef21d7f192"
    )
    assert (
        header_hash(2**64 - 1, bytes(200), b"\x07").hex()
        == "aa5f9128424cce8114cb9f9f6d049bc2e68c6ba6ad674fbeacd5ab7c00789338"
    )


@pytest.fixture
def anchors(secops_ca: TestCA, orderer_ca: TestCA) -> TrustAnchors:
    return TrustAnchors(
        {"SecOpsMSP": [secops_ca.certificate], "OrdererMSP": [orderer_ca.certificate]},
        frozenset({"OrdererMSP"}),
    )


def _tx(creator: TestIdentity, peer: TestIdentity, function: str) -> bytes:
    return signed_transaction(
        creator,
        channel="patches",
        chaincode="patchledger",
        function=function,
        arguments=[b"P-1"],
        event=(function, b"{}"),
        endorsers=[peer],
    )


@pytest.fixture
def chain(
    alice: TestIdentity, peer_identity: TestIdentity, orderer_identity: TestIdentity
) -> list[Any]:
    builder = ChainBuilder("patches", [orderer_identity])
    builder.genesis()
    builder.add([_tx(alice, peer_identity, "Propose"), _tx(alice, peer_identity, "Test")])
    builder.add([_tx(alice, peer_identity, "Approve")], codes=[11])  # invalid txs are signed too
    builder.add([_tx(alice, peer_identity, "Release")])
    return builder.blocks


def _copy(blocks: list[Any]) -> list[Any]:
    return [common_pb2.Block.FromString(b.SerializeToString()) for b in blocks]


def test_untampered_chain_verifies(chain: list[Any], anchors: TrustAnchors) -> None:
    report = verify_chain(chain, anchors)
    assert report.ok, report.inconsistency
    assert report.blocks_checked == 4
    assert report.transactions_checked == 5
    assert report.last_block_number == 3
    assert report.last_block_hash == block_header_hash(chain[3].header)


def test_altered_envelope_breaks_data_hash(chain: list[Any], anchors: TrustAnchors) -> None:
    blocks = _copy(chain)
    envelope = bytearray(blocks[2].data.data[0])
    envelope[-5] ^= 0x01
    blocks[2].data.data[0] = bytes(envelope)
    report = verify_chain(blocks, anchors)
    assert report.inconsistency is not None
    assert (report.inconsistency.block_number, report.inconsistency.check) == (2, "data_hash")
    assert report.blocks_checked == 2
    assert "block 2: data_hash" in str(report.inconsistency)


def test_rewritten_block_with_fixed_data_hash_loses_orderer_signature(
    chain: list[Any], anchors: TrustAnchors, alice: TestIdentity, peer_identity: TestIdentity
) -> None:
    blocks = _copy(chain)
    blocks[2].data.data[0] = _tx(alice, peer_identity, "ApproveForged")
    blocks[2].header.data_hash = hashlib.sha256(b"".join(blocks[2].data.data)).digest()
    report = verify_chain(blocks, anchors)
    assert report.inconsistency is not None
    assert report.inconsistency.block_number == 2
    assert report.inconsistency.check == "orderer_signature"
    assert "invalid signature by OrdererMSP" in report.inconsistency.message


def test_rewritten_block_breaks_the_next_previous_hash(
    chain: list[Any], anchors: TrustAnchors, orderer_identity: TestIdentity
) -> None:
    blocks = _copy(chain)
    blocks[2].header.data_hash = hashlib.sha256(b"").digest()
    del blocks[2].data.data[:]
    # the attacker even holds the orderer key and re-signs block 2
    signatures = common_pb2.Metadata(signatures=[sign_block(blocks[2], orderer_identity)])
    blocks[2].metadata.metadata[common_pb2.SIGNATURES] = signatures.SerializeToString()
    report = verify_chain(blocks, anchors)
    assert report.inconsistency is not None
    assert (report.inconsistency.block_number, report.inconsistency.check) == (3, "previous_hash")


def test_rogue_orderer_signature(
    chain: list[Any], anchors: TrustAnchors, orderer_identity: TestIdentity
) -> None:
    rogue = TestCA("OrdererMSP").issue("orderer0")  # same MSP id, foreign CA
    blocks = _copy(chain)
    signatures = common_pb2.Metadata(signatures=[sign_block(blocks[1], rogue)])
    blocks[1].metadata.metadata[common_pb2.SIGNATURES] = signatures.SerializeToString()
    report = verify_chain(blocks, anchors)
    assert report.inconsistency is not None
    assert report.inconsistency.block_number == 1
    assert "not issued by a OrdererMSP CA" in report.inconsistency.message


def test_unsigned_block_is_refused(chain: list[Any], anchors: TrustAnchors) -> None:
    blocks = _copy(chain)
    blocks[3].metadata.metadata[common_pb2.SIGNATURES] = b""
    report = verify_chain(blocks, anchors)
    assert report.inconsistency is not None
    assert (report.inconsistency.block_number, report.inconsistency.check) == (
        3,
        "orderer_signature",
    )
    assert "0 valid orderer signature(s), 1 required" in report.inconsistency.message


def test_forged_creator_signature_in_orderer_signed_block(
    alice: TestIdentity,
    peer_identity: TestIdentity,
    orderer_identity: TestIdentity,
    secops_ca: TestCA,
    anchors: TrustAnchors,
) -> None:
    mallory = secops_ca.issue("mallory")
    forged = common_pb2.Envelope.FromString(_tx(alice, peer_identity, "Approve"))
    forged.signature = mallory.signer.sign_message(forged.payload)  # not alice's key
    builder = ChainBuilder("patches", [orderer_identity])
    builder.add([_tx(alice, peer_identity, "Propose"), forged.SerializeToString()])
    report = verify_chain(builder.blocks, anchors)
    found = report.inconsistency
    assert found is not None
    assert (found.block_number, found.transaction_index, found.check) == (
        1,
        1,
        "creator_signature",
    )
    payload = common_pb2.Payload.FromString(forged.payload)
    tx_id = common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id
    assert found.transaction_id == tx_id
    assert f"block 1, transaction 1 ({tx_id}): creator_signature" in str(found)


def test_creator_from_unknown_ca(
    peer_identity: TestIdentity, orderer_identity: TestIdentity, anchors: TrustAnchors
) -> None:
    outsider = TestCA("SecOpsMSP").issue("eve")
    builder = ChainBuilder("patches", [orderer_identity])
    builder.add([_tx(outsider, peer_identity, "Propose")])
    found = verify_chain(builder.blocks, anchors).inconsistency
    assert found is not None
    assert (found.block_number, found.check) == (1, "creator_certificate")


def test_tampered_endorsement(
    alice: TestIdentity,
    peer_identity: TestIdentity,
    orderer_identity: TestIdentity,
    anchors: TrustAnchors,
) -> None:
    envelope = common_pb2.Envelope.FromString(_tx(alice, peer_identity, "Propose"))
    payload = common_pb2.Payload.FromString(envelope.payload)
    transaction = transaction_pb2.Transaction.FromString(payload.data)
    action = transaction_pb2.ChaincodeActionPayload.FromString(transaction.actions[0].payload)
    action.action.endorsements[0].signature = alice.signer.sign_message(b"something else")
    transaction.actions[0].payload = action.SerializeToString()
    payload.data = transaction.SerializeToString()
    envelope.payload = payload.SerializeToString()
    envelope.signature = alice.signer.sign_message(envelope.payload)  # creator re-signs
    builder = ChainBuilder("patches", [orderer_identity])
    builder.add([envelope.SerializeToString()])
    found = verify_chain(builder.blocks, anchors).inconsistency
    assert found is not None
    assert (found.block_number, found.check) == (1, "endorsement")


def test_missing_block_is_detected(chain: list[Any], anchors: TrustAnchors) -> None:
    report = verify_chain([chain[0], chain[1], chain[3]], anchors)
    assert report.inconsistency is not None
    assert (report.inconsistency.block_number, report.inconsistency.check) == (3, "block_number")
    assert "expected block 2" in report.inconsistency.message


def test_segment_verification_from_a_trusted_hash(chain: list[Any], anchors: TrustAnchors) -> None:
    trusted = block_header_hash(chain[1].header)
    assert verify_chain(chain[2:], anchors, previous_hash=trusted, expected_number=2).ok
    wrong = verify_chain(chain[2:], anchors, previous_hash=b"\x00" * 32, expected_number=2)
    assert wrong.inconsistency is not None
    assert wrong.inconsistency.check == "previous_hash"


def test_incremental_verifier(chain: list[Any], anchors: TrustAnchors) -> None:
    verifier = LedgerVerifier(anchors)
    assert all(verifier.verify_block(block) is None for block in chain)
    assert verifier.blocks_checked == 4


def test_trust_anchors_from_msp_dirs(
    tmp_path: Any, secops_ca: TestCA, orderer_ca: TestCA, alice: TestIdentity, chain: list[Any]
) -> None:
    alice.write_msp_dir(tmp_path / "secops", secops_ca.cert_pem)
    orderer_ca.issue("o").write_msp_dir(tmp_path / "orderer", orderer_ca.cert_pem)
    anchors = TrustAnchors.from_msp_dirs(
        {"SecOpsMSP": tmp_path / "secops", "OrdererMSP": tmp_path / "orderer"}, ["OrdererMSP"]
    )
    assert verify_chain(chain, anchors).ok


def test_verify_ledger_read_through_deliver(
    gateway: Gateway, fake: FakeGateway, anchors: TrustAnchors
) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    contract.submit_transaction("Propose", "P-1")
    contract.submit_transaction("Approve", "P-1")
    blocks = [b.raw for b in gateway.get_network("patches").read_blocks()]
    report = verify_chain(blocks, anchors)
    assert report.ok, report.inconsistency
    assert report.blocks_checked == 3
