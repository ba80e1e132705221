"""The daemon's settings: TOML file, environment overrides, command-line overrides, and clear
errors naming the key and where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchledger.agent.errors import ConfigError
from patchledger.agent.settings import load_settings

TOML = """
server = "https://app.example:8443"
state_dir = "/var/lib/pl"
backend = "dpkg"
target = "/"
health_command = ["/usr/bin/true", "--quiet"]
poll_interval = 600
dry_run = false
"""


def test_file_then_environment_then_command_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(TOML)
    env = {"PATCHLEDGER_AGENT_POLL_INTERVAL": "120", "PATCHLEDGER_AGENT_DRY_RUN": "yes",
           "PATCHLEDGER_AGENT_HEALTH_COMMAND": '["/bin/check"]', "OTHER": "ignored"}
    settings = load_settings(path, env, overrides={"state_dir": str(tmp_path), "target": None})
    assert settings.server == "https://app.example:8443"
    assert (settings.backend, settings.target, settings.state_dir) == ("dpkg", Path("/"),
                                                                      tmp_path)
    assert settings.poll_interval == 120 and settings.schedule.interval == 120
    assert settings.dry_run is True
    assert settings.health_command == ("/bin/check",)
    config = settings.agent_config("h1")
    assert (config.host_id, config.dry_run, config.target) == ("h1", True, Path("/"))


def test_the_config_file_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('backend = "filetree"\n')
    assert load_settings(None, {"PATCHLEDGER_AGENT_CONFIG": str(path)}).backend == "filetree"


@pytest.mark.parametrize(("text", "env", "problem"), [
    ("colour = 1\n", {}, "unknown key 'colour'"),
    ("poll_interval = 'often'\n", {}, "poll_interval from .*expected float"),
    ("dry_run = 1\n", {}, "dry_run from .*expected bool"),
    ("health_command = 'true'\n", {}, "health_command .*expected tuple"),
    ("backend = 'apt'\n", {}, "backend must be one of filetree, dpkg"),
    ("poll_interval = 1\n", {}, "poll interval 1.0 must lie in"),
    ("maintenance_window = 'whenever'\n", {}, "window"),
    ("inventory_source = 'sbom'\n", {}, "needs inventory_sbom"),
    ("[x\n", {}, "not TOML"),
    ("", {"PATCHLEDGER_AGENT_DRY_RUN": "perhaps"}, r"\$PATCHLEDGER_AGENT_DRY_RUN"),
    ("", {"PATCHLEDGER_AGENT_NOPE": "1"}, "unknown setting"),
])
def test_bad_settings_name_the_key(tmp_path: Path, text: str, env: dict[str, str],
                                   problem: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        load_settings(path, env)


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unreadable"):
        load_settings(tmp_path / "missing.toml", {})
