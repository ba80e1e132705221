"""Chaincode runtimes through real peers: ours against the official Node runtime (run on
purpose; the test suite runs only its ``--smoke`` mode).

Creates a local network (3 peer organizations, 3 Raft orderers, MAJORITY endorsement) in a
state directory under /tmp on its own port base, and serves the same Put/Get function twice:

- ``benchpy``: ``patchledger.chaincode.smoke:contract`` on our runtime
  (``python -m patchledger.chaincode``), deployed with ``Manager.deploy`` on a server slot;
- ``benchnode``: ``bench/reference-chaincode-node`` (fabric-contract-api 2.5.8 on fabric-shim,
  the official Node runtime) in server mode, with the same TLS files as our servers (mutual
  TLS, the organization's CA), packaged, installed and committed with
  ``patchledger.network.chaincode``.
  Its node_modules are installed with npm into the state directory (never into the repo).

Clients are the three organization admins through our Gateway client, round robin. At 1, 8,
32, 64 and 256 transactions in flight it submits ``Put`` transactions (endorse, order, wait for
the commit) and measures transactions per second, latency p50/p99 (submit to commit status)
and the CPU of the three chaincode-server processes per transaction (utime+stime from
/proc/<pid>/stat; each transaction is executed by two endorsing peers, hence by two servers).
The two runtimes alternate at every level of every run; the table gives the median of the
runs. The network is stopped and its state removed at the end (``--keep`` keeps it, stopped).
The default port base, 18000, lies below Linux's ephemeral port range and apart from the other
benches'.

``--smoke`` runs the smallest scale (one run at 1 and 8 in flight, 5 and 24 transactions, no
warm-up) with both runtimes: it shows that the bench still works end to end, in well under a
minute with the network start. When node or npm is not on PATH, the Node reference's rows say
why it was skipped.

    .venv/bin/python bench/bench_runtime_peers.py [--runs 3] [--levels 1,8,32,64,256]
        [--scale 1.0] [--state-dir /tmp/patchledger-bench-peers] [--port-base 18000]
        [--batch-timeout 500ms] [--no-reference] [--keep] [--smoke]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from patchledger.app.fabric import (
    EcdsaSigner,
    EndorseError,
    FabricError,
    Identity,
    connect,
    create_channel,
)
from patchledger.network import chaincode as cc
from patchledger.network import process
from patchledger.network.config import (
    ChaincodeSettings,
    NetworkConfig,
    StateLayout,
    config_from_env,
)
from patchledger.network.manager import Manager
from patchledger.network.nodes import chaincode_command
from patchledger.network.topology import Node

REFERENCE_DIR = Path(__file__).resolve().parent / "reference-chaincode-node"
TICKS = os.sysconf("SC_CLK_TCK")
LEVELS = (1, 8, 32, 64, 256)
#: Transactions per level (times --scale): enough for several batches at every level.
COUNTS = {1: 25, 8: 120, 32: 320, 64: 512, 256: 1024}
VALUE = "v" * 64

PY_CC = ChaincodeSettings("benchpy", "1.0", "patchledger.chaincode.smoke:contract", slot=4)
NODE_CC = ChaincodeSettings("benchnode", "1.0", "reference-chaincode-node (fabric-contract-api)",
                            slot=5)
PY_RUNTIME, NODE_RUNTIME = "python (ours)", "node (fabric-shim 2.5.8)"
#: Default port base: below Linux's ephemeral port range (32768-60999), which a connection in
#: TIME-WAIT can hold, and apart from the other benches' (docs/benchmarks.md, "Ports").
PORT_BASE = 18000
NO_NODE = "node/npm not found on PATH"


def _log(line: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- measurements


@dataclass
class Sample:
    runtime: str
    in_flight: int
    ok: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_tx: float
    first_error: str = ""

    @property
    def tps(self) -> float:
        return self.ok / self.seconds


def _cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICKS


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_level(runtime: str, contracts: Sequence[Any], in_flight: int, count: int,
              pids: Sequence[int], prefix: str) -> Sample:
    """Submit ``count`` Put transactions keeping ``in_flight`` of them outstanding."""
    indexes = itertools.count()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        while (i := next(indexes)) < count:
            contract = contracts[i % len(contracts)]
            t0 = time.perf_counter()
            try:
                contract.submit("Put", [f"{prefix}-{i:06d}", VALUE])
            except FabricError as exc:
                with lock:
                    errors.append(str(exc).splitlines()[0])
                continue
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)

    cpu0 = _cpu_seconds(pids)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds(pids) - cpu0
    ok = len(latencies)
    return Sample(runtime, in_flight, ok, len(errors), seconds,
                  _percentile(latencies, 0.50) * 1000, _percentile(latencies, 0.99) * 1000,
                  cpu * 1000 / ok if ok else float("nan"), errors[0] if errors else "")


# ---------------------------------------------------------------------------- set-up


def install_reference(workdir: Path) -> Path:
    """Copy the Node reference chaincode to ``workdir`` and install its node_modules there.

    Raises:
        RuntimeError: npm failed.
    """
    target = workdir / "reference-chaincode-node"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json", "index.js"):
        if (REFERENCE_DIR / name).exists():
            shutil.copy2(REFERENCE_DIR / name, target / name)
    locked = (target / "package-lock.json").exists()
    argv = ["npm", "ci" if locked else "install", "--no-audit", "--no-fund"]
    result = subprocess.run(argv, cwd=target, capture_output=True, text=True, check=False,
                            timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed in {target}: {result.stderr.strip()[-500:]}")
    if not locked and (target / "package-lock.json").exists():
        shutil.copy2(target / "package-lock.json", REFERENCE_DIR / "package-lock.json")
    return target


def start_reference_servers(config: NetworkConfig, package_id: str,
                            module_dir: Path) -> list[Node]:
    """Start one Node chaincode server per organization, on NODE_CC's slot, with the TLS files
    our own servers use (the ones network.nodes.chaincode_command names)."""
    layout = StateLayout(config.state_dir)
    cli = module_dir / "node_modules" / "fabric-shim" / "cli.js"
    nodes = []
    for org in config.topology.peer_orgs:
        node = cc.server_node(org, NODE_CC)
        _, ours = chaincode_command(config, node, NODE_CC, package_id, {})
        argv = ["node", str(cli), "server",
                "--chaincode-address", node.address,
                "--chaincode-id", package_id,
                "--chaincode-tls-cert-file", ours["CHAINCODE_TLS_CERT_FILE"],
                "--chaincode-tls-key-file", ours["CHAINCODE_TLS_KEY_FILE"],
                "--chaincode-tls-client-cacert-file", ours["CHAINCODE_TLS_CLIENT_CA_FILE"],
                "--module-path", str(module_dir)]
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        env["CORE_CHAINCODE_LOGGING_LEVEL"] = "warning"  # ours logs at WARNING too
        pid = process.start(layout, node.name, argv, env, cwd=module_dir)
        nodes.append(node)
        process.wait_for_port(node.host, node.port, 30, pid, node.name)
    return nodes


def deploy_reference(config: NetworkConfig, module_dir: Path) -> list[Node]:
    """Package, install, serve, approve and commit the Node reference chaincode."""
    cc.write_connection_files(config, NODE_CC)
    package = cc.write_package(config, NODE_CC)
    cc.install(config, package)
    package_id = cc.package_id(NODE_CC)
    servers = start_reference_servers(config, package_id, module_dir)
    cc.approve_and_commit(config, NODE_CC, package_id, 1)
    return servers


def server_pids(config: NetworkConfig, settings: ChaincodeSettings) -> list[int]:
    layout = StateLayout(config.state_dir)
    pids = [process.info(layout, cc.server_node(o, settings).name).pid
            for o in config.topology.peer_orgs]
    if not all(pids):
        raise RuntimeError(f"{settings.name}: a chaincode server is not running")
    return pids


@dataclass
class Clients:
    """A Gateway per organization admin, each to its own peer."""

    config: NetworkConfig
    channels: list[grpc.Channel] = field(default_factory=list)
    gateways: list[Any] = field(default_factory=list)

    def open(self) -> None:
        layout = StateLayout(self.config.state_dir)
        for org in self.config.topology.peer_orgs:
            msp = layout.user_dir(org.name, "admin") / "msp"
            channel = create_channel(org.peer.address,
                                     tls_root_certificates=layout.ca_cert(org.name).read_bytes())
            self.channels.append(channel)
            self.gateways.append(connect(Identity.from_msp_dir(msp, org.msp_id),
                                         EcdsaSigner.from_msp_dir(msp), channel,
                                         endpoint=org.peer.address))

    def contracts(self, name: str) -> list[Any]:
        channel = self.config.topology.channel
        return [g.get_network(channel).get_contract(name) for g in self.gateways]

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


def wait_until_usable(contracts: Sequence[Any], timeout: float = 90) -> None:
    """Retry a Put through every gateway until discovery (gossip) knows the chaincode's peers."""
    deadline = time.monotonic() + timeout
    for contract in contracts:
        while True:
            try:
                contract.submit("Put", ["warm-up", VALUE])
                break
            except EndorseError as exc:
                if exc.code != grpc.StatusCode.FAILED_PRECONDITION or \
                        time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


# ---------------------------------------------------------------------------- report


def _median(samples: list[Sample], attr: Callable[[Sample], float]) -> float:
    return statistics.median(attr(s) for s in samples)


def report(samples: list[Sample], runtimes: Sequence[str], levels: Sequence[int],
           runs: int, skipped: Sequence[str] = (), reason: str = "") -> str:
    """The table (markdown): a row per level and runtime, and a ``skipped (reason)`` row per
    level for each runtime of ``skipped``."""
    lines = [f"median of {runs} run(s); CPU = the three chaincode-server processes, per "
             "committed transaction",
             "",
             "| in flight | runtime | tx/s | p50 ms | p99 ms | chaincode CPU ms/tx | failed |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for level in levels:
        for runtime in runtimes:
            group = [s for s in samples if s.runtime == runtime and s.in_flight == level]
            if not group:
                continue
            lines.append(
                f"| {level} | {runtime} | {_median(group, lambda s: s.tps):.1f} | "
                f"{_median(group, lambda s: s.p50_ms):.0f} | "
                f"{_median(group, lambda s: s.p99_ms):.0f} | "
                f"{_median(group, lambda s: s.cpu_ms_per_tx):.2f} | "
                f"{sum(s.errors for s in group)} |")
        lines += [f"| {level} | {runtime} | skipped ({reason}) | | | | |" for runtime in skipped]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the network's reset


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the transactions per level")
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/patchledger-bench-peers"))
    parser.add_argument("--port-base", type=int, default=PORT_BASE)
    parser.add_argument("--batch-timeout", default="500ms",
                        help="the orderers' BatchTimeout (issue 4's reference figures: 500ms)")
    parser.add_argument("--no-reference", action="store_true",
                        help="measure our runtime only")
    parser.add_argument("--keep", action="store_true",
                        help="keep the network's state (stopped) at the end")
    parser.add_argument("--smoke", action="store_true",
                        help="smallest scale: shows the bench still works")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.levels, args.scale = 1, "1,8", 0.2
    skipped: list[str] = []
    if not args.no_reference and not (shutil.which("node") and shutil.which("npm")):
        _log(f"Node reference not run: {NO_NODE}")
        skipped, args.no_reference = [NODE_RUNTIME], True
    levels = [int(x) for x in args.levels.split(",") if x]

    env = dict(os.environ, PATCHLEDGER_STATE_DIR=str(args.state_dir),
               PATCHLEDGER_PORT_BASE=str(args.port_base),
               PATCHLEDGER_BATCH_TIMEOUT=args.batch_timeout)
    manager = Manager(config_from_env(env), lambda line: _log(f"network: {line}"))
    config = manager.config
    reference_servers: list[Node] = []
    clients = Clients(config)
    samples: list[Sample] = []
    runtimes = [PY_RUNTIME] + ([] if args.no_reference else [NODE_RUNTIME])
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.state_dir.exists() and any(args.state_dir.iterdir()):
            _log(f"removing the previous bench network in {args.state_dir}")
            for org in config.topology.peer_orgs:  # servers a killed bench left running
                process.stop(manager.layout, cc.server_node(org, NODE_CC).name)
            manager.reset()
        manager.up()
        manager.deploy(version=PY_CC.version, contract=PY_CC.contract, name=PY_CC.name,
                       slot=PY_CC.slot)
        _log(f"{PY_CC.name}: our runtime serving {PY_CC.contract}")
        by_runtime: dict[str, tuple[list[Any], list[int]]] = {}
        clients.open()
        py_contracts = clients.contracts(PY_CC.name)
        wait_until_usable(py_contracts)
        by_runtime[runtimes[0]] = (py_contracts, server_pids(config, PY_CC))
        if not args.no_reference:
            module_dir = install_reference(config.state_dir / "work")
            _log(f"{NODE_CC.name}: node_modules installed in {module_dir}")
            reference_servers = deploy_reference(config, module_dir)
            node_contracts = clients.contracts(NODE_CC.name)
            wait_until_usable(node_contracts)
            by_runtime[runtimes[1]] = (node_contracts, server_pids(config, NODE_CC))
        if not args.smoke:
            for runtime, (contracts, pids) in by_runtime.items():  # warm both up alike
                run_level(runtime, contracts, 8, 64, pids, f"warm-{runtime[:4]}")
        for run in range(1, args.runs + 1):
            for level in levels:
                count = max(level, round(COUNTS.get(level, 4 * level) * args.scale))
                for runtime, (contracts, pids) in by_runtime.items():
                    sample = run_level(runtime, contracts, level, count, pids,
                                       f"r{run}-{level}-{runtime[:4]}")
                    samples.append(sample)
                    _log(f"run {run} {runtime} @{level}: {sample.tps:.1f} tx/s, p50 "
                         f"{sample.p50_ms:.0f} ms, p99 {sample.p99_ms:.0f} ms, CPU "
                         f"{sample.cpu_ms_per_tx:.2f} ms/tx, {sample.errors} failed"
                         + (f" ({sample.first_error})" if sample.errors else ""))
    finally:
        clients.close()
        for node in reference_servers:
            process.stop(manager.layout, node.name)
        if args.keep:
            manager.down()
        elif args.state_dir.exists():
            manager.reset()
            shutil.rmtree(args.state_dir, ignore_errors=True)
    print(f"Put through the peers: {len(config.topology.peer_orgs)} peer organizations, "
          f"{len(config.topology.orderers)} Raft orderers, MAJORITY endorsement, BatchTimeout "
          f"{config.batch_timeout}, {os.cpu_count()} CPUs")
    print(report(samples, runtimes, levels, args.runs, skipped, NO_NODE))
    return 1 if any(s.errors for s in samples) else 0


if __name__ == "__main__":
    sys.exit(main())
