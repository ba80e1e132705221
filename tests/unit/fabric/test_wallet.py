"""The encrypted wallet."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from patchledger.app.fabric.errors import WalletError
from patchledger.app.fabric.wallet import ScryptParams, Wallet
from tests.support.fabric.pki import TestCA, TestIdentity

FAST = ScryptParams(n=2**10, r=8, p=1)


def test_round_trip_and_key_never_in_clear(tmp_path: Path, alice: TestIdentity) -> None:
    wallet = Wallet(tmp_path / "w", "correct horse", scrypt=FAST)
    wallet.put("alice", alice.identity, alice.signer)
    raw = (tmp_path / "w" / "alice.id").read_bytes()
    assert b"PRIVATE KEY" not in raw
    assert stat.S_IMODE((tmp_path / "w" / "alice.id").stat().st_mode) == 0o600
    identity, signer = Wallet(tmp_path / "w", "correct horse").get("alice")
    assert identity == alice.identity
    assert signer.matches(identity.certificate)
    assert wallet.labels() == ["alice"]
    assert "alice" in wallet
    assert "bob" not in wallet


def test_wrong_passphrase(tmp_path: Path, alice: TestIdentity) -> None:
    Wallet(tmp_path, "right", scrypt=FAST).put("alice", alice.identity, alice.signer)
    with pytest.raises(WalletError, match="wrong passphrase"):
        Wallet(tmp_path, "wrong").get("alice")


def test_renamed_or_moved_entry_is_detected(tmp_path: Path, alice: TestIdentity) -> None:
    wallet = Wallet(tmp_path, "pw", scrypt=FAST)
    wallet.put("alice", alice.identity, alice.signer)
    (tmp_path / "alice.id").rename(tmp_path / "mallory.id")
    with pytest.raises(WalletError, match="tampered"):
        wallet.get("mallory")
    doc = json.loads((tmp_path / "mallory.id").read_text())
    doc["msp_id"] = "ITOpsMSP"
    (tmp_path / "alice.id").write_text(json.dumps(doc))
    with pytest.raises(WalletError, match="tampered"):
        wallet.get("alice")


def test_key_must_match_certificate(tmp_path: Path, alice: TestIdentity, secops_ca: TestCA) -> None:
    other = secops_ca.issue("other")
    with pytest.raises(WalletError, match="does not match"):
        Wallet(tmp_path, "pw", scrypt=FAST).put("x", alice.identity, other.signer)


def test_missing_and_invalid_labels(tmp_path: Path) -> None:
    wallet = Wallet(tmp_path, "pw", scrypt=FAST)
    with pytest.raises(WalletError, match="no identity"):
        wallet.get("nobody")
    with pytest.raises(WalletError, match="invalid wallet label"):
        wallet.get("../etc/passwd")
    with pytest.raises(WalletError, match="no identity"):
        wallet.remove("nobody")
    (tmp_path / "bad.id").write_text("{not json")
    with pytest.raises(WalletError, match="unreadable"):
        wallet.get("bad")


def test_remove(tmp_path: Path, alice: TestIdentity) -> None:
    wallet = Wallet(tmp_path, "pw", scrypt=FAST)
    wallet.put("alice", alice.identity, alice.signer)
    wallet.remove("alice")
    assert wallet.labels() == []
