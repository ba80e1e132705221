"""Settings from the environment and the process entry's exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patchledger.chaincode.main import main
from patchledger.chaincode.runtime import ConfigError, ServerConfig
from patchledger.chaincode.runtime.server import load_chaincode
from tests.support.chaincode_runtime import make_certificate

SMOKE = "patchledger.chaincode.smoke:contract"
BASE = {
    "CHAINCODE_ID": "pl_1.0:abc",
    "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:9999",
    "CHAINCODE_CONTRACT": SMOKE,
}


def test_minimal_settings() -> None:
    cfg = ServerConfig.from_env(BASE)
    assert cfg.chaincode_id == "pl_1.0:abc"
    assert cfg.address == "127.0.0.1:9999"
    assert cfg.tls is None
    assert cfg.log_level == "WARNING"
    assert cfg.contract == SMOKE


def _tls_files(tmp_path: Path) -> dict[str, str]:
    ca = make_certificate("ca", is_ca=True)
    srv = make_certificate("cc", issuer=ca, sans=["127.0.0.1"])
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "srv.pem").write_bytes(srv.cert_pem)
    (tmp_path / "srv.key").write_bytes(srv.key_pem)
    return {
        "CHAINCODE_TLS_CERT_FILE": str(tmp_path / "srv.pem"),
        "CHAINCODE_TLS_KEY_FILE": str(tmp_path / "srv.key"),
        "CHAINCODE_TLS_CLIENT_CA_FILE": str(tmp_path / "ca.pem"),
    }


def test_tls_settings(tmp_path: Path) -> None:
    files = _tls_files(tmp_path)
    cfg = ServerConfig.from_env({**BASE, **files, "CHAINCODE_LOG_LEVEL": "debug"})
    assert cfg.tls is not None
    assert cfg.tls.client_ca_pem is not None
    assert cfg.log_level == "DEBUG"
    del files["CHAINCODE_TLS_CLIENT_CA_FILE"]
    cfg = ServerConfig.from_env({**BASE, **files})
    assert cfg.tls is not None
    assert cfg.tls.client_ca_pem is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CHAINCODE_ID": ""}, "CHAINCODE_ID is required"),
        ({"CHAINCODE_SERVER_ADDRESS": ""}, "CHAINCODE_SERVER_ADDRESS is required"),
        ({"CHAINCODE_SERVER_ADDRESS": "9999"}, "must be host:port"),
        ({"CHAINCODE_SERVER_ADDRESS": "h:70000"}, "must be host:port"),
        ({"CHAINCODE_LOG_LEVEL": "loud"}, "CHAINCODE_LOG_LEVEL"),
        ({"CHAINCODE_CONTRACT": "nocolon"}, "CHAINCODE_CONTRACT"),
        ({"CHAINCODE_CONTRACT": ""}, "CHAINCODE_CONTRACT is required"),
        ({"CHAINCODE_CONTRACT": "  "}, "CHAINCODE_CONTRACT is required"),
        ({"CHAINCODE_TLS_CERT_FILE": "/x"}, "set both"),
        ({"CHAINCODE_TLS_CLIENT_CA_FILE": "/x"}, "needs CHAINCODE_TLS_CERT_FILE"),
        (
            {"CHAINCODE_TLS_CERT_FILE": "/nonexistent", "CHAINCODE_TLS_KEY_FILE": "/x"},
            "cannot read /nonexistent",
        ),
    ],
)
def test_invalid_settings(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerConfig.from_env({**BASE, **overrides})


def test_non_pem_and_bad_key(tmp_path: Path) -> None:
    files = _tls_files(tmp_path)
    (tmp_path / "junk").write_text("hello")
    with pytest.raises(ConfigError, match="not a PEM file"):
        ServerConfig.from_env({**BASE, **files, "CHAINCODE_TLS_KEY_FILE": str(tmp_path / "junk")})
    with pytest.raises(ConfigError, match="private key"):
        cert_as_key = files["CHAINCODE_TLS_CERT_FILE"]
        ServerConfig.from_env({**BASE, **files, "CHAINCODE_TLS_KEY_FILE": cert_as_key})


def test_load_chaincode() -> None:
    from patchledger.chaincode import smoke

    assert load_chaincode("patchledger.chaincode.smoke:contract") is smoke.contract
    with pytest.raises(ConfigError, match="cannot be loaded"):
        load_chaincode("patchledger.chaincode.nonexistent:contract")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        load_chaincode("patchledger.chaincode.smoke:nothing")
    with pytest.raises(ConfigError, match="no invoke"):
        load_chaincode("patchledger.chaincode.smoke:VERSION")


def test_main_exit_status_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main({"CHAINCODE_SERVER_ADDRESS": "127.0.0.1:1"}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("chaincode: error: CHAINCODE_ID is required")


def test_the_server_refuses_to_start_without_a_contract() -> None:
    """No fallback to the smoke contract (whose Put writes any key): a missing
    CHAINCODE_CONTRACT is a configuration error, one line and exit 2, like CHAINCODE_ID."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHAINCODE_")},
        "CHAINCODE_ID": "pl_1.0:abc",
        "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:0",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "patchledger.chaincode"], env=env, cwd=Path(__file__).parents[3],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("chaincode: error: CHAINCODE_CONTRACT is required")
    assert proc.stdout == ""


def test_process_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHAINCODE_")},
        **BASE, "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:0", "CHAINCODE_LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "patchledger.chaincode"], env=env, cwd=Path(__file__).parents[3],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving pl_1.0:abc on 127.0.0.1:0 (TLS off)" in line
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
