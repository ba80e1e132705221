"""Reads from the read model through the API: blocks of app.readmodel's simulated ledger (the
real lifecycle core's writes) projected into the app's own database, then listed, filtered,
paged, fetched with ETags, and audited (history, blocks, transactions)."""

from __future__ import annotations

from apiflask import APIFlask
from flask.testing import FlaskClient

from patchledger.app.readmodel.projector import project
from patchledger.app.web.factory import state
from tests.support.readmodel import SimulatedLedger, build_chain
from tests.unit.webapp.conftest import Account


def _project(app: APIFlask) -> SimulatedLedger:
    ledger = SimulatedLedger()
    steps = [ledger.init_ledger,
             *[lambda i=i: ledger.record_vulnerability(
                 f"CVE-2025-{i:04d}", "critical" if i % 2 else "high") for i in range(7)],
             lambda: ledger.propose_patch("p-1", ["CVE-2025-0001"]),
             lambda: ledger.assess("CVE-2025-0002", "NOT_AFFECTED")]
    chain = build_chain(ledger, steps, per_block=3)
    with app.app_context():
        project(state().engine, chain.blocks, channel=ledger.channel)
    return ledger


def test_list_filter_page(app: APIFlask, client: FlaskClient,
                          accounts: dict[str, Account]) -> None:
    _project(app)
    headers = accounts["auditor"].headers
    everything = client.get("/api/v1/vulnerabilities?limit=500", headers=headers).json
    assert len(everything["items"]) == 7 and everything["next_cursor"] == ""
    critical = client.get("/api/v1/vulnerabilities?severity=critical", headers=headers).json
    assert {r["record_id"] for r in critical["items"]} == {
        f"CVE-2025-{i:04d}" for i in (1, 3, 5)}
    not_affected = client.get("/api/v1/vulnerabilities?state=NOT_AFFECTED",
                              headers=headers).json
    assert [r["record_id"] for r in not_affected["items"]] == ["CVE-2025-0002"]
    seen: list[str] = []
    cursor = ""
    while True:
        page = client.get(f"/api/v1/vulnerabilities?limit=3&cursor={cursor}",
                          headers=headers).json
        seen += [r["record_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(r["record_id"] for r in everything["items"])
    bad = client.get("/api/v1/vulnerabilities?cursor=garbage", headers=headers)
    assert bad.status_code == 400 and bad.json["error"]["field"] == "cursor"


def test_detail_etag_and_missing(app: APIFlask, client: FlaskClient,
                                 accounts: dict[str, Account]) -> None:
    _project(app)
    headers = accounts["operator"].headers
    first = client.get("/api/v1/patches/p-1", headers=headers)
    assert first.status_code == 200 and first.json["state"] == "PROPOSED"
    assert first.json["record"]["fixes"] == ["CVE-2025-0001"]
    again = client.get("/api/v1/patches/p-1", headers={**headers,
                                                       "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    missing = client.get("/api/v1/patches/p-9", headers=headers)
    assert missing.status_code == 404
    assert "Patch 'p-9' is not in the read model" in missing.json["error"]["message"]


def test_audit_history_blocks_transactions(app: APIFlask, client: FlaskClient,
                                           accounts: dict[str, Account]) -> None:
    ledger = _project(app)
    headers = accounts["auditor"].headers
    history = client.get("/api/v1/audit/history/Vulnerability/CVE-2025-0002",
                         headers=headers).json["items"]
    assert [v["state"] for v in history] == ["OPEN", "NOT_AFFECTED"]
    assert [v["creator_msp"] for v in history] == ["SecOpsMSP", "ITOpsMSP"]
    assert all(v["tx_id"] and v["tx_time"] and v["creator_subject"] for v in history)
    assert [tx for tx, _ in ledger.history[("Vulnerability", "CVE-2025-0002")]] == [
        v["tx_id"] for v in history]
    blocks = client.get("/api/v1/audit/blocks", headers=headers).json["items"]
    assert [b["number"] for b in blocks] == [4, 3, 2, 1, 0]
    block = client.get("/api/v1/audit/blocks/1", headers=headers).json
    assert len(block["transactions"]) == 3
    tx_id = history[1]["tx_id"]
    tx = client.get(f"/api/v1/audit/transactions/{tx_id}", headers=headers).json
    assert tx["transaction"]["function"] == "AssessVulnerability"
    assert tx["transaction"]["valid"] is True
    assert [w["record_id"] for w in tx["writes"]] == ["CVE-2025-0002"]
    assessed = client.get("/api/v1/audit/transactions?function=AssessVulnerability",
                          headers=headers).json["items"]
    assert [t["tx_id"] for t in assessed] == [tx_id]
    assert client.get("/api/v1/audit/blocks/99", headers=headers).status_code == 404
    # feeds have no audit right
    assert client.get("/api/v1/audit/blocks", headers=accounts["feed"].headers
                      ).status_code == 403


def test_artifact_upload_and_ranged_download(client: FlaskClient,
                                             accounts: dict[str, Account]) -> None:
    import hashlib

    content = b"xz-utils_5.6.1+really5.4.5-1_amd64.deb " * 100
    digest = hashlib.sha256(content).hexdigest()
    operator = accounts["operator"].headers
    wrong = client.post("/api/v1/artifacts", data=content,
                        headers={**operator, "X-Artifact-SHA256": "0" * 64})
    assert wrong.status_code == 400 and "digest mismatch" in wrong.json["error"]["message"]
    stored = client.post("/api/v1/artifacts", data=content,
                         headers={**operator, "X-Artifact-SHA256": digest})
    assert stored.status_code == 201 and stored.json == {
        "sha256": digest, "size": len(content), "created": True}
    auditor = accounts["auditor"].headers
    assert client.post("/api/v1/artifacts", data=b"x", headers=auditor).status_code == 403
    whole = client.get(f"/api/v1/artifacts/{digest}", headers=auditor)
    assert whole.status_code == 200 and whole.data == content
    part = client.get(f"/api/v1/artifacts/{digest}", headers={**auditor, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
    outside = client.get(f"/api/v1/artifacts/{digest}",
                         headers={**auditor, "Range": f"bytes={len(content) + 5}-"})
    assert outside.status_code == 416
    assert client.get(f"/api/v1/artifacts/{'1' * 64}", headers=auditor).status_code == 404
    assert client.get("/api/v1/artifacts/nothex", headers=auditor).status_code == 400


def test_findings_highest_priority_first(app: APIFlask, client: FlaskClient,
                                         accounts: dict[str, Account]) -> None:
    import datetime as dt
    import json

    from sqlalchemy import insert

    from patchledger.app.ingest.tables import findings

    now = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    rows = [{"host_id": f"h{i}", "vuln_id": "CVE-2025-0001", "package": "xz-utils",
             "installed_version": "5.6.0", "fixed_version": "5.6.1", "advisory_id": "DSA-1",
             "source": "debian", "reason": "5.6.0 < 5.6.1", "priority_score": float(i),
             "priority_json": json.dumps({"score": i, "because": ["KEV"]}),
             "deadline": "2025-12-08", "first_seen": now, "last_seen": now, "import_id": 1}
            for i in range(5)]
    with app.app_context(), state().engine.begin() as conn:
        conn.execute(insert(findings), rows)
    headers = accounts["auditor"].headers
    first = client.get("/api/v1/vulnerabilities/CVE-2025-0001/findings?limit=3",
                       headers=headers).json
    assert [f["host_id"] for f in first["items"]] == ["h4", "h3", "h2"]
    assert first["items"][0]["priority"] == {"score": 4, "because": ["KEV"]}
    assert first["items"][0]["deadline"] == "2025-12-08"
    rest = client.get(f"/api/v1/vulnerabilities/CVE-2025-0001/findings?limit=3"
                      f"&cursor={first['next_cursor']}", headers=headers).json
    assert [f["host_id"] for f in rest["items"]] == ["h1", "h0"] and rest["next_cursor"] == ""
    missing = client.get("/api/v1/rollouts/r-9/progress", headers=headers)
    assert missing.status_code == 404 and missing.json["error"]["field"] == "rollout_id"


def test_packages_stored_off_ledger_and_import_needs_feeds(
        client: FlaskClient, accounts: dict[str, Account]) -> None:
    operator = accounts["operator"].headers
    stored = client.put("/api/v1/hosts/web-1/packages", json={
        "format": "dpkg", "content": "cacti 1.2.16+ds1-2\nopenssl 1.1.1n-0+deb11u3\n",
        "release": "bullseye", "criticality": "high"}, headers=operator)
    assert stored.status_code == 200, stored.json
    assert stored.json["package_count"] == 2 and len(stored.json["inventory_sha256"]) == 64
    again = client.put("/api/v1/hosts/web-1/packages", json={
        "format": "dpkg", "content": "openssl 1.1.1n-0+deb11u3\ncacti 1.2.16+ds1-2\n",
        "release": "bullseye", "criticality": "high"}, headers=operator)
    assert again.json["inventory_sha256"] == stored.json["inventory_sha256"]  # canonical
    bad = client.put("/api/v1/hosts/web-1/packages", json={
        "format": "dpkg", "content": "justonefield\n"}, headers=operator)
    assert bad.status_code == 400 and bad.json["error"]["field"] == "content"
    assert "line 1" in bad.json["error"]["message"]
    wrong_type = client.put("/api/v1/hosts/web-1/packages", json={
        "format": "sbom", "content": "not an object"}, headers=operator)
    assert wrong_type.status_code == 400 and wrong_type.json["error"]["field"] == "content"
    no_feeds = client.post("/api/v1/feeds/import", headers=accounts["feed"].headers)
    assert no_feeds.status_code == 409 and no_feeds.json["error"]["field"] == "feeds"
