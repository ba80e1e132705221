"""Projection of blocks into the read model: every record and every version equal to the
ledger's, invalid transactions ignored, unknown types and deletes kept, the checkpoint moved
in the same database transaction as the rows, gaps and foreign chains refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import Engine, func, select

from patchledger.app.readmodel import queries
from patchledger.app.readmodel.decode import decode_block, split_key
from patchledger.app.readmodel.projection import ProjectionError, apply_blocks, read_checkpoint
from patchledger.app.readmodel.projector import ProjectorSettings, next_block, project
from patchledger.app.readmodel.tables import blocks, record_versions, transactions
from tests.support.readmodel import SimulatedLedger, build_chain
from tests.unit.readmodel.conftest import CHANNEL
from tests.unit.readmodel.readmodel_support import current_of, expected_current, versions_of


def _lifecycle(ledger: SimulatedLedger) -> list[Callable[[], object]]:
    steps: list[Callable[[], object]] = [ledger.init_ledger]
    for i in range(12):
        steps.append(partial(ledger.record_vulnerability, f"CVE-2024-{i:04d}",
                             severity="medium"))
    steps.append(lambda: ledger.record_vulnerability("CVE-2024-0001", severity="critical",
                                                     known_exploited=True))
    steps.append(lambda: ledger.assess("CVE-2024-0002", "NOT_AFFECTED"))
    steps.append(lambda: ledger.assess("CVE-2024-0002", "OPEN"))
    steps.append(lambda: ledger.propose_patch("P-1", ["CVE-2024-0001", "CVE-2024-0003"]))
    return steps


def test_every_record_and_version_equals_the_ledger(engine: Engine,
                                                    ledger: SimulatedLedger) -> None:
    chain = build_chain(ledger, _lifecycle(ledger), per_block=3)
    result = project(engine, chain.blocks, channel=CHANNEL)
    assert result.blocks == len(chain.blocks)
    assert versions_of(engine) == ledger.history
    assert current_of(engine) == expected_current(ledger.history)
    with engine.connect() as conn:
        vuln = queries.get_record(conn, "Vulnerability", "CVE-2024-0002")
        assert vuln is not None and vuln.state == "OPEN" and vuln.versions == 3
        history = queries.record_history(conn, "Vulnerability", "CVE-2024-0002")
        assert [h.state for h in history] == ["OPEN", "NOT_AFFECTED", "OPEN"]
        assert {h.creator_msp for h in history} == {"SecOpsMSP", "ITOpsMSP"}
        assert history[1].creator_subject == "CN=user.itopsmsp,OU=client"
        patch = queries.get_record(conn, "Patch", "P-1")
        assert patch is not None and patch.record["severity"] == "critical"
        assert read_checkpoint(conn) is not None
    assert next_block(engine) == len(chain.blocks)


def test_invalid_transactions_are_recorded_but_not_applied(engine: Engine,
                                                           ledger: SimulatedLedger) -> None:
    ledger.init_ledger()
    ledger.record_vulnerability("CVE-2024-0001")
    # an MVCC conflict (code 11): in the block, but its writes never reached world state
    from patchledger.chaincode.lifecycle.identity import Role
    from patchledger.chaincode.lifecycle.ops.vulnerabilities import assess_vulnerability

    bad = ledger.run("ITOpsMSP", Role.OPERATOR, "AssessVulnerability",
                     lambda tx: assess_vulnerability(tx, "CVE-2024-0001", "MITIGATED"),
                     code=11)
    chain = build_chain(ledger, [], per_block=10)
    project(engine, chain.blocks, channel=CHANNEL)
    with engine.connect() as conn:
        tx = queries.get_transaction(conn, bad)
        assert tx is not None and not tx.valid and tx.validation_code_name == "MVCC_READ_CONFLICT"
        assert tx.write_count == 0
        assert queries.transaction_writes(conn, bad) == []
        vuln = queries.get_record(conn, "Vulnerability", "CVE-2024-0001")
        assert vuln is not None and vuln.state == "OPEN"
    assert versions_of(engine) == ledger.history


def test_unknown_types_deletes_simple_keys_and_malformed_values_are_kept(
        engine: Engine, ledger: SimulatedLedger) -> None:
    ledger.init_ledger()
    ledger.write_raw("SecOpsMSP", "FutureThing", {
        "\x00Widget\x00w-1\x00": b'{"record_type":"Widget","status":"NEW"}',
        "plain-key": b"not json",
    })
    ledger.write_raw("SecOpsMSP", "Ping",
                     {"\x00Ping\x00SecOpsMSP\x00": b'{"at":5,"msp_id":"SecOpsMSP"}'})
    ledger.write_raw("SecOpsMSP", "Drop", {"\x00Widget\x00w-1\x00": None})
    chain = build_chain(ledger, [], per_block=10)
    # the genesis block and one block of three transactions, projected in two calls
    project(engine, chain.blocks[:1], channel=CHANNEL)
    project(engine, chain.blocks[1:], channel=CHANNEL)
    assert versions_of(engine) == ledger.history
    with engine.connect() as conn:
        widget = queries.record_history(conn, "Widget", "w-1")
        assert [v.is_delete for v in widget] == [False, True]
        assert queries.get_other_record(conn, "Widget", "w-1") is None  # deleted
        plain = queries.get_other_record(conn, "", "plain-key")
        assert plain is not None and plain.record == {"_raw": "not json"}
        ping = queries.get_record(conn, "Ping", "SecOpsMSP")
        assert ping is not None and ping.record["at"] == 5


def test_split_key() -> None:
    assert split_key("\x00Approval\x00P-1\x00SecOpsMSP\x00") == ("Approval", "P-1/SecOpsMSP")
    assert split_key("simple") == ("", "simple")


def test_a_replayed_block_is_skipped_and_a_gap_refused(engine: Engine,
                                                       ledger: SimulatedLedger) -> None:
    chain = build_chain(ledger, _lifecycle(ledger), per_block=4)
    project(engine, chain.blocks[:3], channel=CHANNEL)
    again = project(engine, chain.blocks[1:4], channel=CHANNEL)  # at-least-once delivery
    assert (again.skipped_blocks, again.blocks) == (2, 1)
    with pytest.raises(ProjectionError, match="expected block 4"):
        project(engine, chain.blocks[5:], channel=CHANNEL)
    project(engine, chain.blocks[4:], channel=CHANNEL)
    assert versions_of(engine) == ledger.history


def test_a_block_of_another_chain_is_refused_and_nothing_written(
        engine: Engine, ledger: SimulatedLedger) -> None:
    chain = build_chain(ledger, _lifecycle(ledger), per_block=4)
    project(engine, chain.blocks[:2], channel=CHANNEL)
    other = SimulatedLedger(channel=CHANNEL)
    foreign = build_chain(other, _lifecycle(other), per_block=4)
    with pytest.raises(ProjectionError, match="previous hash"):
        project(engine, foreign.blocks[2:], channel=CHANNEL)
    with engine.connect() as conn:
        assert queries.projected_height(conn) == 2
    with pytest.raises(ProjectionError, match="follows chaincode 'patchledger' on channel"):
        project(engine, chain.blocks[2:], channel="otherchannel")
    assert next_block(engine) == 2


def test_rows_and_checkpoint_commit_together(engine: Engine, ledger: SimulatedLedger) -> None:
    """A crash after the rows were written but before the commit leaves neither the rows nor
    the checkpoint: the next run projects the same blocks again, exactly once."""
    chain = build_chain(ledger, _lifecycle(ledger), per_block=4)
    project(engine, chain.blocks[:2], channel=CHANNEL)
    decoded = [decode_block(b, "patchledger") for b in chain.blocks[2:]]

    class Crash(Exception):
        pass

    with pytest.raises(Crash), engine.begin() as conn:
        apply_blocks(conn, decoded, channel=CHANNEL, chaincode="patchledger")
        assert conn.execute(select(func.count()).select_from(blocks)).scalar() == len(
            chain.blocks)
        raise Crash
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(blocks)).scalar() == 2
        assert read_checkpoint(conn).block_number == 2  # type: ignore[union-attr]
    project(engine, chain.blocks, channel=CHANNEL)
    assert versions_of(engine) == ledger.history
    with engine.connect() as conn:
        total = sum(len(b.data.data) for b in chain.blocks)
        assert conn.execute(select(func.count()).select_from(transactions)).scalar() == total


def test_writes_of_other_chaincodes_are_ignored(engine: Engine) -> None:
    other = SimulatedLedger(channel=CHANNEL, chaincode="testkit")
    other.write_raw("SecOpsMSP", "Write", {"\x00Vulnerability\x00CVE-X\x00": b"{}"})
    chain = build_chain(other, [], per_block=1)
    project(engine, chain.blocks, channel=CHANNEL, settings=ProjectorSettings())
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(record_versions)).scalar() == 0
        txs = queries.list_transactions(conn).items
        assert [t.chaincode for t in txs if t.header_type == "ENDORSER_TRANSACTION"] == [
            "testkit"]


def test_event_payload_is_kept(engine: Engine, ledger: SimulatedLedger) -> None:
    tx_id = ledger.init_ledger()
    chain = build_chain(ledger, [], per_block=1)
    project(engine, chain.blocks, channel=CHANNEL)
    with engine.connect() as conn:
        tx = queries.get_transaction(conn, tx_id)
        assert tx is not None and tx.event_name == "patchledger"
        assert json.loads(tx.event_payload)["changes"][0]["record_type"] == "Policy"
        block = queries.get_block(conn, tx.block_number)
        assert block is not None and block.write_count == 1 and block.valid_count == 1
