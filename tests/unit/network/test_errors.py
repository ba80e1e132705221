"""The network package's errors share one root, and ``patchledger network`` maps it to one
line on standard error and exit status 2 (no network is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchledger.app.cli import main
from patchledger.network.chaincode import ChaincodeError
from patchledger.network.channel import ChannelError
from patchledger.network.config import config_from_env
from patchledger.network.errors import NetworkError
from patchledger.network.identities import EnrollmentError
from patchledger.network.manager import Manager
from patchledger.network.peercli import PeerCommandError
from patchledger.network.process import ProcessError
from patchledger.network.smoke import SmokeError

STEP_ERRORS = [ChaincodeError, ChannelError, EnrollmentError, PeerCommandError, ProcessError,
               SmokeError]


@pytest.mark.parametrize("error", STEP_ERRORS, ids=[e.__name__ for e in STEP_ERRORS])
def test_every_step_error_derives_from_the_root(error: type[Exception]) -> None:
    assert issubclass(error, NetworkError)
    assert not issubclass(error, RuntimeError)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty state directory, and a Fabric home that is not needed by these commands."""
    monkeypatch.setenv("PATCHLEDGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PATCHLEDGER_FABRIC_HOME", str(tmp_path / "fabric"))
    monkeypatch.delenv("PATCHLEDGER_PORT_BASE", raising=False)
    return tmp_path / "state"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["smoke"], {}, "no network: run `patchledger network up` first"),
        (["env", "nosuchorg"], {}, "no organization 'nosuchorg' in the network"),
        (["env", "orderer"], {}, "runs no peer; choose a peer organization"),
        (["env", "secops"], {}, "no admin identity for secops"),
        (["logs", "peer0.nowhere"], {}, "no log for 'peer0.nowhere'"),
        (["status"], {"PATCHLEDGER_PORT_BASE": "many"}, "PATCHLEDGER_PORT_BASE='many' is not"),
        (["up"], {}, "Fabric binaries missing in"),
        (["deploy", "--version", "2"], {}, "the network is not running"),
    ],
    ids=["smoke", "env-unknown", "env-orderer", "env-no-admin", "logs", "config", "up",
         "deploy"],
)
def test_a_network_error_is_one_line_and_exit_status_2(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    argv: list[str], env: dict[str, str], message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["network", *argv]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("patchledger network: error: ")
    assert message in line
    assert not captured.out


def test_a_corrupt_manifest_is_a_network_error_naming_the_directory(state: Path) -> None:
    state.mkdir()
    (state / "network.json").write_text("{not json")
    with pytest.raises(NetworkError, match=f"state directory {state} has a corrupt manifest"):
        Manager(config_from_env()).read_manifest()
