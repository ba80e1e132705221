"""AppConfig from a mapping, the environment and a file (errors name the key), and
``patchledger app init`` (the one-time bootstrap admin)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyotp
import pytest

from patchledger.app.cli import main
from patchledger.app.errors import UserError
from patchledger.app.web import auth
from patchledger.app.web.config import (
    config_from_env,
    config_from_file,
    config_from_mapping,
)
from patchledger.app.web.db import session_factory
from patchledger.app.web.factory import create_app, state
from tests.unit.webapp.conftest import SECURITY


def test_mapping_defaults_under_home(tmp_path: Path) -> None:
    config = config_from_mapping({"org": "itops", "home": str(tmp_path)})
    assert (config.organization, config.msp_id) == ("itops", "ITOpsMSP")
    assert config.database_url == f"sqlite:///{tmp_path / 'app.db'}"
    assert config.peer is None and config.ca is None and config.registrar is None
    # secrets are made once, kept private, and reused
    key = tmp_path / "session.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert config_from_mapping({"org": "itops", "home": str(tmp_path)}).secret_key == \
        config.secret_key == key.read_text()
    assert config.secret_key not in repr(config)


def test_environment_and_file(tmp_path: Path) -> None:
    env = {"PATCHLEDGER_APP_HOME": str(tmp_path), "PATCHLEDGER_APP_PEER": "peer0:7051",
           "PATCHLEDGER_APP_PEER_TLS_CA": str(tmp_path / "ca.pem"),
           "PATCHLEDGER_APP_PORT": "25811", "PATCHLEDGER_APP_FEEDS": "a.json,b/",
           "PATCHLEDGER_APP_TRUST": "SecOpsMSP=/x/msp,ITOpsMSP=/y/msp",
           "OTHER": "ignored"}
    config = config_from_env(env, "compliance")
    assert config.peer is not None and config.peer.endpoint == "peer0:7051"
    assert not config.peer.insecure and config.listen_port == 25811
    assert config.feed_sources == ("a.json", "b/")
    assert dict(config.trust_msp_dirs) == {"SecOpsMSP": Path("/x/msp"),
                                          "ITOpsMSP": Path("/y/msp")}
    file = tmp_path / "app.json"
    file.write_text(json.dumps({"org": "secops", "home": str(tmp_path), "port": 25812,
                                "feeds": ["kev.json"]}))
    from_file = config_from_file(file)
    assert (from_file.organization, from_file.listen_port, from_file.feed_sources) == (
        "secops", 25812, ("kev.json",))


@pytest.mark.parametrize(("values", "named"), [
    ({"org": "finance"}, "unknown organization 'finance'"),
    ({"org": "secops", "port": "eighty"}, "'port' must be a number"),
    ({"org": "secops", "port": "70000"}, "'port' 70000 is out of range"),
    ({"org": "secops", "trust": "SecOpsMSP"}, "'trust' entry 'SecOpsMSP'"),
])
def test_bad_values_name_the_key(tmp_path: Path, values: dict[str, str], named: str) -> None:
    with pytest.raises(UserError, match=re.escape(named)):
        config_from_mapping({"home": str(tmp_path), **values})


def test_bad_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "app.json"
    file.write_text("[1, 2]")
    with pytest.raises(UserError, match="must be a JSON object"):
        config_from_file(file)
    with pytest.raises(UserError, match="cannot read"):
        config_from_file(tmp_path / "missing.json")


def test_app_init_creates_the_bootstrap_admin_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATCHLEDGER_APP_HOME", str(tmp_path))
    assert main(["app", "init", "--org", "secops", "--no-network", "--admin", "root"]) == 0
    out = capsys.readouterr().out
    password = re.search(r"password \(shown once\): (\S+)", out)
    secret = re.search(r"TOTP secret \(shown once\): (\S+)", out)
    assert password and secret, out
    config = config_from_mapping({"org": "secops", "home": str(tmp_path)})
    app = create_app(config)
    with app.app_context():
        user = auth.login(session_factory(state().engine)(), SECURITY, "root",
                          password.group(1), pyotp.TOTP(secret.group(1)).now())
        assert user.role == "admin"
    assert main(["app", "init", "--org", "secops", "--no-network"]) == 2
    assert "created only once" in capsys.readouterr().err
