"""The org app's agent endpoints (app/web/agent_api.py) with the Flask test client, the fake
CA (which enforces CN = enrollment id and issues the registered attributes) and the fake
peer running the real chaincode: enrollment with a one-time token and the agent's own CSR,
the protocol headers (nonce, time, replay), host authentication by the certificate the
TLS-terminating proxy passes, poll / desired state with an ETag, artifacts with Range,
reports into the dispatcher's inbox; the attacks: a reused, expired or another host's token,
a certificate of another CA or of a user, a host reporting for another host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from apiflask import APIFlask
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient

from patchledger.agent.enroll import build_csr, check_certificate
from patchledger.app.dispatch.board import Board, Order
from patchledger.chaincode.lifecycle.trust import OrgTrust
from tests.support.fabric.fake_ca import FakeCA
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.fabric.pki import TestCA
from tests.unit.webapp.conftest import add_user, agent_headers
from tests.unit.webapp.test_ledger_flow import (  # noqa: F401  (pytest fixtures)
    Chaincode,
    _creator,
    _ledger_app,
    chaincode,
    fake_ca,
    fake_peer,
)

HEADER = "X-Client-Cert"
PREFIX = "/api/v1/agent"


@pytest.fixture
def agent_app(tmp_path: Path, fake_ca: FakeCA, fake_peer: FakeGateway) -> APIFlask:  # noqa: F811
    msp = tmp_path / "msp-secops"
    (msp / "cacerts").mkdir(parents=True)
    (msp / "cacerts" / "ca.pem").write_bytes(fake_ca.ca.cert_pem)
    return _ledger_app(tmp_path, fake_ca, fake_peer, trust_msp_dirs=(("SecOpsMSP", msp),),
                       agent_cert_header=HEADER, dispatch_dir=tmp_path / "board",
                       agent_poll_interval=42)


def _token(app: APIFlask, host_id: str) -> str:
    operator = add_user(app, f"op-{host_id}", "operator")
    made = app.test_client().post("/api/v1/hosts/enrollment-tokens", json={"host_id": host_id},
                                  headers=operator.headers)
    assert made.status_code == 201, made.json
    secret: str = made.json["secret"]
    return secret


def _enroll(client: FlaskClient, token: str, host_id: str,
            key: ec.EllipticCurvePrivateKey | None = None) -> Any:
    key = key or ec.generate_private_key(ec.SECP256R1())
    return client.post(f"{PREFIX}/enroll", headers=agent_headers(), json={
        "token": token, "host_id": host_id, "csr_pem": build_csr(key, host_id).decode()})


def _enrolled(app: APIFlask, host_id: str) -> dict[str, str]:
    """Enroll ``host_id`` through the API; the headers a proxy would pass for it."""
    answer = _enroll(app.test_client(), _token(app, host_id), host_id)
    assert answer.status_code == 200, answer.json
    return {HEADER: quote(answer.json["certificate_pem"])}


def test_enrollment_issues_a_host_certificate_for_the_agents_own_key_once(
        agent_app: APIFlask, fake_ca: FakeCA, fake_peer: FakeGateway,  # noqa: F811
        chaincode: Chaincode) -> None:  # noqa: F811
    client = agent_app.test_client()
    token = _token(agent_app, "web-01")
    key = ec.generate_private_key(ec.SECP256R1())
    answer = _enroll(client, token, "web-01", key)
    assert answer.status_code == 200, answer.json
    assert answer.headers["X-Patchledger-Nonce"]  # echoed
    doc = answer.json
    assert doc["host_id"] == "web-01" and doc["msp_id"] == "SecOpsMSP"
    assert doc["poll_interval"] == 42
    # the agent's own check: its key, CN, role=host, host_id, issued by the org's root
    roots = OrgTrust.from_pem({"SecOpsMSP": fake_ca.ca.cert_pem})
    cert = check_certificate(doc["certificate_pem"], key=key, host_id="web-01",
                             msp_id="SecOpsMSP", roots=roots, now=int(time.time()))
    assert cert.public_key() == key.public_key()
    # only the CSR went to the CA: no private key in anything the app sent
    sent = json.dumps(fake_ca.requests)
    assert key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()[40:80] not in sent
    # the host is recorded on the ledger with that certificate (EnrollHost, submitted as the
    # operator who made the token)
    enrolled = [json.loads(args[0]) for f, args in chaincode.calls if f == "EnrollHost"]
    assert [d["host_id"] for d in enrolled] == ["web-01"]
    assert x509.load_pem_x509_certificate(enrolled[0]["cert_pem"].encode()) == cert
    assert _creator(fake_peer).enrollment_id.startswith("op-web-01.")
    replay = _enroll(client, token, "web-01")
    assert replay.status_code == 401 and "was used" in replay.json["error"]["message"]
    assert replay.json["error"]["field"] == "token"
    forged = _enroll(client, "ple_forged", "web-01")
    assert forged.status_code == 401 and forged.json["error"]["field"] == "token"


def test_a_token_works_only_for_its_host_and_bad_input_names_the_field(
        agent_app: APIFlask) -> None:
    client = agent_app.test_client()
    token = _token(agent_app, "db-01")
    other = _enroll(client, token, "web-99")
    assert other.status_code == 403 and other.json["error"]["field"] == "host_id"
    key = ec.generate_private_key(ec.SECP256R1())
    for body, field in [
        ({"host_id": "db-01", "csr_pem": "x"}, "token"),
        ({"token": token, "host_id": "db 01", "csr_pem": "x"}, "host_id"),
        ({"token": token, "host_id": "db-01"}, "csr_pem"),
        ({"token": token, "host_id": "db-01", "csr_pem": "not a csr"}, "csr_pem"),
        ({"token": token, "host_id": "db-01",
          "csr_pem": build_csr(key, "web-99").decode()}, "csr_pem"),  # CN is another host
    ]:
        bad = client.post(f"{PREFIX}/enroll", headers=agent_headers(), json=body)
        assert bad.status_code == 400, (body, bad.json)
        assert bad.json["error"]["field"] == field, bad.json
    # none of that spent the token
    assert _enroll(client, token, "db-01").status_code == 200
    bundle = client.get(f"{PREFIX}/enrollment-bundle?nonce=abc", headers=agent_headers())
    assert bundle.status_code == 400 and bundle.json["error"]["field"] == "nonce"


def test_protocol_headers_nonce_time_and_replay(agent_app: APIFlask) -> None:
    client = agent_app.test_client()
    good = "a" * 64
    missing = client.get(f"{PREFIX}/enrollment-bundle?nonce={good}")
    assert missing.status_code == 400
    assert missing.json["error"]["field"] == "X-Patchledger-Nonce"
    stale = client.get(f"{PREFIX}/enrollment-bundle?nonce={good}",
                       headers=agent_headers(**{"X-Patchledger-Time": "1000"}))
    assert stale.status_code == 400 and stale.json["error"]["field"] == "X-Patchledger-Time"
    headers = agent_headers()
    first = client.get(f"{PREFIX}/enrollment-bundle?nonce={good}", headers=headers)
    assert first.status_code == 200, first.json
    assert first.headers["X-Patchledger-Nonce"] == headers["X-Patchledger-Nonce"]
    assert first.json["roots"]["SecOpsMSP"] and first.json["msp_id"] == "SecOpsMSP"
    again = client.get(f"{PREFIX}/enrollment-bundle?nonce={good}", headers=headers)
    assert again.status_code == 409 and "replay" in again.json["error"]["message"]


def test_poll_desired_state_etag_artifact_and_reports(agent_app: APIFlask,
                                                      tmp_path: Path) -> None:
    cert = _enrolled(agent_app, "web-01")
    client = agent_app.test_client()
    artifact = b"patched bytes " * 100
    operator = add_user(agent_app, "uploader", "operator")
    up = client.post("/api/v1/artifacts", data=artifact, headers=operator.headers)
    assert up.status_code == 201, up.json
    sha = up.json["sha256"]
    empty = client.get(f"{PREFIX}/poll", headers=agent_headers(**cert))
    assert empty.status_code == 200, empty.json
    assert empty.json["poll_interval"] == 42
    Board(tmp_path / "board").publish_orders({"web-01": Order("apply", "R-1", "P-1", sha)})
    polled = client.get(f"{PREFIX}/poll", headers=agent_headers(**cert)).json
    assert polled["etag"] != empty.json["etag"]
    desired = client.get(f"{PREFIX}/desired-state", headers=agent_headers(**cert))
    assert desired.status_code == 200 and desired.headers["ETag"] == polled["etag"]
    assert desired.json == {"assignments": [{"rollout_id": "R-1", "patch_id": "P-1",
                                             "artifact": {"sha256": sha,
                                                          "size": len(artifact)}}]}
    same = client.get(f"{PREFIX}/desired-state",
                      headers=agent_headers(**cert, **{"If-None-Match": polled["etag"]}))
    assert same.status_code == 304 and same.headers["ETag"] == polled["etag"]
    part = client.get(f"{PREFIX}/artifacts/{sha}", headers=agent_headers(**cert, Range="bytes=10-"))
    assert part.status_code == 206 and part.data == artifact[10:]
    assert client.get(f"{PREFIX}/artifacts/{'0' * 64}",
                      headers=agent_headers(**cert)).status_code == 404
    report = {"report": {"host_id": "web-01", "sequence": 1, "rollout_id": "R-1",
                         "patch_id": "P-1", "status": "APPLIED"}, "signature": "c2ln"}
    acked = client.post(f"{PREFIX}/reports", headers=agent_headers(**cert),
                        json={"reports": [report]})
    assert acked.status_code == 200 and acked.json == {"acknowledged": [1]}
    inbox = Board(tmp_path / "board").pending_reports()
    assert [r["report"]["sequence"] for f in inbox for r in f.reports] == [1]
    bad = client.post(f"{PREFIX}/reports", headers=agent_headers(**cert),
                      json={"reports": [{"report": {"host_id": "web-01"}}]})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "reports[0]"


def test_the_dispatcher_sees_every_polling_host_not_only_the_last(agent_app: APIFlask,
                                                                  tmp_path: Path) -> None:
    # regression (found under load, bench/bench_agent_poll.py): a Board per request wrote
    # seen.json on every poll with only the polling host in it
    certs = {h: _enrolled(agent_app, h) for h in ("web-01", "web-02", "web-03")}
    client = agent_app.test_client()
    for cert in certs.values():
        assert client.get(f"{PREFIX}/poll", headers=agent_headers(**cert)).status_code == 200
    board = Board(tmp_path / "board")
    time.sleep(1.05)  # seen.json is rewritten at most once a second
    client.get(f"{PREFIX}/poll", headers=agent_headers(**certs["web-02"]))
    seen = board.seen()
    assert seen is not None and set(seen) == set(certs), seen


def test_a_host_cannot_act_for_another_host_nor_without_its_certificate(
        agent_app: APIFlask, tmp_path: Path) -> None:
    cert = _enrolled(agent_app, "web-01")
    client = agent_app.test_client()
    forged = {"report": {"host_id": "web-02", "sequence": 7}, "signature": "c2ln"}
    refused = client.post(f"{PREFIX}/reports", headers=agent_headers(**cert),
                          json={"reports": [forged]})
    assert refused.status_code == 403 and "web-02" in refused.json["error"]["message"]
    assert Board(tmp_path / "board").pending_reports() == []
    # web-02's order is not web-01's: the host id comes from the certificate only
    Board(tmp_path / "board").publish_orders({"web-02": Order("apply", "R-1", "P-1", "a" * 64)})
    assert client.get(f"{PREFIX}/desired-state?host_id=web-02",
                      headers=agent_headers(**cert)).json == {"assignments": []}
    # no certificate, a user's API token, a garbage header, another CA's host certificate
    operator = add_user(agent_app, "olga", "operator")
    assert client.get(f"{PREFIX}/poll", headers=agent_headers()).status_code == 401
    assert client.get(f"{PREFIX}/poll",
                      headers=agent_headers(**operator.headers)).status_code == 401
    assert client.get(f"{PREFIX}/poll",
                      headers=agent_headers(**{HEADER: "garbage"})).status_code == 401
    rogue = TestCA("SecOpsMSP", "ca.SecOpsMSP").issue(
        "web-02", attrs={"role": "host", "host_id": "web-02"})
    other = client.get(f"{PREFIX}/poll", headers=agent_headers(
        **{HEADER: quote(rogue.identity.credentials.decode())}))
    assert other.status_code == 403 and other.json["error"]["field"] == HEADER


def test_without_a_configured_proxy_header_host_endpoints_are_closed(tmp_path: Path) -> None:
    from patchledger.app.web.factory import create_app
    from tests.unit.webapp.conftest import make_config

    app = create_app(make_config(tmp_path))
    answer = app.test_client().get(f"{PREFIX}/poll", headers=agent_headers(
        **{"X-Client-Cert": "anything"}))
    assert answer.status_code == 503 and answer.json["error"]["field"] == "agent_cert_header"


REPLAY_IN_ANOTHER_PROCESS = """
import json, sys
from pathlib import Path
from patchledger.app.web.factory import create_app
from tests.unit.webapp.conftest import make_config
tmp, nonce, sent = sys.argv[1:]
app = create_app(make_config(Path(tmp), agent_cert_header="X-Client-Cert"))
answer = app.test_client().get("/api/v1/agent/poll", headers={
    "X-Patchledger-Nonce": nonce, "X-Patchledger-Time": sent})
print(json.dumps({"status": answer.status_code, "error": answer.json["error"]}))
"""


def test_a_replay_is_refused_by_another_app_process_and_after_a_restart(tmp_path: Path) -> None:
    """The attack: a request captured on the way to one app worker is sent to another worker
    (another process behind the same proxy), or to the app after it restarted. The nonce is
    remembered in the shared database, so both refuse it."""
    from patchledger.app.web.factory import create_app
    from tests.support.wheels import ROOT
    from tests.unit.webapp.conftest import make_config

    config = make_config(tmp_path, agent_cert_header=HEADER)
    captured = agent_headers()
    first = create_app(config).test_client().get(f"{PREFIX}/poll", headers=captured)
    assert first.status_code == 401  # no certificate; the nonce is spent all the same
    other = subprocess.run([sys.executable, "-c", REPLAY_IN_ANOTHER_PROCESS, str(tmp_path),
                            captured["X-Patchledger-Nonce"], captured["X-Patchledger-Time"]],
                           capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert other.returncode == 0, other.stderr
    seen = json.loads(other.stdout)
    assert seen["status"] == 409 and "replay" in seen["error"]["message"], seen
    restarted = create_app(config).test_client()
    again = restarted.get(f"{PREFIX}/poll", headers=captured)
    assert again.status_code == 409 and again.json["error"]["field"] == "X-Patchledger-Nonce"
    assert restarted.get(f"{PREFIX}/poll", headers=agent_headers()).status_code == 401  # fresh


def test_nonces_are_remembered_until_they_expire(tmp_path: Path) -> None:
    from patchledger.app.db import open_engine, sqlite_url, upgrade
    from patchledger.app.web.agent_store import agent_nonces, claim_nonce

    engine = open_engine(sqlite_url(tmp_path / "app.db"))
    upgrade(engine)
    with engine.begin() as conn:
        assert claim_nonce(conn, "n1", now=1000, window=600)
        assert not claim_nonce(conn, "n1", now=1600, window=600)  # the window's last second
        assert claim_nonce(conn, "n1", now=1602, window=600)  # expired: a new claim
        assert claim_nonce(conn, "n2", now=1602, window=600)
    with engine.begin() as conn:  # old rows are deleted as claims go by
        claim_nonce(conn, "n3", now=10_000, window=600)
        left = {r.nonce for r in conn.execute(agent_nonces.select())}
    assert left <= {"n1", "n2", "n3"} and "n3" in left
    engine.dispose()


def test_a_resent_report_batch_is_stored_once(agent_app: APIFlask, tmp_path: Path) -> None:
    """The agent resends what it has not seen acknowledged (the answer was lost): the app
    acknowledges again and keeps one copy in the inbox, one receipt per (host, sequence)."""
    from sqlalchemy import select

    from patchledger.app.web.agent_store import agent_report_receipts
    from patchledger.app.web.factory import state

    cert = _enrolled(agent_app, "web-01")
    client = agent_app.test_client()

    def report(sequence: int, status: str = "APPLIED") -> dict[str, Any]:
        return {"report": {"host_id": "web-01", "sequence": sequence, "rollout_id": "R-1",
                           "patch_id": "P-1", "status": status}, "signature": "c2ln"}

    def post(*reports: dict[str, Any]) -> Any:
        return client.post(f"{PREFIX}/reports", headers=agent_headers(**cert),
                           json={"reports": list(reports)})

    def inbox() -> list[int]:
        return [r["report"]["sequence"] for f in Board(tmp_path / "board").pending_reports()
                for r in f.reports]

    assert post(report(1), report(2, "VERIFIED")).json == {"acknowledged": [1, 2]}
    resent = post(report(1), report(2, "VERIFIED"))
    assert resent.status_code == 200 and resent.json == {"acknowledged": [1, 2]}
    assert inbox() == [1, 2]
    assert post(report(2, "VERIFIED"), report(3), report(3)).json == {
        "acknowledged": [2, 3, 3]}
    assert inbox() == [1, 2, 3]
    # another report under a used sequence: refused, nothing stored
    conflict = post(report(4), report(2, "FAILED"))
    assert conflict.status_code == 409 and conflict.json["error"]["field"] == "reports"
    assert "sequence 2 of host web-01" in conflict.json["error"]["message"]
    assert inbox() == [1, 2, 3]
    with agent_app.app_context(), state().engine.connect() as conn:
        rows = conn.execute(select(agent_report_receipts.c.host_id,
                                   agent_report_receipts.c.sequence)).all()
    assert sorted(tuple(r) for r in rows) == [("web-01", 1), ("web-01", 2), ("web-01", 3)]


def test_a_time_of_hundreds_of_digits_is_a_clock_error(agent_app: APIFlask) -> None:
    # regression (tests/reliability/test_agent_protocol_fuzzing.py): the float difference
    # with the clock overflowed (OverflowError, a 500)
    cert = _enrolled(agent_app, "web-09")
    headers = agent_headers(**cert)
    headers["X-Patchledger-Time"] = str(10**400)
    answer = agent_app.test_client().get(f"{PREFIX}/poll", headers=headers)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["field"] == "X-Patchledger-Time"


def test_an_agent_body_over_the_cap_is_refused_before_it_is_decoded(agent_app: APIFlask
                                                                    ) -> None:
    cert = _enrolled(agent_app, "web-10")
    big = b'{"reports": [' + b"{}," * (11 * 1024 * 1024) + b"{}]}"  # 33 MiB
    answer = agent_app.test_client().post(f"{PREFIX}/reports", data=big, headers=agent_headers(
        **cert, **{"Content-Type": "application/json"}))
    assert answer.status_code == 413 and answer.json["error"]["field"] == "body", answer.json
    deep = b'{"reports": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    nested = agent_app.test_client().post(f"{PREFIX}/reports", data=deep, headers=agent_headers(
        **cert, **{"Content-Type": "application/json"}))
    assert nested.status_code == 400 and "nested too deeply" in nested.json["error"]["message"]


def test_a_changed_organization_root_is_used_at_the_next_request(agent_app: APIFlask,
                                                                 tmp_path: Path) -> None:
    # the roots are parsed once and kept until a cacerts file changes
    cert = _enrolled(agent_app, "web-11")
    client = agent_app.test_client()
    assert client.get(f"{PREFIX}/poll", headers=agent_headers(**cert)).status_code == 200
    root = tmp_path / "msp-secops" / "cacerts" / "ca.pem"
    original = root.read_bytes()
    root.write_bytes(TestCA("SecOpsMSP", "another root").cert_pem)
    assert client.get(f"{PREFIX}/poll", headers=agent_headers(**cert)).status_code == 403
    root.write_bytes(original)
    assert client.get(f"{PREFIX}/poll", headers=agent_headers(**cert)).status_code == 200


def test_every_polling_host_is_noted_for_the_dispatcher(agent_app: APIFlask,
                                                        tmp_path: Path) -> None:
    # regression: each request made its own Board, so seen.json held only the host of the
    # last poll and the dispatcher took every other host for offline (never released)
    client = agent_app.test_client()
    certs = {h: _enrolled(agent_app, h) for h in ("web-01", "web-02", "web-03")}
    for cert in certs.values():
        assert client.get(f"{PREFIX}/poll", headers=agent_headers(**cert)).status_code == 200
    with agent_app.app_context():
        from patchledger.app.web.agent_api import _relay

        _relay().flush_seen()  # what the once-a-second rewrite does
    assert set(Board(tmp_path / "board").seen() or {}) == set(certs)
