"""Ingestion on the real shared feeds: findings and candidates off the ledger, new or changed
vulnerabilities recorded once (importing twice writes nothing), in-flight and lost
submissions reconciled from the read model, one scheduler per deployment."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import Engine, func, select

from patchledger.app.feeds.inventory import parse_dpkg
from patchledger.app.ingest.candidates import (
    CandidateError,
    decide_candidate,
    get_candidate,
    list_candidates,
    proposal_argument,
)
from patchledger.app.ingest.inventories import inventory_digest, store_inventory
from patchledger.app.ingest.ledger import call_payloads
from patchledger.app.ingest.pipeline import (
    IngestionError,
    IngestionSettings,
    acquire_lease,
    release_lease,
    run_ingestion_loop,
    run_ingestion_once,
)
from patchledger.app.ingest.tables import feed_imports, findings, ledger_submissions
from patchledger.app.readmodel import queries
from patchledger.chaincode.lifecycle.identity import Role
from tests.unit.ingest.ingest_support import DPKG, Harness, SimulatedWriter, require_feeds

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def _settings(**overrides) -> IngestionSettings:
    return IngestionSettings(sources=require_feeds(), **overrides)


def _inventory(engine: Engine, host: str = "web-1", text: str = DPKG,
               criticality: str = "high") -> None:
    inv = parse_dpkg(text, host=host, release="bullseye")
    from dataclasses import replace

    with engine.begin() as conn:
        store_inventory(conn, replace(inv, criticality=criticality), origin="dpkg-query")


def _statuses(engine: Engine) -> dict[str, int]:
    """Logged submissions per status, in records (a RecordVulnerabilities transaction counts
    its vulnerabilities)."""
    out: dict[str, int] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(ledger_submissions.c.status, ledger_submissions.c.function,
                                   ledger_submissions.c.payload_json))
        for status, function, payload in rows:
            out[status] = out.get(status, 0) + (len(call_payloads(function, payload)) or 1)
    return out


def _transactions(engine: Engine) -> dict[str, int]:
    """Logged submissions per function."""
    with engine.connect() as conn:
        rows = conn.execute(select(ledger_submissions.c.function, func.count())
                            .group_by(ledger_submissions.c.function))
        return {f: n for f, n in rows}


@pytest.mark.parametrize("per_transaction", [3, 1])
def test_importing_twice_writes_nothing_new(engine: Engine, harness: Harness,
                                            per_transaction: int) -> None:
    """In RecordVulnerabilities transactions of ``per_transaction`` (1: one
    RecordVulnerability each, for a chaincode without the batch function)."""
    _inventory(engine)
    writer = SimulatedWriter(harness.ledger)
    first = run_ingestion_once(engine, _settings(batch_size=3, per_transaction=per_transaction),
                               writer, read_model_caught_up=True, now=NOW)
    assert first.status == "ok" and first.findings >= 7 and first.submitted == first.vulnerabilities
    assert first.committed == first.submitted > 0
    transactions = -(-first.submitted // per_transaction)
    assert _transactions(engine) == {"RecordVulnerabilities" if per_transaction > 1
                                     else "RecordVulnerability": transactions}
    assert len(writer.sent) == transactions
    harness.sync()
    with engine.connect() as conn:
        kev = queries.get_record(conn, "Vulnerability", "CVE-2022-46169")
        assert kev is not None
        assert kev.record["known_exploited"] is True and kev.record["severity"] == "critical"
        assert kev.record["kev_due_date"] and kev.record["sources"][0]["name"] in (
            "debian-dsa", "kev")
    height = harness.height
    second = run_ingestion_once(engine, _settings(), writer, read_model_caught_up=True, now=NOW)
    assert (second.submitted, second.unchanged) == (0, first.vulnerabilities)
    harness.sync()
    assert harness.height == height  # not one transaction more
    assert _statuses(engine) == {"COMMITTED": first.submitted}
    with engine.connect() as conn:
        runs = conn.execute(select(feed_imports.c.status, feed_imports.c.submitted)
                            .order_by(feed_imports.c.id)).all()
    assert [tuple(r) for r in runs] == [("ok", first.submitted), ("ok", 0)]


def test_a_changed_feed_records_only_the_change(engine: Engine, harness: Harness) -> None:
    _inventory(engine)
    writer = SimulatedWriter(harness.ledger)
    dsa_only = IngestionSettings(sources=(require_feeds()[1],))
    first = run_ingestion_once(engine, dsa_only, writer, read_model_caught_up=True, now=NOW)
    harness.sync()
    with engine.connect() as conn:
        before = queries.get_record(conn, "Vulnerability", "CVE-2022-46169")
    assert before is not None and before.record["known_exploited"] is False
    # adding the KEV catalog changes one matched vulnerability: it becomes known exploited
    writer.sent.clear()
    second = run_ingestion_once(engine, _settings(), writer, read_model_caught_up=True, now=NOW)
    assert [[d["vuln_id"] for d in call_payloads(c.function, c.arguments[0])]
            for c in writer.sent] == [["CVE-2022-46169"]]
    assert second.unchanged == first.vulnerabilities - 1
    harness.sync()
    with engine.connect() as conn:
        history = queries.record_history(conn, "Vulnerability", "CVE-2022-46169")
    assert [v.record["known_exploited"] for v in history if v.record] == [False, True]


def test_in_flight_submissions_are_not_sent_twice(engine: Engine, harness: Harness) -> None:
    """The read model has not caught up yet (no block projected): what was submitted is
    still known from the submission log."""
    _inventory(engine)
    writer = SimulatedWriter(harness.ledger)
    writer.lose_outcomes = True  # committed, but the app did not learn it (timeout)
    first = run_ingestion_once(engine, _settings(), writer, read_model_caught_up=False, now=NOW)
    assert first.failed == first.submitted > 0
    assert _statuses(engine) == {"SUBMITTED": first.submitted}
    second = run_ingestion_once(engine, _settings(), writer, read_model_caught_up=False,
                                now=NOW + dt.timedelta(hours=1))
    assert second.submitted == 0 and second.in_flight == first.submitted
    harness.sync()
    third = run_ingestion_once(engine, _settings(), writer, read_model_caught_up=True,
                               now=NOW + dt.timedelta(hours=2))
    assert third.reconciled == {"COMMITTED": first.submitted} and third.submitted == 0


def test_a_crash_after_logging_is_reconciled_not_resubmitted_blindly(
        engine: Engine, harness: Harness) -> None:
    _inventory(engine)
    writer = SimulatedWriter(harness.ledger)
    writer.crash_after_send = True
    with pytest.raises(ConnectionError):
        run_ingestion_once(engine, _settings(), writer, read_model_caught_up=True, now=NOW)
    logged = _statuses(engine)["SUBMITTED"]
    with engine.connect() as conn:
        assert conn.execute(select(feed_imports.c.status)).scalar() == "failed"
    # soon after: maybe still in flight, so not resubmitted
    soon = run_ingestion_once(engine, _settings(), writer, read_model_caught_up=True,
                              now=dt.datetime.now(dt.UTC))
    assert soon.submitted == 0 and not writer.sent
    # after the pending timeout, with the read model caught up: lost, compared, resubmitted
    later = run_ingestion_once(engine, _settings(), writer, read_model_caught_up=True,
                               now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert later.reconciled == {"LOST": logged} and later.submitted == logged
    harness.sync()
    with engine.connect() as conn:
        assert queries.count_records(conn, "Vulnerability") == logged


def test_findings_carry_the_explained_priority(engine: Engine, harness: Harness) -> None:
    _inventory(engine, criticality="critical")
    run_ingestion_once(engine, _settings(), None, read_model_caught_up=True, now=NOW)
    with engine.connect() as conn:
        row = conn.execute(select(findings).where(
            findings.c.vuln_id == "CVE-2022-46169")).mappings().one()
    assert row["host_id"] == "web-1" and row["package"].startswith("pkg:deb/debian/cacti")
    assert row["fixed_version"] == "1.2.16+ds1-2+deb11u1"
    priority = json.loads(row["priority_json"])
    reasons = " ".join(r["reason"] for r in priority["reasons"])
    assert "CISA KEV" in reasons and "asset criticality critical" in reasons
    assert row["priority_score"] == priority["score"] >= 50
    # a dry run (no writer) puts nothing on the ledger
    assert _statuses(engine) == {}
    # the host is patched: its finding disappears at the next import, first_seen is kept
    _inventory(engine, text="cacti 1.2.16+ds1-2+deb11u1\nopenssl 1.1.1n-0+deb11u3\n")
    run_ingestion_once(engine, _settings(), None, read_model_caught_up=True, now=NOW)
    with engine.connect() as conn:
        ids = {v for (v,) in conn.execute(select(findings.c.vuln_id))}
    assert "CVE-2022-46169" not in ids and "CVE-2023-0286" in ids


def test_patch_candidates_from_fixed_versions(engine: Engine, harness: Harness) -> None:
    _inventory(engine)
    _inventory(engine, host="web-2")
    run_ingestion_once(engine, _settings(), None, read_model_caught_up=True, now=NOW)
    with engine.connect() as conn:
        pending = list_candidates(conn).items
    by_package = {c.package: c for c in pending}
    openssl = by_package["pkg:deb/debian/openssl"]
    assert openssl.fixed_version == "1.1.1n-0+deb11u4" and len(openssl.vuln_ids) >= 5
    assert openssl.host_ids == ("web-1", "web-2")
    cacti = by_package["pkg:deb/debian/cacti"]
    assert cacti.vuln_id == "CVE-2022-46169" and cacti.severity == "critical"
    with engine.begin() as conn:
        with pytest.raises(CandidateError, match="names the patch id"):
            decide_candidate(conn, cacti.candidate_id, "CONFIRMED", by="alice")
        done = decide_candidate(conn, cacti.candidate_id, "CONFIRMED", by="alice",
                                patch_id="P-cacti-1")
        assert done.status == "CONFIRMED" and done.decided_by == "alice"
        with pytest.raises(CandidateError, match="is CONFIRMED: cannot move to DISMISSED"):
            decide_candidate(conn, cacti.candidate_id, "DISMISSED", by="bob")
        with pytest.raises(CandidateError, match="does not exist"):
            decide_candidate(conn, "0" * 32, "DISMISSED", by="bob")
    argument = proposal_argument(done, patch_id="P-cacti-1", artifact_sha256="ab" * 32,
                                 artifact_size=10, artifact_uri="https://a.example/x",
                                 vendor="Debian")
    assert argument["fixes"] == list(cacti.vuln_ids)
    assert argument["targets"] == ["pkg:deb/debian/cacti@1.2.16+ds1-2+deb11u1"]
    # a later import keeps the decision
    run_ingestion_once(engine, _settings(), None, read_model_caught_up=True, now=NOW)
    with engine.connect() as conn:
        again = get_candidate(conn, cacti.candidate_id)
        assert again is not None and again.status == "CONFIRMED"
        assert cacti.candidate_id not in {c.candidate_id for c in list_candidates(conn).items}


def test_inventory_digests_go_on_the_ledger_for_enrolled_hosts(engine: Engine,
                                                               harness: Harness) -> None:
    host = {"record_type": "Host", "host_id": "web-1", "owner_msp": "ITOpsMSP",
            "cert_pem": "-----BEGIN CERTIFICATE-----", "inventory_sha256": "0" * 64,
            "status": "ENROLLED", "schema_version": 1, "updated_at": 0, "updated_by": "ITOpsMSP"}
    harness.ledger.write_raw("ITOpsMSP", "EnrollHost",
                             {"\x00Host\x00web-1\x00": json.dumps(host).encode()})
    harness.sync()
    _inventory(engine)
    _inventory(engine, host="not-enrolled")
    operator = SimulatedWriter(harness.ledger, "ITOpsMSP")
    report = run_ingestion_once(engine, _settings(), None, read_model_caught_up=True,
                                inventory_writer=operator, now=NOW)
    assert report.digests_submitted == 1
    harness.sync()
    with engine.connect() as conn:
        recorded = queries.get_record(conn, "Host", "web-1")
    expected = inventory_digest(parse_dpkg(DPKG, host="web-1", release="bullseye"))
    assert recorded is not None and recorded.record["inventory_sha256"] == expected
    again = run_ingestion_once(engine, _settings(), None, read_model_caught_up=True,
                               inventory_writer=operator, now=NOW)
    assert again.digests_submitted == 0


def test_a_refused_transaction_is_reported_and_the_rest_recorded(
        engine: Engine, harness: Harness) -> None:
    _inventory(engine)
    wrong_role = SimulatedWriter(harness.ledger, role=Role.OPERATOR)  # not a feed identity
    report = run_ingestion_once(engine, _settings(), wrong_role, read_model_caught_up=True,
                                now=NOW)
    assert report.status == "partial" and report.refused == report.submitted
    refusals = [e for e in report.errors if "REFUSED" in e]
    assert len(refusals) == sum(_transactions(engine).values())  # one per transaction
    assert all("not allowed for role 'operator'" in e for e in refusals)
    harness.sync()
    with engine.connect() as conn:
        assert queries.count_records(conn, "Vulnerability") == 0
    assert _statuses(engine) == {"REFUSED": report.submitted}


def test_one_scheduler_per_deployment(engine: Engine) -> None:
    assert acquire_lease(engine, "web-worker-1", 60, now=1000)
    assert acquire_lease(engine, "web-worker-1", 60, now=1010)  # renewal
    assert not acquire_lease(engine, "web-worker-2", 60, now=1020)
    assert acquire_lease(engine, "web-worker-2", 60, now=1071)  # expired: taken over
    release_lease(engine, "web-worker-2")
    stop = threading.Event()
    runs: list[int] = []

    def once():
        runs.append(1)
        stop.set()
        from patchledger.app.ingest.pipeline import IngestionReport
        return IngestionReport()

    assert acquire_lease(engine, "other-process", 3600)
    with pytest.raises(IngestionError, match="already runs in other-process"):
        run_ingestion_loop(engine, _settings(interval=0.01), once, stop=stop, holder="me")
    release_lease(engine, "other-process")
    run_ingestion_loop(engine, _settings(interval=0.01), once, stop=stop, holder="me")
    assert runs == [1]
    assert acquire_lease(engine, "someone-else", 60)  # released at the end


def test_bad_settings_are_refused() -> None:
    with pytest.raises(IngestionError, match="'record'"):
        IngestionSettings(sources=(), record="some")
    with pytest.raises(IngestionError, match="batch_size"):
        IngestionSettings(sources=(), batch_size=0)
