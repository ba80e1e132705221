"""The demo's typed settings and the layout of its state directory.

Only :func:`settings_from_env` reads the environment (called by the CLI, at the process edge).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from patchledger.app.errors import UserError
from patchledger.app.web.config import ORGANIZATIONS
from patchledger.network.config import REPO_ROOT, StateLayout

#: The organizations whose apps the demo runs, in start order.
ORGS = tuple(ORGANIZATIONS)
#: The organization whose hosts the simulated fleet is (and whose dispatcher runs).
FLEET_ORG = "itops"


@dataclass(frozen=True)
class DemoSettings:
    """What ``patchledger demo`` runs.

    Attributes:
        state_dir: the demo's own state (apps' homes, credentials, dispatcher, fleet, pid
            files, logs); the network's state is the network's own (``network_env``).
        network_env: the environment of the network (``PATCHLEDGER_STATE_DIR``,
            ``PATCHLEDGER_PORT_BASE``, ...), passed on to every process the demo starts.
        app_port_base: the SecOps app listens here, ITOps on +1, Compliance on +2.
        host: the apps' listen address.
        feeds_dir: the shared threat feeds (the KEV catalog and Debian's DSA list are used).
        hosts: simulated ITOps hosts.
        timeout: seconds the scenario waits for any one thing (a rollout, a read model).
    """

    state_dir: Path
    network_env: Mapping[str, str]
    app_port_base: int = 17400
    host: str = "127.0.0.1"
    feeds_dir: Path = REPO_ROOT.parent / "shared" / "feeds"
    hosts: int = 12
    timeout: float = 240.0

    def __post_init__(self) -> None:
        if not 1024 <= self.app_port_base <= 65535 - len(ORGS):
            raise UserError(f"app port base {self.app_port_base} must be 1024-{65535 - len(ORGS)}")
        if not 3 <= self.hosts <= 1000:
            raise UserError(f"the demo fleet needs 3 to 1000 hosts, not {self.hosts}")

    @property
    def layout(self) -> StateLayout:
        """Pid files (``run/``) and logs (``logs/``) of the demo's processes."""
        return StateLayout(self.state_dir)

    def app_port(self, org: str) -> int:
        """The listen port of ``org``'s app."""
        return self.app_port_base + ORGS.index(org)

    def app_url(self, org: str) -> str:
        """The base URL of ``org``'s app."""
        return f"http://{self.host}:{self.app_port(org)}"

    def app_home(self, org: str) -> Path:
        """``org``'s app home (database, wallet, artifacts, secrets)."""
        return self.state_dir / "apps" / org

    @property
    def credentials_file(self) -> Path:
        """The demo users' credentials (0600)."""
        return self.state_dir / "credentials.json"

    @property
    def dispatch_dir(self) -> Path:
        """The ITOps dispatcher's state (checkpoint, plans, inbox, artifacts)."""
        return self.state_dir / "dispatch" / FLEET_ORG

    @property
    def fleet_dir(self) -> Path:
        """The simulated hosts' directories."""
        return self.state_dir / "fleet"

    @property
    def operator_msp(self) -> Path:
        """The MSP directory of ITOps' dispatcher identity (``role=operator``)."""
        return self.state_dir / "identities" / "itops-dispatcher" / "msp"

    @property
    def kev_catalog(self) -> Path:
        """The CISA KEV catalog among the shared feeds."""
        return self.feeds_dir / "kev" / "known_exploited_vulnerabilities.json"

    @property
    def feed_sources(self) -> tuple[Path, ...]:
        """What SecOps' app imports: the KEV catalog and Debian's DSA list."""
        return (self.kev_catalog, self.feeds_dir / "debian" / "DSA-list_2023-03-29.txt")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name}={value!r} is not a number") from None


def settings_from_env(env: Mapping[str, str], *, hosts: int | None = None) -> DemoSettings:
    """The settings from ``PATCHLEDGER_DEMO_DIR`` (default ``<repo>/.state/demo``),
    ``PATCHLEDGER_DEMO_APP_PORT_BASE`` (17400), ``PATCHLEDGER_DEMO_HOSTS`` (12),
    ``PATCHLEDGER_DEMO_TIMEOUT`` (240 s), ``PATCHLEDGER_FEEDS_DIR`` (``../shared/feeds``)
    and the network's own variables (``PATCHLEDGER_*``, passed on).

    Raises:
        UserError: a malformed value, naming the variable.
    """
    state = Path(env.get("PATCHLEDGER_DEMO_DIR") or REPO_ROOT / ".state" / "demo").resolve()
    feeds = Path(env.get("PATCHLEDGER_FEEDS_DIR") or REPO_ROOT.parent / "shared" / "feeds")
    network_env = {k: v for k, v in env.items() if k.startswith("PATCHLEDGER_")
                   and not k.startswith(("PATCHLEDGER_DEMO_", "PATCHLEDGER_APP_",
                                         "PATCHLEDGER_API_"))}
    return DemoSettings(
        state_dir=state, network_env=network_env,
        app_port_base=_int(env, "PATCHLEDGER_DEMO_APP_PORT_BASE", 17400),
        feeds_dir=feeds.resolve(),
        hosts=hosts if hosts is not None else _int(env, "PATCHLEDGER_DEMO_HOSTS", 12),
        timeout=float(_int(env, "PATCHLEDGER_DEMO_TIMEOUT", 240)))
