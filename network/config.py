"""Typed settings of a local network and the layout of its state directory.

The environment is read only by :func:`config_from_env`, called at process edges (the CLI, the
test session). Everything else takes a :class:`NetworkConfig`.

State directory layout (``state_dir``)::

    network.json            manifest, written last when the network was fully created
    lock                    flock held by a running `up`/`down`/`reset`
    secrets.json            bootstrap passwords of the CAs (mode 0600)
    run/<node>.pid          pid files of the processes `up` started
    logs/<node>.log         their output
    cas/<org>/              Fabric CA server homes
    orgs/<org>/msp          the organization MSP used in the channel configuration
    orgs/<org>/users/admin  the organization admin's MSP and TLS client material
    nodes/<node>/{msp,tls}  node identities
    nodes/<node>/data       ledgers, WAL, snapshots
    nodes/<node>/ccaas      per-peer chaincode connection settings read by the builder
    channel/                configtx.yaml and the genesis block
    channel/org-roots/      <MSPID>.pem roots of the peer organizations, for the chaincode
    chaincode/              chaincode packages
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from patchledger.network.topology import Topology, build_topology

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILDER_DIR = Path(__file__).resolve().parent / "builders" / "ccaas"
DEFAULT_LEDGER_POLICY = Path(__file__).resolve().parent / "consortium-policy.json"
_DURATION = re.compile(r"^[1-9][0-9]*(ms|s|m)$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class ChaincodeSettings:
    """The chaincode the network serves.

    Attributes:
        name: chaincode name on the channel.
        version: chaincode version label.
        contract: ``module:attribute`` served by ``python -m patchledger.chaincode``.
        slot: 0 for the network's main chaincode; 1-6 for additional chaincodes (each slot
            has its own chaincode-server port per organization, see network.topology).
    """

    name: str = "patchledger"
    version: str = "1.0"
    contract: str = "patchledger.chaincode.patchledger.contract:from_environment"
    slot: int = 0

    @property
    def label(self) -> str:
        """Package label, ``name_version``."""
        return f"{self.name}_{self.version}"


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to create and run one local network.

    Attributes:
        state_dir: where crypto material, ledgers, logs and pid files live.
        fabric_home: directory with ``bin/`` (Fabric binaries) and ``config/`` (core.yaml,
            orderer.yaml).
        topology: organizations, nodes and ports.
        batch_timeout: the orderers' BatchTimeout; short for interactive use.
        chaincode: the chaincode deployed by ``up``.
        python: interpreter that runs the chaincode servers.
        log_spec: FABRIC_LOGGING_SPEC of orderers and peers.
        ledger_policy: JSON file with the consortium's first approval policy, submitted with
            ``InitLedger`` and every organization admin's signed consent when the network is
            created (:mod:`~network.bootstrap`); None to leave the ledger empty.
        launch_prefix: MSP id -> the argv every process of that organization (CA, peer,
            chaincode server) is started under, e.g. ``("ip", "netns", "exec", "lab-0")`` to
            run it in a network namespace of its own (the prefix must exec the command, so
            the recorded pid is the process's own); its nodes then listen on the
            organization's own host (``build_topology(org_hosts=...)``). Empty by default:
            every process is started directly.
    """

    state_dir: Path
    fabric_home: Path
    topology: Topology
    batch_timeout: str = "250ms"
    chaincode: ChaincodeSettings = ChaincodeSettings()
    python: Path = Path(sys.executable)
    log_spec: str = "info:gossip=warning:grpc=warning:msp=warning"
    ledger_policy: Path | None = None
    launch_prefix: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def bin_dir(self) -> Path:
        """Directory holding peer, orderer, configtxgen, osnadmin, fabric-ca-*."""
        return self.fabric_home / "bin"

    @property
    def fabric_cfg_dir(self) -> Path:
        """Directory holding Fabric's stock core.yaml and orderer.yaml."""
        return self.fabric_home / "config"

    def binary(self, name: str) -> Path:
        """Path of a Fabric binary."""
        return self.bin_dir / name


@dataclass(frozen=True)
class StateLayout:
    """Paths inside a network's state directory (see the module docstring)."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "network.json"

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.json"

    @property
    def channel_dir(self) -> Path:
        return self.root / "channel"

    @property
    def chaincode_dir(self) -> Path:
        return self.root / "chaincode"

    def pid_file(self, node: str) -> Path:
        return self.root / "run" / f"{node}.pid"

    def log_file(self, node: str) -> Path:
        return self.root / "logs" / f"{node}.log"

    def ca_home(self, org: str) -> Path:
        return self.root / "cas" / org

    def ca_cert(self, org: str) -> Path:
        """The organization's root certificate (its CA's ca-cert.pem)."""
        return self.ca_home(org) / "ca-cert.pem"

    def org_msp(self, org: str) -> Path:
        return self.root / "orgs" / org / "msp"

    def user_dir(self, org: str, user: str) -> Path:
        return self.root / "orgs" / org / "users" / user

    def node_dir(self, node: str) -> Path:
        return self.root / "nodes" / node

    def node_msp(self, node: str) -> Path:
        return self.node_dir(node) / "msp"

    def node_tls(self, node: str) -> Path:
        """Directory with ``server.crt``, ``server.key`` and ``ca.crt``."""
        return self.node_dir(node) / "tls"

    def node_data(self, node: str) -> Path:
        return self.node_dir(node) / "data"


def default_fabric_home() -> Path | None:
    """The Fabric install recorded by scripts/install.sh, if any."""
    marker = REPO_ROOT / ".venv" / "fabric-home"
    if marker.is_file():
        return Path(marker.read_text().strip())
    return None


def config_from_env(env: dict[str, str] | None = None) -> NetworkConfig:
    """Build the configuration from the environment (process edges only).

    Variables: ``PATCHLEDGER_STATE_DIR`` (default ``<repo>/.state/network``),
    ``PATCHLEDGER_FABRIC_HOME`` (default: what scripts/install.sh recorded),
    ``PATCHLEDGER_HOST`` (default 127.0.0.1), ``PATCHLEDGER_PORT_BASE`` (default 17000),
    ``PATCHLEDGER_BATCH_TIMEOUT`` (default 250ms), ``PATCHLEDGER_LEDGER_POLICY`` (the first
    approval policy submitted when the network is created; default
    ``network/consortium-policy.json``; empty for none).

    Raises:
        ValueError: a variable has an invalid value, or no Fabric install is known.
    """
    env = dict(os.environ) if env is None else env
    state = Path(env.get("PATCHLEDGER_STATE_DIR") or REPO_ROOT / ".state" / "network")
    home_s = env.get("PATCHLEDGER_FABRIC_HOME")
    home = Path(home_s) if home_s else default_fabric_home()
    if home is None:
        raise ValueError("Fabric binaries not installed: run scripts/install.sh "
                         "(or set PATCHLEDGER_FABRIC_HOME)")
    base_s = env.get("PATCHLEDGER_PORT_BASE", "17000")
    try:
        base = int(base_s)
    except ValueError:
        raise ValueError(f"PATCHLEDGER_PORT_BASE={base_s!r} is not a port number") from None
    host = env.get("PATCHLEDGER_HOST", "127.0.0.1")
    if not _HOST.match(host):
        raise ValueError(f"PATCHLEDGER_HOST={host!r} is not a host name or IPv4 address")
    topo = build_topology(host=host, port_base=base)
    batch_timeout = env.get("PATCHLEDGER_BATCH_TIMEOUT", "250ms")
    if not _DURATION.match(batch_timeout):
        raise ValueError(f"PATCHLEDGER_BATCH_TIMEOUT={batch_timeout!r} is not a duration such "
                         "as 250ms, 2s or 1m")
    policy = env.get("PATCHLEDGER_LEDGER_POLICY", str(DEFAULT_LEDGER_POLICY))
    return NetworkConfig(
        state_dir=state.resolve(),
        fabric_home=home,
        topology=topo,
        batch_timeout=batch_timeout,
        ledger_policy=Path(policy) if policy else None,
    )
