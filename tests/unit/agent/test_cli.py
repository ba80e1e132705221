"""The console script against the local test app: enroll, once, status, the lock's exit
status, and ``run`` as a real foreground process stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from patchledger.agent.cli import main
from patchledger.agent.enroll import fingerprint
from patchledger.agent.lock import LockFile
from tests.unit.agent.app_server import AppServer, running

SBOM = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}


@pytest.fixture
def enrolled(tmp_path: Path, monkeypatch) -> Iterator[tuple[AppServer, Path]]:
    with running(tmp_path) as (srv, ca):
        srv.state.tokens["tok"] = time.time() + 600
        (tmp_path / "sbom.json").write_text(json.dumps(SBOM))
        config = tmp_path / "agent.toml"
        config.write_text(
            f'state_dir = "{tmp_path / "state"}"\ntarget = "{tmp_path / "srv"}"\n'
            f'inventory_source = "sbom"\ninventory_sbom = "{tmp_path / "sbom.json"}"\n'
            'poll_interval = 10\nmin_poll_interval = 0.1\n')
        monkeypatch.setenv("PATCHLEDGER_AGENT_CONFIG", str(config))
        pki = srv.state.pki
        fps = [fingerprint(x509.load_pem_x509_certificate(pki.org_ca.cert_pem))]
        fps += [f"{m}={fingerprint(x509.load_pem_x509_certificate(p))}"
                for m, p in pki.other_roots.items()]
        argv = ["enroll", "--server", srv.url, "--token", "tok", "--host-id", "cli-1",
                "--ca-file", str(ca)]
        for fp in fps:
            argv += ["--fingerprint", fp]
        assert main(argv) == 0
        srv.fingerprint_args = [a for fp in fps for a in ("--fingerprint", fp)]  # type: ignore[attr-defined]
        yield srv, config


def test_enroll_once_status(enrolled, capsys, tmp_path: Path) -> None:
    srv, _ = enrolled
    assert (tmp_path / "state" / "enrollment.json").exists()
    assert main(["once"]) == 0
    assert srv.state.inventories[0]["host"] == "cli-1"
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["host_id"], status["last_error"], status["failures_in_a_row"]) == (
        "cli-1", "", 0)
    assert main(["status"]) == 0
    assert "host_id: cli-1" in capsys.readouterr().out


def test_refused_enrollments_exit_1_and_say_why(enrolled, tmp_path: Path, caplog) -> None:
    srv, _ = enrolled
    ca = tmp_path / "server-tls" / "tls-ca.pem"
    argv = ["--state-dir", str(tmp_path / "other"), "enroll", "--server", srv.url, "--token",
            "tok", "--host-id", "cli-2", "--ca-file", str(ca)]
    assert main(argv) == 1  # no fingerprints: roots not confirmed
    assert "confirmed neither by a fingerprint" in caplog.text
    assert main([*argv, *srv.fingerprint_args]) == 1  # the token was used by cli-1
    assert "enrollment of host cli-2 with" in caplog.text
    assert "token already used" in caplog.text


def test_the_lock_exit_status(enrolled, tmp_path: Path) -> None:
    with LockFile(tmp_path / "state" / "agent.lock"):
        assert main(["once"]) == 3


def test_not_enrolled_is_a_usage_error(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("PATCHLEDGER_AGENT_STATE_DIR", str(tmp_path / "nothing"))
    assert main(["status"]) == 2
    assert "not enrolled" in caplog.text


def test_run_in_the_foreground_stops_on_sigterm(enrolled, tmp_path: Path) -> None:
    srv, config = enrolled
    script = Path(sys.executable).with_name("patchledger-agent")
    env = {**os.environ, "PATCHLEDGER_AGENT_CONFIG": str(config)}
    proc = subprocess.Popen([str(script), "run"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not srv.state.inventories and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.state.inventories, "the daemon never reported its inventory"
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)
    finally:
        proc.kill()
    _, err = proc.communicate()
    assert code == 0, err
    assert "signal SIGTERM: stopping after the current step" in err
    assert "host cli-1: agent running against" in err


BLOCKER = """
import importlib.abc, sys
BLOCKED = ("flask", "apiflask", "sqlalchemy", "grpc", "waitress", "patchledger.app")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"the agent must not need {name}")
sys.meta_path.insert(0, Block())
import patchledger.agent.cli, patchledger.agent.daemon, patchledger.agent.enroll
import patchledger.agent.backends.dpkg, patchledger.agent.inventory, patchledger.agent.download
sys.exit(patchledger.agent.cli.main(["--help"]))
"""


def test_the_agent_runs_without_the_org_app_flask_or_grpc() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "{enroll,run,once,status}" in done.stdout
