"""The agent's configuration: one typed, frozen object passed in (the environment and files
are read only by a future entry point, never here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from patchledger.agent.attestation import DEFAULT_MIN_ENDORSERS
from patchledger.agent.errors import ConfigError
from patchledger.agent.verify import DEFAULT_MIN_QUORUM
from patchledger.agent.window import Window, parse_window

__all__ = ["AgentConfig"]


@dataclass(frozen=True)
class AgentConfig:
    """Settings of one host's agent.

    Attributes:
        host_id: the host's id on the ledger (its certificate's ``host_id`` attribute).
        target: the directory the file-tree backend manages.
        state_dir: where the agent keeps its own state (the report sequence counter).
        maintenance_window: when changes are allowed (format in :mod:`agent.window`).
        min_quorum: the pinned floor on distinct approving organizations (see
            :mod:`agent.verify`); never below 1.
        dry_run: verify and plan, change nothing, sign nothing.
        health_command: argv of the health check command run in the target (empty: the
            caller passes a health check callable, or none).
        health_timeout: seconds before the health check counts as failed.
        channel: the ledger's channel (attestations must be for it).
        chaincode: the ledger's chaincode name (attestations must be its answers).
        min_endorsers: the pinned floor on distinct organizations whose peers must endorse an
            attestation (see :mod:`agent.attestation`); never below 1.
    """

    host_id: str
    target: Path
    state_dir: Path
    maintenance_window: str = "always"
    min_quorum: int = DEFAULT_MIN_QUORUM
    dry_run: bool = False
    health_command: tuple[str, ...] = ()
    health_timeout: float = 60.0
    channel: str = "patchledger"
    chaincode: str = "patchledger"
    min_endorsers: int = DEFAULT_MIN_ENDORSERS
    window: Window = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate; parse the window once.

        Raises:
            ConfigError: empty host id, min_quorum or min_endorsers below 1, malformed window.
        """
        if not self.host_id:
            raise ConfigError("host_id must not be empty")
        if self.min_quorum < 1:
            raise ConfigError(f"min_quorum must be at least 1, not {self.min_quorum}")
        if self.min_endorsers < 1:
            raise ConfigError(f"min_endorsers must be at least 1, not {self.min_endorsers}")
        object.__setattr__(self, "window", parse_window(self.maintenance_window))

    @property
    def sequence_file(self) -> Path:
        """The report sequence counter."""
        return self.state_dir / "report-sequence.json"

    @property
    def installed_file(self) -> Path:
        """The anti-rollback state (see :mod:`agent.rollback_guard`)."""
        return self.state_dir / "installed.json"
