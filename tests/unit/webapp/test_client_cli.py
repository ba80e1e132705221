"""The automation CLI against a real app served by waitress on 127.0.0.1 (ports 25800-25899):
users, tokens, listing from the read model, a ledger write without a ledger (the API's 503
message printed, exit 2), and the API's field-naming errors."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiflask import APIFlask
from waitress import create_server

from patchledger.app.cli import main
from patchledger.app.readmodel.projector import project
from patchledger.app.web.factory import state
from tests.support.readmodel import SimulatedLedger, build_chain
from tests.unit.webapp.conftest import Account


def _free_port() -> int:
    for port in range(25800, 25900):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 25800-25899")


@pytest.fixture
def served(app: APIFlask) -> Iterator[str]:
    server = create_server(app, host="127.0.0.1", port=_free_port(), threads=4)
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:  # select() on a socket that close() took away while stopping
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stopping.set()
        server.close()
        thread.join(5)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_users_and_tokens(served: str, accounts: dict[str, Account],
                          monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATCHLEDGER_API_URL", served)
    monkeypatch.setenv("PATCHLEDGER_API_TOKEN", accounts["admin"].token)
    status, out, _ = _run(capsys, "users", "create", "erin", "--role", "approver", "--json")
    assert status == 0
    made = json.loads(out)
    assert made["user"]["role"] == "approver" and made["totp_secret"] and made["password"]
    status, out, _ = _run(capsys, "users", "list", "--json")
    assert "erin" in {u["username"] for u in json.loads(out)["items"]}
    status, out, _ = _run(capsys, "tokens", "create", "nightly", "--json")
    token = json.loads(out)
    monkeypatch.setenv("PATCHLEDGER_API_TOKEN", token["secret"])
    assert _run(capsys, "tokens", "list")[0] == 0
    assert _run(capsys, "tokens", "revoke", str(token["token"]["id"]))[0] == 0
    status, _, err = _run(capsys, "tokens", "list")
    assert status == 2 and "HTTP 401: the API token is unknown or revoked" in err


def test_vuln_list_and_ledger_errors(app: APIFlask, served: str, tmp_path: Path,
                                     accounts: dict[str, Account],
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    ledger = SimulatedLedger()
    chain = build_chain(ledger, [ledger.init_ledger,
                                 lambda: ledger.record_vulnerability("CVE-2025-0001", "critical"),
                                 lambda: ledger.record_vulnerability("CVE-2025-0002", "low")], 3)
    with app.app_context():
        project(state().engine, chain.blocks, channel=ledger.channel)
    monkeypatch.setenv("PATCHLEDGER_API_URL", served)
    monkeypatch.setenv("PATCHLEDGER_API_TOKEN", accounts["operator"].token)
    status, out, _ = _run(capsys, "vuln", "list", "--filter", "severity=critical")
    assert status == 0 and out.split("\t")[:3] == ["CVE-2025-0001", "OPEN", "critical"]
    status, _, err = _run(capsys, "vuln", "list", "--filter", "colour=red")
    assert status == 2 and "(field colour)" in err
    artifact = tmp_path / "fix.deb"
    artifact.write_bytes(b"deb contents")
    status, _, err = _run(capsys, "patch", "propose", "--id", "p-1", "--title", "fix",
                          "--vendor", "Debian", "--artifact", str(artifact),
                          "--fixes", "CVE-2025-0001", "--targets", "pkg:deb/debian/xz-utils")
    assert status == 2 and "HTTP 503" in err and "no CA is configured" in err
    # the artifact went to the store before the ledger refused: it is content-addressed,
    # so a retry stores nothing new
    assert any((Path(app.extensions["patchledger"].config.artifact_dir) / "sha256").rglob("*"))
    status, _, err = _run(capsys, "patch", "approve", "p-1", "--totp", "12")
    assert status == 2 and "HTTP 403" in err  # operators do not approve


def test_missing_settings_are_named(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PATCHLEDGER_API_URL", raising=False)
    monkeypatch.delenv("PATCHLEDGER_API_TOKEN", raising=False)
    status, _, err = _run(capsys, "vuln", "list")
    assert status == 2 and "PATCHLEDGER_API_URL" in err
    status, _, err = _run(capsys, "vuln", "list", "--api", "http://127.0.0.1:1")
    assert status == 2 and "PATCHLEDGER_API_TOKEN" in err
