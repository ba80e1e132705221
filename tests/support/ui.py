"""Synthesized read-model rows for the UI's and the reports' tests and the UI benchmark
(bench/bench_ui.py): records written straight into the read-model tables with the indexed
columns the projector would copy (app.readmodel.projection.indexed_values), their versions
and blocks. Test support, not shipped: the app's read model is fed only by committed blocks.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from patchledger.app.ingest.tables import findings, patch_candidates
from patchledger.app.readmodel.projection import indexed_values
from patchledger.app.readmodel.tables import (
    RECORD_TABLES,
    SPECS,
    blocks,
    record_versions,
    transactions,
)
from tests.support.readmodel import policy_document

ORGS = ("SecOpsMSP", "ITOpsMSP", "ComplianceMSP")
SEVERITIES = ("critical", "high", "medium", "low")
#: The contract function a synthesized version's transaction names (audit views filter on it).
FUNCTIONS = {"Vulnerability": "RecordVulnerability", "Patch": "ProposePatch",
             "Host": "EnrollHost", "Rollout": "CreateRollout", "Deployment": "ReportDeployments",
             "RiskAcceptance": "ProposeRiskAcceptance", "Approval": "ApprovePatch",
             "Policy": "InitLedger"}


def iso(seconds: int) -> str:
    """The read model's time text of ``seconds`` since the epoch."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


@dataclass
class Writer:
    """Appends synthesized versions: each :meth:`put` is one transaction in its own block."""

    conn: Connection
    block: int = 0
    current: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    _rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _versions: list[dict[str, Any]] = field(default_factory=list)
    _blocks: list[dict[str, Any]] = field(default_factory=list)
    _transactions: list[dict[str, Any]] = field(default_factory=list)

    def put(self, record_type: str, record: Mapping[str, Any], at: int,
            msp: str = "SecOpsMSP") -> None:
        """Record a version of ``record`` written at ``at`` by ``msp`` (buffered)."""
        spec = SPECS[record_type]
        rid = "/".join(str(record[p]) for p in spec.key_parts)
        key = (record_type, rid)
        version = self.versions.get(key, 0) + 1
        self.versions[key] = version
        tx = hashlib.sha256(f"{record_type}/{rid}/{version}".encode()).hexdigest()
        state = str(record.get("status", ""))
        text = json.dumps(dict(record), sort_keys=True)
        self._blocks.append({"number": self.block, "header_hash": tx, "previous_hash": "",
                             "data_hash": tx, "tx_count": 1, "valid_count": 1,
                             "write_count": 1, "first_tx_time": iso(at),
                             "projected_at": iso(at)})
        self._transactions.append({
            "block_number": self.block, "tx_index": 0, "tx_id": tx,
            "header_type": "ENDORSER_TRANSACTION", "channel_id": "patchledger",
            "tx_time": iso(at), "creator_msp": msp, "creator_subject": f"CN=user,O={msp}",
            "validation_code": 0, "validation_code_name": "VALID", "chaincode": "patchledger",
            "function": FUNCTIONS.get(record_type, f"Put{record_type}"), "write_count": 1,
            "event_name": "", "event_payload": "", "parse_error": ""})
        self._versions.append({"record_type": record_type, "record_id": rid,
                               "version": version, "block_number": self.block,
                               "tx_index": 0, "write_index": 0, "tx_id": tx,
                               "tx_time": iso(at), "creator_msp": msp,
                               "creator_subject": f"CN=user,O={msp}", "is_delete": False,
                               "state": state, "json": text})
        self.current[key] = {"record_id": rid, "state": state, "json": text,
                             "updated_at": at, "updated_by": msp, "versions": version,
                             "tx_id": tx, "block_number": self.block, "tx_time": iso(at),
                             **indexed_values(spec, record)}
        self.block += 1

    def flush(self) -> None:
        """Write the buffered versions, blocks and current rows (current rows once each)."""
        if self._blocks:
            self.conn.execute(insert(blocks), self._blocks)
            self.conn.execute(insert(record_versions), self._versions)
            self.conn.execute(insert(transactions), self._transactions)
        by_type: dict[str, list[dict[str, Any]]] = {}
        for (record_type, _), row in self.current.items():
            by_type.setdefault(record_type, []).append(row)
        for record_type, rows in by_type.items():
            self.conn.execute(insert(RECORD_TABLES[record_type]), rows)
        self._blocks, self._versions, self._transactions, self.current = [], [], [], {}


def add_findings(conn: Connection, rows: Iterable[tuple[str, str, float]]) -> None:
    """Findings (host, vulnerability, priority score) with an explained priority."""
    docs = [{"host_id": h, "vuln_id": v, "package": "openssl", "installed_version": "3.0.1",
             "fixed_version": "3.0.2", "advisory_id": f"DSA-{v}", "source": "debian",
             "reason": "version in affected range", "priority_score": score,
             "priority_json": json.dumps({"score": score, "severity": "high", "reasons": [
                 {"points": score - 10, "reason": "CVSS 7.5 x 4"},
                 {"points": 10.0, "reason": "asset criticality high"}],
                 "deadline": "2026-12-31", "deadline_reason": "SLA high 30 days"}),
             "deadline": "2026-12-31", "first_seen": iso(0), "last_seen": iso(0),
             "import_id": 1} for h, v, score in rows]
    if docs:
        conn.execute(insert(findings), docs)


def estate(conn: Connection, *, hosts: int, vulns: int, start: int, seed: int = 7,
           rollouts: int | None = None, findings_per_vuln: int = 5,
           exceptions: int = 0) -> None:
    """A synthetic estate: the policy, ``vulns`` vulnerabilities (a tenth KEV), a patch per
    ten of them (some TESTED), ``hosts`` hosts in groups, ``rollouts`` rollouts of 200
    deployments each (default: one per 200 hosts, at most 10; hosts are reused round-robin
    when there are more rollouts than hosts/200), about ``findings_per_vuln`` findings per
    vulnerability, a pending patch candidate (an advisory's fixed version) per vulnerability
    for the hosts of its findings, and ``exceptions`` granted risk acceptances with an
    approval of each APPROVED patch (none by default)."""
    rnd = random.Random(seed)
    w = Writer(conn)
    w.put("Policy", {"policy_id": "default", "version": 1, **policy_document()}, start)
    day = 86400
    for i in range(vulns):
        kev = i % 10 == 0
        due = (datetime.fromtimestamp(start, UTC) + timedelta(days=rnd.randint(-20, 40))
               ).date().isoformat()
        w.put("Vulnerability", {"vuln_id": f"CVE-2026-{i:05d}", "severity": SEVERITIES[i % 4],
                                "status": "OPEN" if i % 3 else "MITIGATED",
                                "title": f"synthetic vulnerability {i}",
                                "cvss_score": f"{rnd.uniform(3, 10):.1f}",
                                "known_exploited": kev, "kev_due_date": due if kev else "",
                                "aliases": [], "sources": [{"name": "nvd",
                                                            "reference": f"CVE-2026-{i:05d}"}]},
              start + i)
    for i in range(max(vulns // 10, 1)):
        w.put("Patch", {"patch_id": f"p-{i:04d}", "title": f"fix {i}", "vendor": "Debian",
                        "artifact_sha256": hashlib.sha256(str(i).encode()).hexdigest(),
                        "artifact_size": 1024, "artifact_uri": f"https://a.example/{i}",
                        "fixes": [f"CVE-2026-{i * 10:05d}"], "targets": ["pkg:deb/x"],
                        "severity": SEVERITIES[i % 4], "proposed_by": "SecOpsMSP",
                        "status": "TESTED" if i % 2 else "APPROVED", "supersedes": "",
                        "test_evidence": []}, start + vulns + i)
    groups = ("web", "db", "batch", "edge")
    for i in range(hosts):
        w.put("Host", {"host_id": f"host-{i:05d}", "owner_msp": ORGS[i % 3], "cert_pem": "",
                       "groups": [groups[i % 4]], "maintenance_window": "",
                       "inventory_sha256": hashlib.sha256(str(i).encode()).hexdigest(),
                       "last_report_sequence": i % 50, "status": "ENROLLED"},
              start - (2 * day if i % 20 == 0 else 0) + i % 1000, ORGS[i % 3])
    per_rollout = 200
    count = min(hosts // per_rollout, 10) if rollouts is None else rollouts
    for r in range(count):
        members = [f"host-{i % hosts:05d}"
                   for i in range(r * per_rollout, (r + 1) * per_rollout)]
        waves = [{"hosts": members[:20], "groups": ["canary"]},
                 {"hosts": members[20:], "groups": []}]
        w.put("Rollout", {"rollout_id": f"ro-{r:03d}", "patch_id": f"p-{r * 2:04d}",
                          "owner_msp": "SecOpsMSP", "waves": waves, "failure_threshold_pct": 10,
                          "soak_seconds": 0, "status": "RUNNING" if r % 2 == 0 else "PAUSED",
                          "current_wave": 1, "wave_started_at": start}, start + r)
        for n, host in enumerate(members):
            w.put("Deployment", {"rollout_id": f"ro-{r:03d}", "host_id": host,
                                 "patch_id": f"p-{r * 2:04d}", "owner_msp": "SecOpsMSP",
                                 "wave": 0 if n < 20 else 1,
                                 "status": "VERIFIED" if n % 3 else "DISPATCHED",
                                 "report_sequence": 1, "detail": ""}, start + n)
    for i in range(exceptions):
        vuln = f"CVE-2026-{(i * 7) % vulns:05d}"
        w.put("RiskAcceptance", {"vuln_id": vuln, "exception_id": f"ex-{i:04d}",
                                 "justification": "compensating control", "host_ids": [],
                                 "expires_at": start + 90 * day, "proposed_by": "ITOpsMSP",
                                 "status": "GRANTED" if i % 3 else "PROPOSED", "votes": {}},
              start + i, "ITOpsMSP")
    for i in range(max(vulns // 10, 1) if exceptions else 0):
        if i % 2 == 0:  # the APPROVED patches
            for msp in ORGS[:2]:
                w.put("Approval", {"patch_id": f"p-{i:04d}", "msp_id": msp,
                                   "decision": "APPROVE", "approver": f"approver@{msp}",
                                   "statement": {}, "signer_cert_pem": ""}, start + i, msp)
    w.flush()
    step = max(hosts // max(findings_per_vuln, 1), 1)
    add_findings(conn, ((f"host-{h:05d}", f"CVE-2026-{v:05d}", rnd.uniform(20, 90))
                        for v in range(vulns) for h in range(v % 7, hosts, step)))
    stamp = iso(start)
    conn.execute(insert(patch_candidates), [
        {"candidate_id": hashlib.sha256(f"candidate {v}".encode()).hexdigest()[:32],
         "vuln_id": f"CVE-2026-{v:05d}", "package": f"pkg:deb/debian/pkg{v % 50}",
         "fixed_version": f"1.{v}-1", "advisory_ids": json.dumps([f"DSA-{v}-1"]),
         "host_ids": json.dumps([f"host-{h:05d}" for h in range(v % 7, hosts, step)]),
         "host_count": len(range(v % 7, hosts, step)),
         "severity": SEVERITIES[v % 4], "status": "PENDING", "created_at": stamp,
         "updated_at": stamp, "decided_by": "", "patch_id": "",
         "vuln_ids": json.dumps([f"CVE-2026-{v:05d}"])} for v in range(vulns)])


def seed(engine: Engine, *, hosts: int, vulns: int, rollouts: int | None = None,
         findings_per_vuln: int = 5, exceptions: int = 0) -> str:
    """Create the app's schema (app.web.db) on ``engine`` and write :func:`estate` into it in
    one transaction (the benches' read model); return a line saying what took how long."""
    import time

    from patchledger.app.readmodel.projector import analyze
    from patchledger.app.web.db import create_schema

    started = time.perf_counter()
    create_schema(engine)
    with engine.begin() as conn:
        estate(conn, hosts=hosts, vulns=vulns, start=int(time.time()), rollouts=rollouts,
               findings_per_vuln=findings_per_vuln, exceptions=exceptions)
        counts = {t: conn.execute(select(func.count()).select_from(table)).scalar_one()
                  for t, table in (("hosts", RECORD_TABLES["Host"]),
                                   ("vulnerabilities", RECORD_TABLES["Vulnerability"]),
                                   ("findings", findings), ("rollouts", RECORD_TABLES["Rollout"]),
                                   ("deployments", RECORD_TABLES["Deployment"]),
                                   ("record versions", record_versions))}
    analyze(engine)  # what autovacuum does soon after a bulk load (PostgreSQL)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE findings")
            conn.commit()
    return (", ".join(f"{n:,} {t}" for t, n in counts.items())
            + f" synthesized in {time.perf_counter() - started:.1f} s")
