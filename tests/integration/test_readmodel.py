"""The read model on the real network (issue 12): fed only from committed blocks through the
client's block events, it equals the ledger (every record, every version, as the contract's
GetHistory returns them) after a restart mid-stream and after a rebuild from the genesis
block, on SQLite and on a real PostgreSQL; and ingestion of the shared KEV feed (with the
Debian advisories that give the fixed versions) writes nothing new when run twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from patchledger.app.db import open_engine, sqlite_url, upgrade
from patchledger.app.fabric import Gateway, Network
from patchledger.app.fabric.errors import FabricError
from patchledger.app.feeds.inventory import parse_dpkg
from patchledger.app.ingest.inventories import store_inventory
from patchledger.app.ingest.ledger import GatewayLedgerWriter
from patchledger.app.ingest.pipeline import IngestionSettings, run_ingestion_once
from patchledger.app.readmodel import queries
from patchledger.app.readmodel.projector import (
    Projector,
    ProjectorSettings,
    catch_up,
    lag,
    next_block,
    peer_height,
    rebuild,
)
from patchledger.chaincode.lifecycle.queries import RECORD_TYPES
from tests.integration.lifecycle_world import (
    World,
    approve,
    feeds_dir,
    kev_entry,
    make_tested_patch,
    open_world,
    vulnerability_of,
)
from tests.integration.postgres_support import PostgresServer, postgres_server
from tests.support.network import LocalNetwork
from tests.unit.lifecycle.lifecycle_support import SECOPS
from tests.unit.readmodel.readmodel_support import run_in_thread

pytestmark = pytest.mark.integration

NAMES = ("secops-feed", "secops-operator", "itops-operator", "secops-approver",
         "itops-approver")
History = dict[tuple[str, str], list[tuple[str, int, str, dict[str, Any] | None]]]


@pytest.fixture(scope="module")
def world(fabric_network: LocalNetwork) -> Iterator[World]:
    """The identities, and a first part of the ledger's history (vulnerabilities, an
    assessment back and forth, a patch proposed and tested)."""
    w = open_world(fabric_network, NAMES, prefix="rm-")
    try:
        kev = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", kev)
        for i in range(4):
            w["secops-feed"].submit("RecordVulnerability", {
                "vuln_id": f"RM-{w.run}-{i}", "severity": "high", "title": f"read model {i}",
                "sources": [{"name": "test", "reference": f"rm-{i}"}]})
        w["itops-operator"].submit("AssessVulnerability", f"RM-{w.run}-1", "NOT_AFFECTED")
        w["itops-operator"].submit("AssessVulnerability", f"RM-{w.run}-1", "OPEN")
        make_tested_patch(w, f"RM-P-{w.run}", f"RM-{w.run}-0")
        yield w
    finally:
        w.close()


@pytest.fixture(scope="module")
def network(fabric_network: LocalNetwork, gateways: dict[str, Gateway]) -> Network:
    """The channel as SecOps' admin sees it through SecOps' peer (the read model's source)."""
    return gateways[SECOPS].get_network(fabric_network.config.topology.channel)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def _more_history(w: World, tag: str) -> None:
    """A second part: approvals by two organizations (APPROVED), another vulnerability."""
    patch_id = f"RM-P2-{tag}-{w.run}"
    digest = make_tested_patch(w, patch_id, f"RM-{w.run}-2")
    approve(w, patch_id, digest, "secops-approver", "itops-approver")
    w["secops-feed"].submit("RecordVulnerability", {
        "vuln_id": f"RM-{tag}-{w.run}", "severity": "low",
        "sources": [{"name": "test", "reference": tag}]})


def ledger_history(w: World) -> History:
    """Every lifecycle record on the ledger (ListRecords per type) and every version of each
    (GetHistory), evaluated on SecOps' peer: (type, id) -> [(tx_id, seconds, creator, record)]."""
    client = w["secops-operator"]
    out: History = {}
    for record_type in RECORD_TYPES:
        bookmark = ""
        while True:
            page = client.evaluate("ListRecords", record_type, "", 200, bookmark)
            for record in page["records"]:
                record_id = _record_id(record_type, record)
                history = client.evaluate("GetHistory", record_type, record_id)
                out[(record_type, record_id)] = [
                    (h["tx_id"], h["timestamp"], h["creator_msp"], h["record"]) for h in history]
            bookmark = page["bookmark"]
            if not bookmark:
                break
    return out


def _record_id(record_type: str, record: dict[str, Any]) -> str:
    from patchledger.chaincode.lifecycle.queries import record_class

    return str(record_class(record_type).from_dict(record).key)


def read_model_history(engine: Engine) -> History:
    """The same view from the read model (lifecycle record types only)."""
    out: History = {}
    with engine.connect() as conn:
        for record_type in RECORD_TYPES:
            cursor = None
            while True:
                page = queries.list_records(conn, record_type, limit=500, cursor=cursor)
                for row in page.items:
                    versions = queries.record_history(conn, record_type, row.record_id)
                    out[(record_type, row.record_id)] = [
                        (v.tx_id, int(dt.datetime.fromisoformat(v.tx_time).timestamp()),
                         v.creator_msp, v.record) for v in versions]
                    assert row.record == versions[-1].record
                cursor = page.next_cursor
                if cursor is None:
                    break
    return out


def assert_equal_to_ledger(engine: Engine, w: World, network: Network) -> None:
    height = peer_height(network, network.name)
    assert lag(engine, height).behind == 0
    expected = ledger_history(w)
    actual = read_model_history(engine)
    assert set(actual) == set(expected)
    for key, versions in expected.items():
        assert actual[key] == versions, key
    with engine.connect() as conn:  # the liveness records too, if any organization pinged
        for ping in queries.list_records(conn, "Ping").items:
            assert ping.record == w["secops-operator"].evaluate("GetPing", ping.record_id)


def _wait_caught_up(engine: Engine, network: Network, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while lag(engine, peer_height(network, network.name)).behind != 0:
        if time.monotonic() > deadline:
            raise AssertionError("the projector did not catch up with the peer")
        time.sleep(0.2)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_read_model_equals_the_ledger_after_a_restart_and_a_rebuild(
        backend: str, world: World, network: Network, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        url = sqlite_url(tmp_path / "readmodel.db")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"readmodel_{world.run}")
    engine = open_engine(url)
    # a failed assertion must not leave open connections for the next test's warnings check
    request.addfinalizer(engine.dispose)
    upgrade(engine)
    # first process: projects the first part of the chain, stopped mid-stream
    stop_at = max(2, peer_height(network, network.name) // 2)
    projector: Projector

    def stop_midway(result: Any) -> None:
        if result.next_block >= stop_at:
            projector.stop()

    projector = Projector(engine, network, ProjectorSettings(batch_blocks=1),
                          on_batch=stop_midway)
    thread, errors = run_in_thread(projector)
    thread.join(120)
    assert not thread.is_alive() and not errors
    assert next_block(engine) == stop_at
    engine.dispose()
    # the ledger moves on while no projector runs
    _more_history(world, backend)
    # second process: a new engine, resuming from the database checkpoint
    engine = open_engine(url)
    request.addfinalizer(engine.dispose)
    projector = Projector(engine, network)
    thread, errors = run_in_thread(projector)
    try:
        _wait_caught_up(engine, network)
    finally:
        projector.stop()
        thread.join(30)
    assert not errors
    assert_equal_to_ledger(engine, world, network)
    with engine.connect() as conn:
        approved = queries.list_records(conn, "Patch", filters={"state": "APPROVED"}).items
        assert f"RM-P2-{backend}-{world.run}" in {p.record_id for p in approved}
        history = queries.record_history(conn, "Vulnerability", f"RM-{world.run}-1")
        assert [v.state for v in history] == ["OPEN", "NOT_AFFECTED", "OPEN"]
        assert all(v.creator_subject.startswith("CN=rm-") for v in history)
        before = [queries.record_history(conn, k[0], k[1]) for k in read_model_history(engine)]
    # rebuild from the genesis block
    assert rebuild(engine, network) == peer_height(network, network.name)
    assert_equal_to_ledger(engine, world, network)
    with engine.connect() as conn:
        after = [queries.record_history(conn, k[0], k[1]) for k in read_model_history(engine)]
        genesis = queries.list_transactions(conn, block_number=0).items
    assert after == before
    assert [t.header_type for t in genesis] == ["CONFIG"]
    engine.dispose()


#: An inventory on Debian bullseye with cacti below DSA-5298-1's fix (CVE-2022-46169, in
#: CISA KEV) and openssl below DSA-5343-1's.
DPKG = "cacti 1.2.16+ds1-2\nopenssl 1.1.1n-0+deb11u3\n"


def test_ingesting_the_shared_feeds_twice_writes_nothing_new(
        world: World, network: Network, tmp_path: Path) -> None:
    kev = feeds_dir() / "kev" / "known_exploited_vulnerabilities.json"
    dsa = feeds_dir() / "debian" / "DSA-list_2023-03-29.txt"
    for path in (kev, dsa):
        if not path.is_file():
            pytest.skip(f"no feed file {path} (set PATCHLEDGER_FEEDS_DIR)")
    engine = open_engine(sqlite_url(tmp_path / "app.db"))
    upgrade(engine)
    catch_up(engine, network)
    with engine.begin() as conn:
        store_inventory(conn, parse_dpkg(DPKG, host=f"web-{world.run}", release="bullseye"))
    feed = world["secops-feed"]
    writer = GatewayLedgerWriter(feed.gateway.get_network(network.name).get_contract(
        "patchledger"), workers=4)
    settings = IngestionSettings(sources=(str(kev), str(dsa)), batch_size=4)

    def run() -> Any:
        caught_up = lag(engine, peer_height(network, network.name)).behind == 0
        return run_ingestion_once(engine, settings, writer, read_model_caught_up=caught_up)

    first = run()
    assert first.status == "ok", first.errors
    assert first.vulnerabilities >= 6 and first.committed == first.submitted
    assert first.submitted + first.unchanged == first.vulnerabilities
    catch_up(engine, network)
    with engine.connect() as conn:
        recorded = queries.get_record(conn, "Vulnerability", "CVE-2022-46169")
    assert recorded is not None and recorded.record["known_exploited"] is True
    on_ledger = feed.evaluate("GetRecord", "Vulnerability", "CVE-2022-46169")
    assert on_ledger == recorded.record
    height = peer_height(network, network.name)
    second = run()
    assert (second.submitted, second.unchanged) == (0, first.vulnerabilities)
    assert peer_height(network, network.name) == height  # not one transaction
    catch_up(engine, network)
    with engine.connect() as conn:
        mine = queries.list_transactions(conn, function="RecordVulnerabilities",
                                         creator_msp=SECOPS, limit=500).items
    submitted_by_run = {t.tx_id for t in mine} & _submission_ids(engine)
    # batches of settings.per_transaction (100): a handful of vulnerabilities, one transaction
    assert len(submitted_by_run) == len(_submission_ids(engine)) == -(-first.submitted // 100)
    engine.dispose()


def test_a_first_import_of_the_whole_kev_catalog_goes_in_batches(
        world: World, network: Network, tmp_path: Path) -> None:
    """Every entry of the real KEV catalog (record="kev") in RecordVulnerabilities
    transactions of 100: all on the ledger as the contract merges them, idempotent, and the
    time it took printed (docs/readmodel.md)."""
    kev = feeds_dir() / "kev" / "known_exploited_vulnerabilities.json"
    if not kev.is_file():
        pytest.skip(f"no feed file {kev} (set PATCHLEDGER_FEEDS_DIR)")
    engine = open_engine(sqlite_url(tmp_path / "app.db"))
    upgrade(engine)
    catch_up(engine, network)
    feed = world["secops-feed"]
    writer = GatewayLedgerWriter(feed.gateway.get_network(network.name).get_contract(
        "patchledger"), workers=4)
    settings = IngestionSettings(sources=(str(kev),), record="kev")
    height = peer_height(network, network.name)
    started = time.monotonic()
    first = run_ingestion_once(engine, settings, writer, read_model_caught_up=True)
    elapsed = time.monotonic() - started
    assert first.status == "ok", first.errors[:5]
    assert first.vulnerabilities > 1000 and first.committed == first.submitted
    assert first.submitted + first.unchanged == first.vulnerabilities
    transactions = len(_submission_ids(engine))
    assert transactions == -(-first.submitted // 100)
    print(f"\nKEV catalog: {first.vulnerabilities} vulnerabilities, {first.submitted} recorded "
          f"in {transactions} RecordVulnerabilities transactions, "
          f"{peer_height(network, network.name) - height} blocks, {elapsed:.1f} s")
    catch_up(engine, network)
    with engine.connect() as conn:
        assert queries.count_records(conn, "Vulnerability", filters={
            "known_exploited": True}) >= first.vulnerabilities
    entry = kev_entry()
    on_ledger = feed.evaluate("GetRecord", "Vulnerability", entry.id)
    assert on_ledger["known_exploited"] is True and on_ledger["severity"] == "critical"
    height = peer_height(network, network.name)
    second = run_ingestion_once(engine, settings, writer, read_model_caught_up=True)
    assert (second.submitted, second.unchanged) == (0, first.vulnerabilities)
    assert peer_height(network, network.name) == height
    engine.dispose()


def test_record_vulnerabilities_reports_each_entry_on_the_real_network(world: World) -> None:
    """A malformed entry is refused in the result and writes nothing; the others commit."""
    feed = world["secops-feed"]
    good = {"vuln_id": f"RMB-{world.run}-1", "severity": "low",
            "sources": [{"name": "test", "reference": "batch"}]}
    bad = {**good, "vuln_id": f"RMB-{world.run}-2", "cvss_score": "eleven"}
    result = feed.submit("RecordVulnerabilities", [good, bad])
    assert (result["recorded"], result["changed"], result["refused"]) == (1, 1, 1)
    assert result["results"][1]["error_type"] == "ValidationError"
    assert feed.evaluate("GetRecord", "Vulnerability", good["vuln_id"])["severity"] == "low"
    with pytest.raises(FabricError, match="does not exist"):
        feed.evaluate("GetRecord", "Vulnerability", bad["vuln_id"])
    with pytest.raises(FabricError, match="record_vulnerability"):
        world["secops-operator"].submit("RecordVulnerabilities", [good])


def _submission_ids(engine: Engine) -> set[str]:
    from sqlalchemy import select

    from patchledger.app.ingest.tables import ledger_submissions

    with engine.connect() as conn:
        return {t for (t,) in conn.execute(select(ledger_submissions.c.tx_id))}


