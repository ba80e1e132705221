"""Storage faults under the org app: each of its stores (the SQLite database of users, tokens
and the read model; the artifact store; the dispatcher board its agent endpoints write the
reports into) on a small tmpfs of its own, filled to its last page or remounted read-only.

For each write the API offers there (an artifact upload, a user, a host's signed reports),
the answer is a clear JSON error: 507 on a full disk, 503 on a read-only one, naming the path
that cannot be written, with ``Retry-After``; never a 500. Nothing is corrupted: the database
passes SQLite's ``integrity_check`` and holds exactly what it held, the artifact store and
the inbox hold no part of the refused write, and reads keep answering. Once the space (or
write access) is back, the same requests succeed.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from apiflask import APIFlask

from patchledger.app.dispatch.board import Board
from patchledger.app.web.factory import AppState, create_app
from tests.reliability.storage import FAULTS, restore, small_tmpfs, snapshot
from tests.unit.lifecycle.lifecycle_support import ITOPS, host_identity, org_ca, report
from tests.unit.webapp.conftest import Account, add_user, agent_headers, make_config

pytestmark = pytest.mark.reliability

HEADER = "X-Client-Cert"
ARTIFACT = b"patched build " * 2000  # 28 KB: more than the last free pages


@dataclass(frozen=True)
class Volumes:
    """The app's three stores, each on its own tmpfs."""

    db: Path
    artifacts: Path
    board: Path


@pytest.fixture
def volumes(tmp_path: Path) -> Iterator[Volumes]:
    with small_tmpfs(tmp_path / "db", size="4m") as db, \
            small_tmpfs(tmp_path / "artifacts", size="1m") as artifacts, \
            small_tmpfs(tmp_path / "board", size="256k") as board:
        yield Volumes(db, artifacts, board)


@pytest.fixture
def app(volumes: Volumes, tmp_path: Path) -> APIFlask:
    trust = tmp_path / "msp-itops"
    (trust / "cacerts").mkdir(parents=True)
    (trust / "cacerts" / "ca.pem").write_bytes(org_ca(ITOPS).cert_pem)
    return create_app(replace(
        make_config(volumes.db), organization="itops", msp_id=ITOPS,
        trust_msp_dirs=((ITOPS, trust),), agent_cert_header=HEADER,
        artifact_dir=volumes.artifacts / "store", dispatch_dir=volumes.board / "board",
        wallet_dir=tmp_path / "wallet"))


def _fault(app: APIFlask, fs: Path, fault: str) -> None:
    """Apply ``fault``; the app's pooled database connections are closed first (a read-only
    remount waits for files open for writing: a kernel remounting after errors does not)."""
    if fault == "read-only":
        state_of(app).engine.dispose()
    FAULTS[fault](fs)


def state_of(app: APIFlask) -> AppState:
    value: AppState = app.extensions["patchledger"]
    return value


def _refused(answer: Any, fault: str, path: Path) -> str:
    """The answer is the storage error of ``fault`` naming ``path``; its message."""
    status = 507 if fault == "full-disk" else 503
    assert answer.status_code == status, (answer.status_code, answer.json)
    message: str = answer.json["error"]["message"]
    assert str(path) in message, message
    assert answer.headers.get("Retry-After"), answer.headers
    return message


def _rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall())


def _json(answer: Any) -> dict[str, Any]:
    doc = answer.json
    assert isinstance(doc, dict), answer.data
    return doc


def _host_headers() -> dict[str, str]:
    return agent_headers(**{HEADER: quote(host_identity(ITOPS, "h1").cert_pem.decode())})


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_an_artifact_upload(app: APIFlask, volumes: Volumes, fault: str) -> None:
    operator = add_user(app, "uploader", "operator")
    client = app.test_client()
    first = client.post("/api/v1/artifacts", data=b"first build", headers=operator.headers)
    assert first.status_code == 201, first.json
    before = snapshot(volumes.artifacts)
    FAULTS[fault](volumes.artifacts)
    answer = client.post("/api/v1/artifacts", data=ARTIFACT, headers=operator.headers)
    message = _refused(answer, fault, volumes.artifacts / "store")
    assert "nothing was stored" in message
    assert snapshot(volumes.artifacts) == before  # no part of it, no temporary file
    digest = _json(first)["sha256"]
    read = client.get(f"/api/v1/artifacts/{digest}", headers=operator.headers)
    assert read.status_code == 200 and read.data == b"first build"
    restore(volumes.artifacts, fault)
    again = client.post("/api/v1/artifacts", data=ARTIFACT, headers=operator.headers)
    assert again.status_code == 201, again.json


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_database_write(app: APIFlask, volumes: Volumes, fault: str) -> None:
    admin: Account = add_user(app, "root", "admin")
    client = app.test_client()
    db = volumes.db / "app.db"
    users = _rows(db, "app_users")
    _fault(app, volumes.db, fault)
    body = {"username": "newcomer", "role": "auditor", "password": "a long enough password"}
    answer = client.post("/api/v1/users", json=body, headers=admin.headers)
    message = _refused(answer, fault, db)
    assert ("disk is full" in message) if fault == "full-disk" else ("read-only" in message)
    listed = client.get("/api/v1/users", headers=admin.headers)
    if fault == "full-disk":  # reads keep answering
        assert listed.status_code == 200, listed.json
        assert "newcomer" not in {u["username"] for u in _json(listed)["items"]}
    else:  # SQLite in WAL mode cannot open a database on a read-only file system at all
        _refused(listed, fault, db)
    restore(volumes.db, fault)
    assert _rows(db, "app_users") == users  # not half written, not corrupted
    again = client.post("/api/v1/users", json=body, headers=admin.headers)
    assert again.status_code == 201, again.json
    assert len(_rows(db, "app_users")) == len(users) + 1


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_hosts_reports_into_the_dispatchers_inbox(app: APIFlask, volumes: Volumes,
                                                    fault: str) -> None:
    client = app.test_client()
    host = host_identity(ITOPS, "h1")
    signed = [report(host, 1, "VERIFIED")]
    board = volumes.board / "board"
    Board(board).publish_orders({})
    assert client.get("/api/v1/agent/poll", headers=_host_headers()).status_code == 200
    before = snapshot(volumes.board)
    FAULTS[fault](volumes.board)
    answer = client.post("/api/v1/agent/reports", json={"reports": signed},
                         headers=_host_headers())
    _refused(answer, fault, board / "inbox")  # not acknowledged: the agent keeps it
    assert snapshot(volumes.board) == before
    restore(volumes.board, fault)
    again = client.post("/api/v1/agent/reports", json={"reports": signed},
                        headers=_host_headers())
    assert again.status_code == 200 and again.json == {"acknowledged": [1]}
    assert [r["report"]["sequence"] for f in Board(board).pending_reports()
            for r in f.reports] == [1]
