"""Operating a local network: up, down, status, reset, chaincode upgrade.

``up`` is idempotent:

- from nothing (no state directory, or an empty one) it creates everything: CAs, identities,
  channel genesis block, orderers, peers, channel membership, chaincode; the manifest
  ``network.json`` is written last, so its presence means the network was completely created;
- on a stopped network (complete manifest) it restarts the processes with the ledger intact;
- on a running network it says so and changes nothing.

A state directory with content but no complete manifest was left by an interrupted creation, or
damaged: ``up`` refuses it with an error that says to run ``reset``. If ``up`` fails, every
process it started is stopped again, so no half-started network is left running.

Only one ``up``/``down``/``reset``/``deploy`` runs at a time on a state directory (an flock).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from patchledger.common.durable import write_atomic
from patchledger.network import chaincode as cc
from patchledger.network import channel, health, process
from patchledger.network.bootstrap import init_ledger
from patchledger.network.config import ChaincodeSettings, NetworkConfig, StateLayout
from patchledger.network.errors import NetworkError
from patchledger.network.identities import CaClient, issue_org_identities
from patchledger.network.nodes import ca_command, chaincode_command, orderer_command, peer_command
from patchledger.network.topology import Node, NodeKind

MANIFEST_VERSION = 1
REQUIRED_BINARIES = ("peer", "orderer", "configtxgen", "osnadmin", "fabric-ca-server",
                     "fabric-ca-client")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class DeployedChaincode:
    """A chaincode the network serves: its settings and installed package id."""

    settings: ChaincodeSettings
    package_id: str


@dataclass
class Manager:
    """Runs one network described by ``config``; ``progress`` receives one line per step.

    Attributes:
        deployed: the chaincodes the network serves, by name (from the manifest).
    """

    config: NetworkConfig
    progress: Progress = _quiet
    deployed: dict[str, DeployedChaincode] = field(default_factory=dict)

    @property
    def layout(self) -> StateLayout:
        return StateLayout(self.config.state_dir)

    # ------------------------------------------------------------------ state and locking

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest of a completely created network, or None if there is none.

        Also loads the deployed chaincodes it records into :attr:`deployed` and sets
        ``config.chaincode`` to the main one (slot 0).

        Raises:
            NetworkError: the manifest exists but is unreadable.
        """
        path = self.layout.manifest
        if not path.exists():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            if data.get("complete") is not True:
                raise ValueError("incomplete")
            deployed = {}
            for entry in data["chaincodes"]:
                pkg_id = entry.pop("package_id")
                settings = ChaincodeSettings(**entry)
                deployed[settings.name] = DeployedChaincode(settings, str(pkg_id))
            main = next(d.settings for d in deployed.values() if d.settings.slot == 0)
        except (ValueError, OSError, TypeError, KeyError, StopIteration) as exc:
            raise NetworkError(f"state directory {self.config.state_dir} has a corrupt manifest "
                               f"({path.name}: {exc!r}); run `patchledger network reset`") from exc
        self.deployed = deployed
        self.config = replace(self.config, chaincode=main)
        return data

    def _is_empty(self) -> bool:
        root = self.config.state_dir
        return not root.exists() or all(p.name == "lock" for p in root.iterdir())

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the state directory's lock.

        Raises:
            NetworkError: another patchledger command holds it.
        """
        # Private: it holds the CAs' bootstrap secrets (secrets.json and each CA's config).
        self.config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.config.state_dir.chmod(0o700)
        with self.layout.lock.open("a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "unknown"
                raise NetworkError(f"another `patchledger network` command (pid {holder}) is "
                                   f"working on {self.config.state_dir}; wait for it") from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            try:
                yield
            finally:
                fh.seek(0)
                fh.truncate()

    def _check_binaries(self) -> None:
        missing = [b for b in REQUIRED_BINARIES if not os.access(self.config.binary(b), os.X_OK)]
        if missing:
            raise NetworkError(f"Fabric binaries missing in {self.config.bin_dir}: "
                               f"{', '.join(missing)}; run scripts/install.sh")

    # ------------------------------------------------------------------ up

    def up(self) -> str:
        """Create, restart or confirm the network; returns a one-line summary.

        Raises:
            NetworkError: misuse (ports in use, binaries missing, corrupt state, concurrent run)
                or a failed start (after stopping what was started).
        """
        self._check_binaries()
        with self.locked():
            manifest = self.read_manifest()
            if manifest is None and not self._is_empty():
                raise NetworkError(
                    f"state directory {self.config.state_dir} is incomplete (a network creation "
                    "was interrupted, or files were removed); run `patchledger network reset`")
            if manifest is not None and self._all_running():
                return "network already running"
            started: list[str] = []
            try:
                if manifest is None:
                    self._create(started)
                    return "network created and started"
                self._restart(started)
                return "network restarted (ledger intact)"
            except BaseException as exc:
                self.progress("start failed: stopping the processes started so far")
                for name in reversed(started):
                    process.stop(self.layout, name)
                if isinstance(exc, NetworkError) and manifest is None and not self._is_empty():
                    raise NetworkError(f"{exc}; the network was not created: run `patchledger "
                                       "network reset` before retrying") from exc
                raise

    def process_nodes(self) -> list[Node]:
        """Every process of the network, additional chaincode servers included."""
        nodes = list(self.config.topology.all_nodes())
        for d in self.deployed.values():
            if d.settings.slot:
                nodes += [cc.server_node(o, d.settings) for o in self.config.topology.peer_orgs]
        return nodes

    def _all_running(self) -> bool:
        return all(process.info(self.layout, n.name).state is process.ProcState.RUNNING
                   for n in self.process_nodes())

    def _check_ports(self, nodes: list[Node]) -> None:
        for node in nodes:
            if self._prefix(node):  # another namespace's ports: its start fails if taken
                continue
            for label, port in (("listen", node.port), ("operations", node.ops_port),
                                ("admin", node.admin_port), ("chaincode", node.chaincode_port)):
                if port and process.port_in_use(node.host, port):
                    raise NetworkError(f"port {port} on {node.host} ({node.name} {label}) is "
                                       "already in use; stop what uses it or set "
                                       "PATCHLEDGER_PORT_BASE")

    def _start_node(self, node: Node, started: list[str], secrets: dict[str, str],
                    chaincode: DeployedChaincode | None = None) -> None:
        env = dict(os.environ)
        org = self.config.topology.org(node.org)
        if node.kind is NodeKind.CA:
            argv, penv = ca_command(self.config, org, secrets[f"{org.name}/ca-bootstrap"], env)
        elif node.kind is NodeKind.ORDERER:
            argv, penv = orderer_command(self.config, node, env)
        elif node.kind is NodeKind.PEER:
            argv, penv = peer_command(self.config, node, env)
        else:
            assert chaincode is not None, f"{node.name}: chaincode server without a chaincode"
            cc.write_org_roots(self.config)  # read by the server at start (create and restart)
            argv, penv = chaincode_command(self.config, node, chaincode.settings,
                                           chaincode.package_id, env)
        self.layout.ca_home(org.name).mkdir(parents=True, exist_ok=True)
        pid = process.start(self.layout, node.name, [*self._prefix(node), *argv], penv)
        started.append(node.name)
        self._wait_ready(node, pid)

    def _prefix(self, node: Node) -> tuple[str, ...]:
        """The launch prefix of ``node``'s organization (``NetworkConfig.launch_prefix``)."""
        return tuple(self.config.launch_prefix.get(
            self.config.topology.org(node.org).msp_id, ()))

    def _wait_ready(self, node: Node, pid: int) -> None:
        try:
            process.wait_for_port(node.host, node.port, 30, pid, node.name)
            if node.ops_port:
                self._wait_healthy(node, 30)
        except process.ProcessError as exc:
            tail = self._log_tail(node.name)
            raise process.ProcessError(f"{exc}{': ' + tail if tail else ''} "
                                       f"(log: {self.layout.log_file(node.name)})") from exc

    def _wait_healthy(self, node: Node, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        detail = ""
        while time.monotonic() < deadline:
            ok, detail = health.healthz(node.host, node.ops_port)
            if ok:
                return
            time.sleep(0.1)
        raise process.ProcessError(f"{node.name} not healthy after {timeout:.0f} s: {detail}")

    def _log_tail(self, name: str) -> str:
        try:
            lines = self.layout.log_file(name).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [ln for ln in lines[-40:] if "ERRO" in ln or "panic" in ln or "Error" in ln]
        return (errors or lines[-1:] or [""])[-1].strip()[:300]

    def _start_group(self, nodes: list[Node], started: list[str], secrets: dict[str, str],
                     chaincode: DeployedChaincode | None = None) -> None:
        for node in nodes:
            state = process.info(self.layout, node.name)
            if state.state is process.ProcState.RUNNING:
                continue
            if state.state is process.ProcState.STALE:
                self.progress(f"{node.name}: stale pid file (pid {state.pid} is gone); removed")
                self.layout.pid_file(node.name).unlink(missing_ok=True)
            self._check_ports([node])
            self._start_node(node, started, secrets, chaincode)
        self.progress(f"started {', '.join(n.name for n in nodes)}")

    def _nodes(self, kind: NodeKind) -> list[Node]:
        return [n for n in self.config.topology.all_nodes() if n.kind is kind]

    def _create(self, started: list[str]) -> None:
        t0 = time.monotonic()
        topo = self.config.topology
        policy = self._read_ledger_policy()
        self._check_ports(list(topo.all_nodes()))
        secrets = {f"{o.name}/ca-bootstrap": os.urandom(12).hex() for o in topo.orgs}
        self._save_secrets(secrets)
        self._start_group(self._nodes(NodeKind.CA), started, secrets)
        self.progress("issuing identities from the organizations' CAs")
        with ThreadPoolExecutor(max_workers=len(topo.orgs)) as pool:
            clients = [CaClient(self.config, o, secrets[f"{o.name}/ca-bootstrap"])
                       for o in topo.orgs]
            for fut in [pool.submit(issue_org_identities, c, secrets) for c in clients]:
                fut.result()
        self._save_secrets(secrets)
        block = channel.create_genesis_block(self.config)
        self.progress(f"channel {topo.channel}: genesis block written")
        self._start_group(self._nodes(NodeKind.ORDERER), started, secrets)
        self._start_group(self._nodes(NodeKind.PEER), started, secrets)
        channel.join_orderers(self.config, block)
        self.wait_for_leader(30)
        self.progress("orderers joined; Raft leader elected")
        channel.join_peers(self.config, block)
        self.progress("peers joined the channel")
        self.wait_for_gossip(60)
        self.progress("peers know each other (gossip), so gateways can reach every org")
        self._deploy(self.config.chaincode, started, secrets, sequence=1)
        if policy is not None:
            init_ledger(self.config, policy)
            self.progress(f"ledger initialised with the consortium policy from "
                          f"{self.config.ledger_policy}, by consent of every organization's "
                          "admin")
        self._write_manifest()
        self.progress(f"network created in {time.monotonic() - t0:.1f} s")

    def _read_ledger_policy(self) -> dict[str, Any] | None:
        path = self.config.ledger_policy
        if path is None:
            return None
        try:
            policy = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NetworkError(f"consortium policy {path} cannot be read: {exc}") from exc
        if not isinstance(policy, dict):
            raise NetworkError(f"consortium policy {path} must be a JSON object")
        return policy

    def _servers(self, settings: ChaincodeSettings) -> list[Node]:
        return [cc.server_node(o, settings) for o in self.config.topology.peer_orgs]

    def _deploy(self, settings: ChaincodeSettings, started: list[str], secrets: dict[str, str],
                sequence: int) -> None:
        package = cc.write_package(self.config, settings)
        deployed = DeployedChaincode(settings, cc.package_id(settings))
        cc.write_connection_files(self.config, settings)  # read by the builder during install
        cc.install(self.config, package)
        self._start_group(self._servers(settings), started, secrets, deployed)
        cc.approve_and_commit(self.config, settings, deployed.package_id, sequence)
        self.deployed[settings.name] = deployed
        self.progress(f"chaincode {settings.name} {settings.version} committed "
                      f"(sequence {sequence})")

    def _restart(self, started: list[str]) -> None:
        secrets = self._load_secrets()
        self._start_group(self._nodes(NodeKind.CA), started, secrets)
        self._start_group(self._nodes(NodeKind.ORDERER), started, secrets)
        self._start_group(self._nodes(NodeKind.PEER), started, secrets)
        for deployed in self.deployed.values():
            self._start_group(self._servers(deployed.settings), started, secrets, deployed)
        self.wait_for_leader(30)
        self.wait_for_gossip(60)

    def _save_secrets(self, secrets: dict[str, str]) -> None:
        write_atomic(self.layout.secrets, json.dumps(secrets, indent=1, sort_keys=True))

    def _load_secrets(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self.layout.secrets.read_text())
        except (OSError, ValueError) as exc:
            raise NetworkError(f"state directory {self.config.state_dir}: cannot read "
                               f"{self.layout.secrets.name} ({exc}); run `patchledger network "
                               "reset`") from exc
        return data

    def _write_manifest(self) -> None:
        data = {
            "manifest_version": MANIFEST_VERSION,
            "complete": True,
            "channel": self.config.topology.channel,
            "chaincodes": [asdict(d.settings) | {"package_id": d.package_id}
                           for d in self.deployed.values()],
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_atomic(self.layout.manifest, json.dumps(data, indent=2), mode=0o644)

    def leader(self) -> str | None:
        """Name of the orderer that is the channel's Raft leader, if any."""
        for node in self.config.topology.orderers:
            m = health.metrics(node.host, node.ops_port)
            if health.channel_metric(m, "consensus_etcdraft_is_leader",
                                     self.config.topology.channel) == 1:
                return node.name
        return None

    def gossip_peers_known(self) -> dict[str, int]:
        """How many other peers of the channel each peer knows through gossip (-1 when its
        metrics cannot be read)."""
        known = {}
        for node in self.config.topology.peers:
            m = health.metrics(node.host, node.ops_port)
            value = health.channel_metric(m, "gossip_membership_total_peers_known",
                                          self.config.topology.channel)
            known[node.name] = -1 if value is None else int(value)
        return known

    def wait_for_gossip(self, timeout: float) -> None:
        """Wait until every peer knows every other peer of the channel (gateways find other
        organizations' peers through this membership).

        Raises:
            NetworkError: membership is incomplete after ``timeout`` seconds.
        """
        want = len(self.config.topology.peers) - 1
        deadline = time.monotonic() + timeout
        known: dict[str, int] = {}
        while time.monotonic() < deadline:
            known = self.gossip_peers_known()
            if all(v >= want for v in known.values()):
                return
            time.sleep(0.25)
        raise NetworkError(f"gossip membership incomplete after {timeout:.0f} s (peers known: "
                           f"{known}, expected {want} each); see the peer logs in "
                           f"{self.layout.root / 'logs'}")

    def wait_for_leader(self, timeout: float) -> str:
        """Wait until the channel has a Raft leader; return its name.

        Raises:
            NetworkError: no leader within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            name = self.leader()
            if name:
                return name
            time.sleep(0.2)
        raise NetworkError(f"no Raft leader on channel {self.config.topology.channel} after "
                           f"{timeout:.0f} s; see the orderer logs in {self.layout.root / 'logs'}")

    # ------------------------------------------------------------------ down, reset, deploy

    def down(self) -> list[str]:
        """Stop every process the network started; return the names of those stopped."""
        with self.locked():
            return self._stop_all()

    def _stop_all(self) -> list[str]:
        with contextlib.suppress(NetworkError):  # a corrupt manifest must not prevent stopping
            self.read_manifest()
        names = [n.name for n in reversed(self.process_nodes())]
        # Also every other pid file: a server started by a deploy that died before it
        # recorded the chaincode in the manifest must not survive `down`.
        names += [n for n in process.recorded(self.layout) if n not in names]
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(lambda n: (n, process.stop(self.layout, n)), names)
            return [name for name, was_running in results if was_running]

    def reset(self) -> None:
        """Stop every process and delete the network's state directory."""
        with self.locked():
            self._stop_all()
            for child in self.config.state_dir.iterdir():
                if child.name == "lock":
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()

    def deploy(self, version: str, contract: str | None = None, name: str | None = None,
               slot: int | None = None) -> int:
        """Deploy chaincode ``name`` (default: the main one) at ``version``: an upgrade to the
        next sequence when it exists, otherwise a new chaincode served on ``slot``. Returns the
        committed sequence.

        Raises:
            NetworkError: the network is not running, the version is already committed, or a new
                chaincode has no contract or a slot in use.
        """
        with self.locked():
            manifest = self.read_manifest()
            if manifest is None or not self._all_running():
                raise NetworkError("the network is not running; run `patchledger network up`")
            name = name or self.config.chaincode.name
            current = self.deployed.get(name)
            committed = cc.committed(self.config, name)
            if committed is not None and committed.version == version:
                raise NetworkError(f"chaincode {name} is already at version {version} "
                                   f"(sequence {committed.sequence})")
            if current is not None:
                settings = replace(current.settings, version=version,
                                   contract=contract or current.settings.contract)
            else:
                used = {d.settings.slot for d in self.deployed.values()}
                if contract is None or slot is None or slot in used:
                    raise NetworkError(f"new chaincode {name} needs --contract and a free --slot "
                                       f"(slots in use: {sorted(used)})")
                settings = ChaincodeSettings(name, version, contract, slot)
            _check_settings(settings)  # before anything is stopped
            sequence = (committed.sequence if committed else 0) + 1
            secrets = self._load_secrets()
            for node in self._servers(settings):
                process.stop(self.layout, node.name)
            started: list[str] = []
            try:
                self._deploy(settings, started, secrets, sequence)
            except BaseException as exc:
                for node_name in reversed(started):  # leave no new server behind
                    process.stop(self.layout, node_name)
                if current is not None:  # the committed definition is unchanged: serve it
                    self._start_group(self._servers(current.settings), [], secrets, current)
                if isinstance(exc, NetworkError):
                    raise NetworkError(f"{exc} (chaincode {name} left at version "
                                       f"{current.settings.version if current else 'none'})"
                                       ) from exc
                raise
            if settings.slot == 0:
                self.config = replace(self.config, chaincode=settings)
            self._write_manifest()
            return sequence


_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _check_settings(settings: ChaincodeSettings) -> None:
    """Refuse chaincode settings the peer or the chaincode server would reject later.

    Raises:
        NetworkError: an invalid name or version, a slot out of range, or a contract module that
            cannot be found.
    """
    if not _LABEL.match(settings.label):
        raise NetworkError(f"chaincode label {settings.label!r} (name_version) must match "
                           f"{_LABEL.pattern}")
    if not 0 <= settings.slot <= cc.MAX_EXTRA_SLOTS:
        raise NetworkError(f"slot {settings.slot} is not between 1 and {cc.MAX_EXTRA_SLOTS}")
    module, sep, attribute = settings.contract.partition(":")
    if not sep or not attribute:
        raise NetworkError(f"contract {settings.contract!r} must be module:attribute")
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise NetworkError(f"contract module {module!r} cannot be found")
