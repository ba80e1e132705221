"""The patchledger CLI's Fabric sub-commands, end to end against the fake peer and fake CA."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchledger.app.cli import main
from patchledger.app.fabric.identity import Identity
from tests.support.fabric.fake_ca import FakeCA
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.fabric.pki import TestCA, TestIdentity


@pytest.fixture
def peer_args(
    tmp_path: Path, fake: FakeGateway, alice: TestIdentity, secops_ca: TestCA
) -> list[str]:
    msp = alice.write_msp_dir(tmp_path / "alice", secops_ca.cert_pem)
    return [
        "--peer",
        fake.address,
        "--insecure",
        "--msp-id",
        "SecOpsMSP",
        "--msp-dir",
        str(msp),
        "--channel",
        "patches",
    ]


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_invoke_query_json(peer_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "Propose", "P-1", "--json", *peer_args]) == 0
    (out,) = _json_lines(capsys.readouterr().out)
    assert out["result"] == "Propose:P-1"
    assert out["block_number"] == 1
    assert main(["query", "Get", "P-1", *peer_args]) == 0
    assert capsys.readouterr().out.strip() == "Get:P-1"


def test_invoke_reports_invalid_commit(
    peer_args: list[str], fake: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.default_commit_code = 11
    assert main(["invoke", "Approve", "P-1", *peer_args]) == 2
    assert "MVCC_READ_CONFLICT" in capsys.readouterr().err


def test_missing_settings_are_user_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PATCHLEDGER_PEER", raising=False)
    assert main(["query", "Get", "--insecure", "--msp-id", "X", "--msp-dir", "/nonexistent"]) == 2
    assert "peer endpoint is required" in capsys.readouterr().err


def test_events_tail_resumes_from_checkpoint(
    tmp_path: Path, peer_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for patch in ("P-1", "P-2", "P-3"):
        assert main(["invoke", "Propose", patch, *peer_args]) == 0
    capsys.readouterr()
    checkpoint = str(tmp_path / "events.json")
    tail = ["events", "tail", "--start-block", "0", "--checkpoint", checkpoint, "--json"]
    assert main([*tail, "--count", "2", *peer_args]) == 0
    first = _json_lines(capsys.readouterr().out)
    assert [e["payload"] for e in first] == ["Propose:P-1", "Propose:P-2"]
    assert main([*tail, "--count", "1", *peer_args]) == 0
    (third,) = _json_lines(capsys.readouterr().out)
    assert third["payload"] == "Propose:P-3"
    blocks = ["events", "tail", "--blocks", "--start-block", "0", "--count", "2", *peer_args]
    assert main(blocks) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "CONFIG" in lines[0]
    assert "SecOpsMSP VALID patchledger Propose" in lines[1]


def test_ledger_verify(
    tmp_path: Path,
    peer_args: list[str],
    secops_ca: TestCA,
    orderer_ca: TestCA,
    fake: FakeGateway,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["invoke", "Propose", "P-1", *peer_args]) == 0
    capsys.readouterr()
    orderer_ca.issue("o").write_msp_dir(tmp_path / "orderer-msp", orderer_ca.cert_pem)
    trust = [
        "--trust",
        f"SecOpsMSP={tmp_path / 'alice'}",
        "--trust",
        f"OrdererMSP={tmp_path / 'orderer-msp'}",
        "--orderer-msp",
        "OrdererMSP",
    ]
    assert main(["ledger", "verify", *trust, *peer_args]) == 0
    assert capsys.readouterr().out.startswith("ledger OK: 2 blocks, 2 transactions")
    fake.chain.blocks[1].header.data_hash = b"\x00" * 32  # tamper with the served copy
    assert main(["ledger", "verify", "--json", *trust, *peer_args]) == 1
    (report,) = _json_lines(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["inconsistency"]["block_number"] == 1  # type: ignore[index]
    assert report["inconsistency"]["check"] == "data_hash"  # type: ignore[index]


@pytest.fixture
def fake_ca(tmp_path: Path) -> Iterator[FakeCA]:
    with FakeCA(tmp_path) as server:
        yield server


def test_identity_enroll_register_enroll(
    tmp_path: Path,
    fake_ca: FakeCA,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "ca-tls.pem").write_bytes(fake_ca.tls_ca_pem)
    ca = ["--ca-url", fake_ca.url, "--ca-tls", str(tmp_path / "ca-tls.pem"), "--ca-name", "ca"]
    admin_msp = tmp_path / "admin"
    assert (
        main(
            [
                "identity",
                "enroll",
                "--id",
                "admin",
                "--secret",
                "adminpw",
                "--out",
                str(admin_msp),
                *ca,
            ]
        )
        == 0
    )
    registrar = ["--msp-id", "SecOpsMSP", "--msp-dir", str(admin_msp)]
    assert (
        main(
            [
                "identity",
                "register",
                "--id",
                "approver1",
                "--secret",
                "pw1",
                "--attr",
                "role=approver:ecert",
                "--json",
                *registrar,
                *ca,
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["secret"] == "pw1"
    monkeypatch.setenv("PATCHLEDGER_WALLET_PASSPHRASE", "wallet-pw")
    wallet = tmp_path / "wallet"
    assert (
        main(
            [
                "identity",
                "enroll",
                "--id",
                "approver1",
                "--secret",
                "pw1",
                "--attr",
                "role",
                "--msp-id",
                "SecOpsMSP",
                "--wallet",
                str(wallet),
                "--label",
                "approver1",
                "--json",
                *ca,
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["attributes"] == {"role": "approver"}
    from patchledger.app.fabric.wallet import Wallet

    identity, _ = Wallet(wallet, "wallet-pw").get("approver1")
    assert isinstance(identity, Identity)
    assert identity.attributes == {"role": "approver"}
    assert (
        main(
            [
                "identity",
                "enroll",
                "--id",
                "approver1",
                "--secret",
                "bad",
                "--out",
                str(tmp_path / "x"),
                *ca,
            ]
        )
        == 2
    )
    assert "Authentication failure" in capsys.readouterr().err
