"""The compliance report against a small scenario computed by hand (the expected figures are
worked out in the comments), written as ledger history into a real read-model database; the
renderings (CSV headers, HTML, PDF pages and text) and the CLI."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from patchledger.app.cli import main
from patchledger.app.db import open_engine
from patchledger.app.errors import UserError
from patchledger.app.reports import render
from patchledger.app.reports.compliance import Report, compute
from patchledger.app.reports.source import load_facts, parse_as_of
from patchledger.app.web.db import create_schema
from tests.support.readmodel import policy_document
from tests.support.ui import Writer

AS_OF = "2026-11-01"


def t(day: str, hour: int = 0) -> int:
    return int(datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").timestamp())


def vuln(vid: str, severity: str, status: str = "OPEN", due: str = "") -> dict[str, Any]:
    return {"vuln_id": vid, "severity": severity, "status": status, "title": vid,
            "known_exploited": bool(due), "kev_due_date": due, "cvss_score": "",
            "aliases": [], "sources": []}


def host(hid: str, owner: str, group: str) -> dict[str, Any]:
    return {"host_id": hid, "owner_msp": owner, "groups": [group], "status": "ENROLLED",
            "cert_pem": "", "inventory_sha256": "", "last_report_sequence": 0}


def deployment(hid: str, status: str, patch: str = "pa") -> dict[str, Any]:
    return {"rollout_id": f"r-{patch}", "host_id": hid, "patch_id": patch,
            "owner_msp": "SecOpsMSP",
            "wave": 0, "status": status, "report_sequence": 1}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = open_engine(f"sqlite:///{tmp_path / 'app.db'}")
    create_schema(engine)
    events: list[tuple[int, str, dict[str, Any]]] = [
        (t("2026-01-01"), "Vulnerability", vuln("CVE-D", "low")),
        (t("2026-07-01"), "Vulnerability", vuln("CVE-C", "medium")),
        (t("2026-08-15"), "Vulnerability", vuln("CVE-C", "medium", "MITIGATED")),
        (t("2026-09-01"), "Policy", {"policy_id": "default", "version": 1,
                                     **policy_document()}),
        (t("2026-09-02"), "Host", host("h1", "SecOpsMSP", "web")),
        (t("2026-09-02"), "Host", host("h2", "ITOpsMSP", "db")),
        (t("2026-09-02"), "Host", host("h3", "SecOpsMSP", "web")),
        (t("2026-10-01"), "Vulnerability", vuln("CVE-A", "critical", due="2026-10-10")),
        (t("2026-10-02"), "Vulnerability", vuln("CVE-E", "critical", due="2026-10-20")),
        (t("2026-10-02"), "Patch", {"patch_id": "pa", "fixes": ["CVE-A"],
                                    "status": "APPROVED", "severity": "critical"}),
        (t("2026-10-03"), "Vulnerability",
         vuln("CVE-E", "critical", "NOT_AFFECTED", due="2026-10-20")),
        (t("2026-10-04"), "Deployment", deployment("h1", "DISPATCHED")),
        (t("2026-10-05"), "Deployment", deployment("h1", "VERIFIED")),
        (t("2026-10-05"), "Deployment", deployment("h2", "DISPATCHED")),
        (t("2026-10-12"), "Deployment", deployment("h2", "VERIFIED")),
        (t("2026-10-15"), "RiskAcceptance", {"vuln_id": "CVE-D", "exception_id": "x3",
                                             "status": "PROPOSED", "expires_at": t("2026-10-15"),
                                             "host_ids": [], "approvals": ["SecOpsMSP"]}),
        (t("2026-10-20"), "Vulnerability", vuln("CVE-B", "high", due="2026-11-15")),
        (t("2026-10-21"), "Patch", {"patch_id": "pb", "fixes": ["CVE-B"],
                                    "status": "APPROVED", "severity": "high"}),
        (t("2026-10-21"), "Deployment", deployment("h3", "DISPATCHED", "pb")),
        (t("2026-10-22"), "RiskAcceptance", {"vuln_id": "CVE-B", "exception_id": "x1",
                                             "status": "GRANTED", "expires_at": t("2026-12-01"),
                                             "host_ids": ["h3"],
                                             "approvals": ["ITOpsMSP", "SecOpsMSP"]}),
        # after the as-of date: must change nothing in the report
        (t("2026-11-05"), "Vulnerability", vuln("CVE-E", "critical", due="2026-10-20")),
        (t("2026-11-06"), "Deployment", deployment("h3", "VERIFIED", "pb")),
        (t("2026-11-10"), "Vulnerability", vuln("CVE-F", "critical", due="2026-11-20")),
    ]
    with engine.begin() as conn:
        w = Writer(conn)
        for at, record_type, doc in events:
            w.put(record_type, doc, at)
        w.flush()
    return engine


@pytest.fixture
def report(engine: Engine) -> Report:
    with engine.connect() as conn:
        return compute(load_facts(conn, parse_as_of(AS_OF)))


def test_figures_by_hand(report: Report) -> None:
    doc = report.as_dict()
    # 20 events up to 2026-10-22 happened by the as-of date, one block each
    assert doc["block_height"] == 20
    kev = doc["kev"]
    # A: hosts verified 10-05 and 10-12 -> remediated 10-12 > due 10-10: missed
    # B: due 11-15, h3 not verified: open; E: NOT_AFFECTED 10-03 <= 10-20: met
    # (E's reopening on 11-05 and F, recorded 11-10, are after the as-of date)
    assert kev["overall"] == {"met": 1, "missed": 1, "open": 1, "total": 3}
    assert [(i["vuln_id"], i["outcome"]) for i in kev["items"]] == [
        ("CVE-A", "missed"), ("CVE-B", "open"), ("CVE-E", "met")]
    # per affected host: h1 (SecOps, web) 10-05 met; h2 (ITOps, db) 10-12 missed;
    # h3 (SecOps, web) for B open
    assert kev["by_organization"] == {
        "ITOpsMSP": {"met": 0, "missed": 1, "open": 0, "total": 1},
        "SecOpsMSP": {"met": 1, "missed": 0, "open": 1, "total": 2}}
    assert kev["by_host_group"] == {
        "db": {"met": 0, "missed": 1, "open": 0, "total": 1},
        "web": {"met": 1, "missed": 0, "open": 1, "total": 2}}
    # SLA (critical 7, high 30, medium 90, low 180 days from identification):
    # A due 10-08, done 10-12 missed; E due 10-09, done 10-03 met; B due 11-19 open;
    # C due 09-29, done 08-15 met; D due 06-30, open: missed
    sla = doc["sla_by_severity"]
    assert sla["critical"] == {"met": 1, "missed": 1, "open": 0, "total": 2}
    assert sla["high"] == {"met": 0, "missed": 0, "open": 1, "total": 1}
    assert sla["medium"] == {"met": 1, "missed": 0, "open": 0, "total": 1}
    assert sla["low"] == {"met": 0, "missed": 1, "open": 0, "total": 1}
    # MTTR: A 11 days, C 45 days, E 1 day -> 19.0; October (11 + 1) / 2 = 6.0; August 45
    assert doc["mttr_days"] == 19.0
    assert doc["mttr_by_month"] == {"2026-08": 45.0, "2026-10": 6.0}
    exposure = {e["vuln_id"]: e["exposure_days"] for e in doc["exposure"]}
    # B: 10-20 00:00 to the end of 11-01 = 13 days; D: 01-01 to the end of 11-01 = 305 days
    assert exposure == {"CVE-A": 11.0, "CVE-B": 13.0, "CVE-C": 45.0, "CVE-D": 305.0,
                        "CVE-E": 1.0}
    # x1 GRANTED until 12-01: open, 29 days left; x3 PROPOSED expired 10-15: not open
    assert [(x["exception_id"], x["days_left"]) for x in doc["open_exceptions"]] == [
        ("x1", "29")]
    assert doc["policy"]["policy_id"] == "default" and doc["policy"]["version"] == 1


def test_a_later_date_sees_the_later_history(engine: Engine) -> None:
    with engine.connect() as conn:
        later = compute(load_facts(conn, parse_as_of("2026-11-30"))).as_dict()
    # E reopened (no longer remediated, due passed: missed), B's h3 verified 11-06 (met),
    # F recorded 11-10, due 11-20, open: missed
    items = {i["vuln_id"]: i["outcome"] for i in later["kev"]["items"]}
    assert items == {"CVE-A": "missed", "CVE-B": "met", "CVE-E": "missed", "CVE-F": "missed"}


def test_csv_names_policy_and_date(report: Report) -> None:
    rows = list(csv.reader(io.StringIO(render.csv_text(report))))
    assert rows[0][:6] == ["# report", "kev-remediation", "policy", "default v1", "as_of",
                           report.as_dict()["as_of"]]
    assert rows[0][-1] == render.digest(report)
    assert rows[1][:2] == ["policy", "as_of"]
    overall = next(r for r in rows if r[2] == "kev" and r[3] == "overall")
    assert overall[:2] == ["default v1", "2026-11-01T23:59:59.999999+00:00"]
    assert overall[4:8] == ["1", "1", "1", "3"]


def test_digest_is_of_the_canonical_json(report: Report) -> None:
    assert render.digest(report) == hashlib.sha256(render.render(report, "json")).hexdigest()
    html = render.html(report)
    assert render.digest(report) in html and "<svg" in html and "<script" not in html


def test_pdf_renders(report: Report) -> None:
    pypdf = pytest.importorskip("pypdf")
    try:
        data = render.pdf(report)
    except UserError as exc:
        pytest.skip(f"WeasyPrint unavailable here: {exc}")
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert 1 <= len(reader.pages) <= 5
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "KEV remediation" in text and "CVE-A" in text
    assert render.digest(report) in text.replace("\n", "")
    assert "20" in text  # the block height


def test_cli(engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kev.csv"
    url = str(engine.url)
    assert main(["report", "kev", "--as-of", AS_OF, "--format", "csv", "--database-url", url,
                 "--output", str(out)]) == 0
    assert out.read_text().startswith("# report,kev-remediation,policy,default v1")
    assert "block height 20" in capsys.readouterr().err
    assert main(["report", "kev", "--as-of", "2026-13-01", "--database-url", url]) != 0
    assert "must be YYYY-MM-DD" in capsys.readouterr().err


def test_no_policy_yet(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(UserError, match="no policy on the ledger"):
        load_facts(conn, parse_as_of("2026-08-01"))


def test_as_of_moment() -> None:
    assert parse_as_of("2026-11-01") == datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=UTC)
