"""The ledger side of the API against app.fabric's in-process fake peer (real gRPC, signature
checks, blocks) and fake CA (real HTTPS, registration and enrollment): users get their own
CA-issued identity; an approval is a statement signed with that user's key after a fresh TOTP
check; ledger refusals and a dead peer map to 4xx / 503 with the ledger's words, within
bounded time."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import grpc
import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from patchledger.app.fabric import CAClient, ErrorDetail, Identity
from patchledger.app.fabric._protos import common_pb2, proposal_pb2
from patchledger.app.fabric.config import CAConfig, IdentitySource, PeerConfig
from patchledger.app.fabric.identity import load_certificate, parse_serialized_identity
from patchledger.app.web.errors import RequestError
from patchledger.app.web.factory import create_app
from patchledger.chaincode.lifecycle.statement import SignedStatement, verify_statement
from tests.support.fabric.fake_ca import FakeCA
from tests.support.fabric.fake_gateway import FakeGateway, ScriptedFailure
from tests.support.fabric.pki import TestCA
from tests.unit.webapp.conftest import Account, add_user, make_config, totp_code

_ledger_pb2: Any = import_module("fabric_protos.common.ledger_pb2")
DIGEST = "ab" * 32
PATCH = {"patch_id": "p-1", "title": "xz-utils fix", "vendor": "Debian",
         "artifact_sha256": DIGEST, "artifact_size": 1024,
         "artifact_uri": f"https://artifacts.example/{DIGEST}", "fixes": ["CVE-2024-3094"],
         "targets": ["pkg:deb/debian/xz-utils"]}


class Chaincode:
    """A stand-in contract that keeps the submitted records and answers GetRecord."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, list[Any]]] = []

    def __call__(self, function: str, args: list[bytes], transient: dict[str, bytes]
                 ) -> tuple[bytes, tuple[str, bytes] | None]:
        del transient
        decoded = [a.decode() for a in args]
        self.calls.append((function, decoded))
        if function == "ProposePatch":
            patch = json.loads(decoded[0])
            self.records[("Patch", patch["patch_id"])] = {**patch, "status": "PROPOSED"}
            return json.dumps({"patch_id": patch["patch_id"]}).encode(), (function, b"{}")
        if function == "GetRecord":
            return json.dumps(self.records[(decoded[0], decoded[1])]).encode(), None
        if function == "GetChainInfo":  # qscc: the read model counts as caught up
            return _ledger_pb2.BlockchainInfo(height=0).SerializeToString(), None
        return b'{"ok": true}', (function, b"{}")


@pytest.fixture
def chaincode() -> Chaincode:
    return Chaincode()


@pytest.fixture
def fake_ca(tmp_path: Path) -> Iterator[FakeCA]:
    (tmp_path / "ca").mkdir()
    with FakeCA(tmp_path / "ca", msp_id="SecOpsMSP") as server:
        yield server


@pytest.fixture
def fake_peer(chaincode: Chaincode) -> Iterator[FakeGateway]:
    ca = TestCA("SecOpsMSP", "ca.secops")
    with FakeGateway(channel="patchledger", peer=ca.issue("peer0"),
                     orderer=TestCA("OrdererMSP").issue("orderer0"),
                     chaincode=chaincode) as server:
        yield server


def _ledger_app(tmp_path: Path, fake_ca: FakeCA, fake_peer: FakeGateway,
                **overrides: Any) -> APIFlask:
    ca_tls = tmp_path / "ca-tls.pem"
    ca_tls.write_bytes(fake_ca.tls_ca_pem)
    registrar = CAClient(fake_ca.url, tls_ca_certificate=fake_ca.tls_ca_pem, ca_name="ca"
                         ).enroll("admin", "adminpw").write_msp_dir(tmp_path / "registrar")
    return create_app(make_config(
        tmp_path, peer=PeerConfig(fake_peer.address, insecure=True),
        ca=CAConfig(fake_ca.url, tls_ca_cert=ca_tls, ca_name="ca"),
        registrar=IdentitySource("SecOpsMSP", msp_dir=registrar), **overrides))


@pytest.fixture
def ledger_app(tmp_path: Path, fake_ca: FakeCA, fake_peer: FakeGateway) -> APIFlask:
    return _ledger_app(tmp_path, fake_ca, fake_peer)


def _creator(fake: FakeGateway) -> Identity:
    signed = fake.captured.endorse[-1].proposed_transaction
    proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
    signature_header = common_pb2.SignatureHeader.FromString(
        common_pb2.Header.FromString(proposal.header).signature_header)
    msp_id, pem = parse_serialized_identity(signature_header.creator)
    return Identity.from_certificate(msp_id, load_certificate(pem))


def test_approval_is_signed_with_the_approvers_own_enrolled_key(
        ledger_app: APIFlask, fake_peer: FakeGateway, fake_ca: FakeCA,
        chaincode: Chaincode) -> None:
    client = ledger_app.test_client()
    operator = add_user(ledger_app, "olga", "operator")
    approver = add_user(ledger_app, "amir", "approver")
    proposed = client.post("/api/v1/patches", json=PATCH, headers=operator.headers)
    assert proposed.status_code == 201, proposed.json
    operator_cert = _creator(fake_peer)
    assert operator_cert.msp_id == "SecOpsMSP"
    assert operator_cert.attributes["role"] == "operator"
    assert operator_cert.enrollment_id.startswith("olga.secops.")

    code = totp_code(approver.totp_secret or "")
    approved = client.post("/api/v1/patches/p-1/approve",
                           json={"totp": code, "comment": "diff reviewed"},
                           headers=approver.headers)
    assert approved.status_code == 200, approved.json
    signer = _creator(fake_peer)
    assert signer.attributes["role"] == "approver"
    assert signer.enrollment_id.startswith("amir.secops.")
    assert signer.enrollment_id != operator_cert.enrollment_id
    function, (argument,) = chaincode.calls[-1]
    assert function == "Approve"
    signed = SignedStatement.from_dict(json.loads(argument))
    statement = signed.statement
    assert (statement.patch_id, statement.artifact_sha256, statement.decision,
            statement.approver, statement.msp_id) == (
        "p-1", DIGEST, "approve", signer.enrollment_id, "SecOpsMSP")
    # the chaincode's own check: the signature verifies with the submitting certificate
    verify_statement(signed, signer.credentials, patch_id="p-1", artifact_sha256=DIGEST,
                     now=int(time.time()), max_validity=30 * 86400)

    # the same code again is a replay: refused before anything reaches the ledger
    calls = len(chaincode.calls)
    replay = client.post("/api/v1/patches/p-1/approve", json={"totp": code},
                         headers=approver.headers)
    assert replay.status_code == 401 and replay.json["error"]["field"] == "totp"
    assert len(chaincode.calls) == calls


def test_ledger_refusal_maps_to_its_status_and_message(
        ledger_app: APIFlask, fake_peer: FakeGateway) -> None:
    client = ledger_app.test_client()
    operator = add_user(ledger_app, "olga", "operator")
    assert client.post("/api/v1/patches", json=PATCH, headers=operator.headers
                       ).status_code == 201
    message = "TransitionError: Patch 'p-1' is PROPOSED: cannot move to TESTED"
    fake_peer.fail_next("endorse", ScriptedFailure(
        grpc.StatusCode.ABORTED, "failed to endorse transaction",
        [ErrorDetail(fake_peer.address, "SecOpsMSP", f"chaincode response 409, {message}")]))
    evidence = {"report_sha256": "cd" * 32, "uri": "https://ci.example/1",
                "summary": "suite failed", "passed": True}
    refused = client.post("/api/v1/patches/p-1/evidence", json=evidence,
                          headers=operator.headers)
    assert refused.status_code == 409
    assert refused.json["error"]["message"] == message
    assert refused.json["error"]["function"] == "AttachTestEvidence"
    assert len(refused.json["error"]["transaction_id"]) == 64
    fake_peer.fail_next("evaluate", ScriptedFailure(
        grpc.StatusCode.UNKNOWN, "evaluate call to endorser returned error",
        [ErrorDetail(fake_peer.address, "SecOpsMSP",
                     "chaincode response 404, NotFoundError: Patch 'p-9' does not exist")]))
    missing = client.get("/api/v1/patches/p-9/bundle", headers=operator.headers)
    assert missing.status_code == 404
    assert missing.json["error"]["message"] == "NotFoundError: Patch 'p-9' does not exist"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dead_peer_and_ca_give_503_naming_the_endpoint_quickly(
        tmp_path: Path, fake_ca: FakeCA) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    registrar = TestCA("SecOpsMSP").issue("admin").write_msp_dir(tmp_path / "registrar")
    app = create_app(make_config(
        tmp_path, peer=PeerConfig(address, insecure=True),
        ca=CAConfig(f"https://127.0.0.1:{_closed_port()}", timeout=2),
        registrar=IdentitySource("SecOpsMSP", msp_dir=registrar)))
    client: FlaskClient = app.test_client()
    auditor: Account = add_user(app, "aud", "auditor")
    started = time.monotonic()
    read = client.get("/api/v1/patches/p-1/bundle", headers=auditor.headers)
    assert read.status_code == 503, read.json
    assert address in read.json["error"]["message"] and read.json["error"]["endpoint"] == address
    assert read.headers["Retry-After"]
    operator = add_user(app, "olga", "operator")
    write = client.post("/api/v1/patches", json=PATCH, headers=operator.headers)
    assert write.status_code == 503 and "CA" in write.json["error"]["message"], write.json
    status = client.get("/api/v1/readmodel/status", headers=auditor.headers)
    assert status.status_code == 200 and status.json["peer_height"] is None
    assert time.monotonic() - started < 25
    metrics = client.get("/metrics").get_data(as_text=True)
    assert ('patchledger_ledger_failures_total{function="GetApprovalBundle",status="503"} 1.0'
            in metrics)


def test_scheduled_ingestion_records_matched_vulnerabilities_once_per_deployment(
        tmp_path: Path, fake_ca: FakeCA, fake_peer: FakeGateway, chaincode: Chaincode) -> None:
    from patchledger.app.web.ingestion import IngestionScheduler
    from tests.unit.ingest.ingest_support import DPKG, require_feeds

    app = _ledger_app(tmp_path, fake_ca, fake_peer, feed_sources=require_feeds())
    client = app.test_client()
    operator = add_user(app, "olga", "operator")
    feed = add_user(app, "fido", "feed")
    assert client.put("/api/v1/hosts/web-1/packages", json={
        "format": "dpkg", "content": DPKG, "release": "bullseye"},
        headers=operator.headers).status_code == 200
    scheduler = IngestionScheduler(app, "fido", interval=3600)
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while not scheduler.reports and scheduler.error is None:
            assert time.monotonic() < deadline, "no scheduled import ran"
            time.sleep(0.1)
        assert scheduler.error is None, scheduler.error
        report = scheduler.reports[0]
        assert report.status == "ok" and report.submitted > 0, report
        recorded = [v["vuln_id"] for function, args in chaincode.calls
                    if function == "RecordVulnerabilities" for v in json.loads(args[0])]
        assert "CVE-2022-46169" in recorded
        assert _creator(fake_peer).attributes["role"] == "feed"
        # one scheduler per deployment: a second one, and a manual import, are refused
        second = IngestionScheduler(app, "fido", interval=3600)
        second.start()
        second.stop()
        assert second.error is not None and "already runs" in str(second.error)
        manual = client.post("/api/v1/feeds/import", headers=feed.headers)
        assert manual.status_code == 409 and manual.json["error"]["field"] == "feeds"
    finally:
        scheduler.stop()
    with pytest.raises(RequestError, match="not an active feed user"):
        IngestionScheduler(app, "olga", interval=3600)
