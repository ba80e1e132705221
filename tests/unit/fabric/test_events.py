"""Chaincode events and block events against the fake peer, with checkpoint resume."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import grpc
import pytest

from patchledger.app.fabric._protos import ab_pb2, common_pb2, gateway_pb2
from patchledger.app.fabric.checkpoint import FileCheckpointer, InMemoryCheckpointer
from patchledger.app.fabric.errors import CheckpointError, EventsError
from patchledger.app.fabric.gateway import Gateway
from tests.support.fabric.blocks import signed_transaction
from tests.support.fabric.fake_gateway import FakeGateway, ScriptedFailure
from tests.support.fabric.pki import TestIdentity


def _submit(gateway: Gateway, *ids: str) -> list[str]:
    contract = gateway.get_network("patches").get_contract("patchledger")
    tx_ids = []
    for patch_id in ids:
        submitted = contract.submit_async("Propose", [patch_id])
        submitted.get_status()
        tx_ids.append(submitted.transaction_id)
    return tx_ids


def test_chaincode_events_from_start_block(gateway: Gateway, fake: FakeGateway) -> None:
    tx_ids = _submit(gateway, "P-1", "P-2")
    network = gateway.get_network("patches")
    with network.get_chaincode_events("patchledger", start_block=0) as events:
        first, second = next(events), next(events)
    assert (first.block_number, first.transaction_id) == (1, tx_ids[0])
    assert (second.block_number, second.transaction_id) == (2, tx_ids[1])
    assert first.chaincode_name == "patchledger"
    assert first.event_name == "Propose"
    assert first.payload == b"Propose:P-1"
    (request,) = fake.captured.chaincode_events
    inner = gateway_pb2.ChaincodeEventsRequest.FromString(request.request)
    assert inner.start_position.specified.number == 0
    assert inner.identity == gateway.identity.creator


def test_chaincode_events_default_to_next_commit(gateway: Gateway, fake: FakeGateway) -> None:
    _submit(gateway, "old")
    network = gateway.get_network("patches")
    with network.get_chaincode_events("patchledger") as events:
        worker = threading.Thread(target=_submit, args=(gateway, "new"))
        worker.start()
        event = next(events)
        worker.join()
    assert event.payload == b"Propose:new"
    inner = gateway_pb2.ChaincodeEventsRequest.FromString(fake.captured.chaincode_events[0].request)
    assert inner.start_position.WhichOneof("Type") == "next_commit"


def test_chaincode_events_resume_from_file_checkpoint(
    tmp_path: Path, gateway: Gateway, fake: FakeGateway
) -> None:
    tx_ids = _submit(gateway, "P-1", "P-2", "P-3")
    network = gateway.get_network("patches")
    path = tmp_path / "cc.checkpoint"
    checkpointer = FileCheckpointer(path)
    seen = []
    with network.get_chaincode_events("patchledger", start_block=0, checkpoint=checkpointer) as ev:
        for _ in range(2):
            event = next(ev)
            seen.append(event.transaction_id)
            checkpointer.checkpoint_chaincode_event(event)
    assert json.loads(path.read_text()) == {"blockNumber": 2, "transactionId": tx_ids[1]}

    restarted = FileCheckpointer(path)  # a new process
    with network.get_chaincode_events("patchledger", start_block=0, checkpoint=restarted) as ev:
        event = next(ev)
    assert event.transaction_id == tx_ids[2]  # nothing repeated, nothing lost
    inner = gateway_pb2.ChaincodeEventsRequest.FromString(fake.captured.chaincode_events[1].request)
    assert inner.start_position.specified.number == 2  # the checkpoint wins over start_block
    assert inner.after_transaction_id == tx_ids[1]
    assert seen == tx_ids[:2]


def test_chaincode_events_error(gateway: Gateway, fake: FakeGateway) -> None:
    fake.fail_next("chaincode_events", ScriptedFailure(grpc.StatusCode.PERMISSION_DENIED, "ACL"))
    stream = gateway.get_network("patches").get_chaincode_events("patchledger")
    with pytest.raises(EventsError) as info:
        next(stream)
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_close_stops_iteration(gateway: Gateway) -> None:
    stream = gateway.get_network("patches").get_chaincode_events("patchledger")
    stream.close()
    assert list(stream) == []


def test_block_events_parse_transactions(
    gateway: Gateway, fake: FakeGateway, alice: TestIdentity
) -> None:
    (tx_id,) = _submit(gateway, "P-1")
    with gateway.get_network("patches").get_block_events(start_block=0) as blocks:
        genesis, block = next(blocks), next(blocks)
    assert genesis.number == 0
    assert genesis.transactions[0].header_type == "CONFIG"
    assert block.number == 1
    (tx,) = block.transactions
    assert tx.transaction_id == tx_id
    assert tx.creator_msp_id == "SecOpsMSP"
    assert tx.creator_certificate == alice.identity.credentials
    assert tx.valid and tx.validation_code_name == "VALID"
    assert tx.chaincode_name == "patchledger"
    assert tx.function == "Propose"
    assert tx.arguments == (b"P-1",)
    assert tx.event is not None and tx.event.event_name == "Propose"
    assert tx.header_type == "ENDORSER_TRANSACTION"
    assert tx.timestamp is not None
    envelope = fake.captured.deliver[0]
    payload = common_pb2.Payload.FromString(envelope.payload)
    channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    assert channel_header.type == common_pb2.DELIVER_SEEK_INFO
    assert channel_header.channel_id == "patches"
    seek = ab_pb2.SeekInfo.FromString(payload.data)
    assert seek.start.specified.number == 0
    assert seek.stop.specified.number == 2**64 - 1


def test_invalid_transaction_is_reported_with_its_code(gateway: Gateway, fake: FakeGateway) -> None:
    fake.default_commit_code = 11
    _submit(gateway, "P-1")
    with gateway.get_network("patches").get_block_events(start_block=1) as blocks:
        (tx,) = next(blocks).transactions
    assert not tx.valid
    assert tx.validation_code_name == "MVCC_READ_CONFLICT"


def test_transaction_events_resume_inside_a_block(
    tmp_path: Path, gateway: Gateway, fake: FakeGateway, alice: TestIdentity
) -> None:
    envelopes = [
        signed_transaction(alice, channel="patches", chaincode="patchledger", function=f"F{i}")
        for i in range(3)
    ]
    fake.add_block(envelopes)  # block 1 with three transactions
    fake.add_block(envelopes[:1])  # block 2 (duplicate tx id, as Fabric would record it)
    network = gateway.get_network("patches")
    checkpointer = FileCheckpointer(tmp_path / "tx.json")
    with network.get_transaction_events(start_block=1, checkpoint=checkpointer) as stream:
        for _ in range(2):
            tx = next(stream)
            checkpointer.checkpoint_parsed_transaction(tx)
    assert (checkpointer.block_number, checkpointer.transaction_id) == (1, tx.transaction_id)

    restarted = FileCheckpointer(tmp_path / "tx.json")
    with network.get_transaction_events(start_block=1, checkpoint=restarted) as stream:
        third = next(stream)
        restarted.checkpoint_parsed_transaction(third)
        fourth = next(stream)
    assert (third.block_number, third.index, third.function) == (1, 2, "F2")
    assert (fourth.block_number, fourth.index, fourth.function) == (2, 0, "F0")
    assert (restarted.block_number, restarted.transaction_id) == (2, "")


def test_read_blocks_is_bounded(gateway: Gateway) -> None:
    _submit(gateway, "a", "b")
    numbers = [block.number for block in gateway.get_network("patches").read_blocks()]
    assert numbers == [0, 1, 2]


def test_deliver_status_error(gateway: Gateway) -> None:
    with pytest.raises(EventsError) as info:
        list(gateway.get_network("no-such-channel").read_blocks())
    assert info.value.status == "NOT_FOUND"


def test_file_checkpointer_formats(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    fresh = FileCheckpointer(path)
    assert fresh.is_empty and not path.exists()
    fresh.checkpoint_block(7)
    assert FileCheckpointer(path).block_number == 8
    path.write_text('{"blockNumber": "12", "transactionId": "abc"}')  # Node writes a string
    loaded = FileCheckpointer(path)
    assert (loaded.block_number, loaded.transaction_id) == (12, "abc")
    path.write_text("{broken")
    with pytest.raises(CheckpointError, match="malformed"):
        FileCheckpointer(path)
    assert [p.name for p in tmp_path.iterdir()] == ["cp.json"]  # no temp files left


def test_in_memory_checkpointer() -> None:
    cp = InMemoryCheckpointer()
    cp.checkpoint_transaction(3, "tx")
    assert (cp.block_number, cp.transaction_id) == (3, "tx")
    cp.checkpoint_block(3)
    assert (cp.block_number, cp.transaction_id) == (4, "")


@pytest.mark.parametrize(
    "content",
    [
        '{"blockNumber": 1.9, "transactionId": ""}',
        '{"blockNumber": true, "transactionId": ""}',
        '{"blockNumber": "1.9", "transactionId": ""}',
        '{"blockNumber": "-1", "transactionId": ""}',
        '{"blockNumber": " 12", "transactionId": ""}',
        '{"blockNumber": null, "transactionId": ""}',
        '{"blockNumber": -1, "transactionId": ""}',
        '{"blockNumber": 3, "transactionId": 7}',
        "[3]",
    ],
)
def test_file_checkpointer_refuses_a_block_number_that_is_not_an_integer(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    with pytest.raises(CheckpointError, match="malformed checkpoint") as info:
        FileCheckpointer(path)
    assert str(path) in str(info.value)


def _block_of(
    fake: FakeGateway, alice: TestIdentity, functions: list[str], duplicate_at: int | None = None
) -> list[bytes]:
    """Add a block of transactions; ``duplicate_at``: insert the first envelope again there,
    committed DUPLICATE_TXID (9), as Fabric records a replayed transaction."""
    envelopes = [
        signed_transaction(alice, channel="patches", chaincode="patchledger", function=f)
        for f in functions
    ]
    codes = [0] * len(envelopes)
    if duplicate_at is not None:
        envelopes.insert(duplicate_at, envelopes[0])
        codes.insert(duplicate_at, 9)
    fake.add_block(envelopes, codes)
    return envelopes


def test_transaction_events_resume_after_a_duplicate_transaction_id(
    tmp_path: Path, gateway: Gateway, fake: FakeGateway, alice: TestIdentity
) -> None:
    _block_of(fake, alice, ["F0", "F1", "F2"], duplicate_at=2)  # block 1: F0 F1 F0(dup) F2
    network = gateway.get_network("patches")
    checkpointer = FileCheckpointer(tmp_path / "tx.json")
    with network.get_transaction_events(start_block=1, checkpoint=checkpointer) as stream:
        seen = [next(stream) for _ in range(3)]
        for tx in seen:
            checkpointer.checkpoint_parsed_transaction(tx)
    assert [(t.index, t.function, t.validation_code_name) for t in seen] == [
        (0, "F0", "VALID"),
        (1, "F1", "VALID"),
        (2, "F0", "DUPLICATE_TXID"),
    ]
    assert seen[2].transaction_id == seen[0].transaction_id
    saved = json.loads((tmp_path / "tx.json").read_text())
    assert saved == {
        "blockNumber": 1,
        "transactionId": seen[0].transaction_id,
        "transactionIndex": 2,
    }

    restarted = FileCheckpointer(tmp_path / "tx.json")
    assert restarted.transaction_index == 2
    with network.get_transaction_events(start_block=0, checkpoint=restarted) as stream:
        nxt = next(stream)
    assert (nxt.block_number, nxt.index, nxt.function) == (1, 3, "F2")  # nothing re-delivered


def test_old_checkpoint_without_index_still_resumes(
    tmp_path: Path, gateway: Gateway, fake: FakeGateway, alice: TestIdentity
) -> None:
    _block_of(fake, alice, ["F0", "F1", "F2"])
    network = gateway.get_network("patches")
    with network.read_blocks(1, 1) as blocks:
        (block,) = blocks
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps({"blockNumber": 1, "transactionId": block.transactions[1].transaction_id})
    )
    old = FileCheckpointer(path)
    assert old.transaction_index is None
    with network.get_transaction_events(checkpoint=old) as stream:
        nxt = next(stream)
    assert (nxt.block_number, nxt.index, nxt.function) == (1, 2, "F2")


def test_checkpointed_transaction_missing_from_its_block_is_an_error(
    gateway: Gateway, fake: FakeGateway, alice: TestIdentity
) -> None:
    envelopes = _block_of(fake, alice, ["F0", "F1"])
    network = gateway.get_network("patches")
    with network.read_blocks(1, 1) as blocks:
        (block,) = blocks
    first_id = block.transactions[0].transaction_id
    for checkpoint in (
        InMemoryCheckpointer(1, "f" * 64),  # an old checkpoint naming another transaction
        InMemoryCheckpointer(1, "f" * 64, 0),  # index given, id does not match it
        InMemoryCheckpointer(1, first_id, 1),  # the id is there, but not at that index
        InMemoryCheckpointer(1, first_id, 5),  # index beyond the block
    ):
        with (
            network.get_transaction_events(checkpoint=checkpoint) as stream,
            pytest.raises(CheckpointError, match="block 1") as info,
        ):
            next(stream)
        assert checkpoint.transaction_id in str(info.value)
    assert len(envelopes) == 2


def test_checkpoint_index_round_trip_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    cp = FileCheckpointer(path)
    cp.checkpoint_transaction(4, "abc", 3)
    assert json.loads(path.read_text()) == {
        "blockNumber": 4,
        "transactionId": "abc",
        "transactionIndex": 3,
    }
    assert FileCheckpointer(path).transaction_index == 3
    cp.checkpoint_transaction(4, "abd")  # no index known (chaincode events): none written
    assert json.loads(path.read_text()) == {"blockNumber": 4, "transactionId": "abd"}
    cp.checkpoint_block(4)
    assert (cp.block_number, cp.transaction_id, cp.transaction_index) == (5, "", None)
    for bad in ("true", "-1", '"2"', "1.5"):
        path.write_text(f'{{"blockNumber": 4, "transactionId": "abc", "transactionIndex": {bad}}}')
        with pytest.raises(CheckpointError, match="transactionIndex") as info:
            FileCheckpointer(path)
        assert str(path) in str(info.value)
