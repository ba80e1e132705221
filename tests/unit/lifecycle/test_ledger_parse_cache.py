"""The ledger view parses a record once per transaction while its bytes are unchanged.

A ``ReportDeployments`` batch loads its rollout (which names every host of its waves) and its
patch once per report; parsing them again for each report made a batch quadratic in the
rollout's size (docs/benchmarks.md, "Host-report throughput"). The cache must never serve a
stale record: a write in the transaction, or different bytes in the store, parse anew.
"""

from __future__ import annotations

import pytest

from patchledger.chaincode.lifecycle import MemoryStore, TxLedger, ValidationError
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.ops import deployments, rollouts
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.rollout import Rollout
from tests.unit.lifecycle.lifecycle_support import (
    ITOPS,
    NOW,
    approved_store,
    host_identity,
    report,
    run,
    who,
)


def started_store(hosts: tuple[str, ...]) -> MemoryStore:
    store = approved_store(hosts)
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": list(hosts)}])
    run(store, op, rollouts.advance_rollout, "R-1")
    return store


def test_an_unchanged_record_is_parsed_once_per_transaction() -> None:
    tx = TxLedger(started_store(("h1", "h2")), who(ITOPS, "operator").caller, NOW)
    first = tx.load(Rollout, "R-1")
    assert tx.load(Rollout, "R-1") is first
    assert tx.find(Rollout, "R-1") is first


def test_a_batch_parses_its_rollout_and_patch_once() -> None:
    hosts = tuple(f"h{i}" for i in range(20))
    store = started_store(hosts)
    tx = TxLedger(store, who(ITOPS, "operator").caller, NOW)
    result = deployments.report_deployments(
        tx, [report(host_identity(ITOPS, h), 1, "APPLIED") for h in hosts]
    )
    assert result.accepted == len(hosts)
    rollout_bytes, rollout = tx.parsed[Rollout.key_for("R-1")]
    assert rollout_bytes == store.data[Rollout.key_for("R-1")]
    assert tx.load(Rollout, "R-1") is rollout
    assert tx.parsed[Patch.key_for("P-1")][0] == store.data[Patch.key_for("P-1")]


def test_a_write_in_the_transaction_is_read_back_not_the_cached_record() -> None:
    tx = TxLedger(started_store(("h1",)), who(ITOPS, "admin").caller, NOW)
    before = tx.load(Host, "h1")
    tx.save(before.evolve(inventory_sha256="a" * 64), owner_org=ITOPS)
    after = tx.load(Host, "h1")
    assert after is not before
    assert (before.inventory_sha256, after.inventory_sha256) == ("0" * 64, "a" * 64)


def test_changed_bytes_in_the_store_are_parsed_again() -> None:
    store = started_store(("h1",))
    tx = TxLedger(store, who(ITOPS, "admin").caller, NOW)
    before = tx.load(Host, "h1")
    key = Host.key_for("h1")
    store.data[key] = before.evolve(groups=("db",)).to_json()
    assert tx.load(Host, "h1").groups == ("db",)
    store.data[key] = b"{not json"
    with pytest.raises(ValidationError):
        tx.load(Host, "h1")
