"""The daemon's configuration: one typed, frozen object, read from a TOML file and the
environment only by :func:`load_settings`, which the console script calls at the edge.

It extends :class:`~agent.config.AgentConfig` (the settings of one assignment, built from
these by :meth:`DaemonSettings.agent_config`) with what the daemon needs: the app's URL, the
backend, the inventory source, the schedule and the download cap. Kept in its own module so
that ``config.py`` stays the runner's.

File (default ``/etc/patchledger/agent.toml``, or ``$PATCHLEDGER_AGENT_CONFIG``)::

    server = "https://itops-app.example:8443"
    state_dir = "/var/lib/patchledger-agent"
    backend = "dpkg"                 # or "filetree"
    target = "/"                     # the dpkg root, or the file-tree directory
    dpkg_scripts = "chroot"          # or "chrootless" (see agent.backends.dpkg)
    inventory_source = "auto"        # auto | dpkg | rpm | sbom
    maintenance_window = "Sat 02:00-04:00 UTC"
    health_command = ["/usr/local/bin/check-app"]
    poll_interval = 300

Every key may be overridden by ``PATCHLEDGER_AGENT_<KEY>`` (upper case; lists as JSON).
Unknown keys, wrong types and bad values are a :class:`~agent.errors.ConfigError` naming
the key and where it came from.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from patchledger.agent.attestation import DEFAULT_MIN_ENDORSERS
from patchledger.agent.config import AgentConfig
from patchledger.agent.download import DEFAULT_MAX_BYTES
from patchledger.agent.errors import ConfigError
from patchledger.agent.schedule import Schedule
from patchledger.agent.verify import DEFAULT_MIN_QUORUM
from patchledger.agent.window import parse_window

__all__ = ["DEFAULT_CONFIG", "DaemonSettings", "load_settings"]

DEFAULT_CONFIG = Path("/etc/patchledger/agent.toml")
ENV_PREFIX = "PATCHLEDGER_AGENT_"
_BACKENDS = ("filetree", "dpkg")
_SOURCES = ("auto", "dpkg", "rpm", "sbom")


@dataclass(frozen=True)
class DaemonSettings:
    """Settings of the agent daemon (module docstring for the file)."""

    server: str = ""
    state_dir: Path = Path("/var/lib/patchledger-agent")
    backend: str = "filetree"
    target: Path = Path("/srv/patchledger")
    dpkg_scripts: str = "chroot"
    inventory_source: str = "auto"
    inventory_root: Path = Path("/")
    inventory_sbom: Path | None = None
    maintenance_window: str = "always"
    min_quorum: int = DEFAULT_MIN_QUORUM
    channel: str = "patchledger"
    chaincode: str = "patchledger"
    min_endorsers: int = DEFAULT_MIN_ENDORSERS
    dry_run: bool = False
    health_command: tuple[str, ...] = ()
    health_timeout: float = 60.0
    poll_interval: float = 300.0
    poll_jitter: float = 0.2
    min_poll_interval: float = 10.0
    max_poll_interval: float = 86_400.0
    backoff_base: float = 5.0
    backoff_cap: float = 900.0
    max_artifact_bytes: int = DEFAULT_MAX_BYTES
    request_timeout: float = 30.0
    schedule: Schedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate and build the schedule.

        Raises:
            ConfigError: a bad backend, script mode, inventory source, window, schedule or
                cap.
        """
        if self.backend not in _BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(_BACKENDS)}, not"
                              f" {self.backend!r}")
        if self.dpkg_scripts not in ("chroot", "chrootless"):
            raise ConfigError(f"dpkg_scripts must be chroot or chrootless, not"
                              f" {self.dpkg_scripts!r}")
        if self.inventory_source not in _SOURCES:
            raise ConfigError(f"inventory_source must be one of {', '.join(_SOURCES)}, not"
                              f" {self.inventory_source!r}")
        if self.inventory_source == "sbom" and self.inventory_sbom is None:
            raise ConfigError("inventory_source 'sbom' needs inventory_sbom (the file)")
        if self.max_artifact_bytes < 1 or self.request_timeout <= 0:
            raise ConfigError("max_artifact_bytes and request_timeout must be positive")
        parse_window(self.maintenance_window)
        object.__setattr__(self, "schedule", Schedule(
            interval=self.poll_interval, jitter=self.poll_jitter,
            min_interval=self.min_poll_interval, max_interval=self.max_poll_interval,
            backoff_base=self.backoff_base, backoff_cap=self.backoff_cap,
        ))

    def agent_config(self, host_id: str) -> AgentConfig:
        """The runner's configuration for this host.

        Raises:
            ConfigError: as :class:`AgentConfig`.
        """
        return AgentConfig(
            host_id=host_id, target=self.target, state_dir=self.state_dir,
            maintenance_window=self.maintenance_window, min_quorum=self.min_quorum,
            dry_run=self.dry_run, health_command=self.health_command,
            health_timeout=self.health_timeout, channel=self.channel, chaincode=self.chaincode,
            min_endorsers=self.min_endorsers,
        )


def _convert(name: str, kind: str, value: Any, origin: str) -> Any:
    """``value`` as the field's type; strings from the environment are parsed."""
    from_env = isinstance(value, str) and origin.startswith("$")
    try:
        if kind == "bool":
            if from_env:
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return lowered in ("1", "true", "yes")
            if not isinstance(value, bool):
                raise TypeError(type(value).__name__)
            return value
        if kind in ("int", "float"):
            if isinstance(value, bool):
                raise TypeError("bool")
            return (int if kind == "int" else float)(value)
        if kind == "tuple[str, ...]":
            items = json.loads(value) if from_env else value
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise TypeError("not a list of strings")
            return tuple(items)
        if not isinstance(value, str):
            raise TypeError(type(value).__name__)
        if kind in ("Path", "Path | None"):
            return Path(value)
        return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} from {origin}: expected {kind}, got {value!r} ({exc})")\
            from exc


def load_settings(path: Path | None, env: Mapping[str, str], *,
                  overrides: Mapping[str, Any] | None = None) -> DaemonSettings:
    """Read the settings: the file (``path``, else ``$PATCHLEDGER_AGENT_CONFIG``, else the
    default when it exists), then the environment, then ``overrides`` (command-line options).

    Raises:
        ConfigError: an unreadable file, an unknown key, a wrong type or a bad value, naming
            the key and its origin.
    """
    types = {f.name: str(f.type) for f in fields(DaemonSettings) if f.init}
    values: dict[str, Any] = {}
    chosen = path or (Path(env[f"{ENV_PREFIX}CONFIG"]) if env.get(f"{ENV_PREFIX}CONFIG")
                      else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None))
    if chosen is not None:
        try:
            document = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"agent configuration {chosen} is unreadable: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"agent configuration {chosen} is not TOML: {exc}") from exc
        for key, value in document.items():
            if key not in types:
                raise ConfigError(f"unknown key {key!r} in {chosen}")
            values[key] = _convert(key, types[key], value, str(chosen))
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        key = name.removeprefix(ENV_PREFIX).lower()
        if key not in types:
            raise ConfigError(f"unknown setting ${name}")
        values[key] = _convert(key, types[key], value, f"${name}")
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _convert(key, types[key], value, "the command line")
    return DaemonSettings(**values)
