"""Fabric client benchmark: our Python client against the official Node client (run on purpose;
the test suite runs only its ``--smoke`` mode).

Starts its own network (state directory under /tmp, or ``--state-dir``; port base
``--port-base``, default 16000, below Linux's ephemeral port range) and always resets it at the
end. The network serves the smoke contract (Put/Get) as its main chaincode and is created
without ``InitLedger`` (that is the patchledger contract's function; the smoke contract has
none). Both clients use the SecOps admin, talk to the SecOps peer over TLS and run the same
transactions against the same network in the same run: ``submit`` = the smoke contract's
``Put`` (endorse by the gateway's plan, order, wait for the commit status), ``evaluate`` =
``Get`` of one key. At each level, ``N`` calls are kept in flight (threads for our synchronous
client, async loops in Node) for a warm-up and then a measured window; the table gives
throughput, latency p50/p99 of the calls started in the window, and the client process's CPU
time (user + system, every thread, from getrusage) per call over the window.

The Node client (``@hyperledger/fabric-gateway``) runs from bench/node-gateway-client/, whose
node_modules is installed at run time (``npm install``; git-ignored). It is measured with its
default signer (@noble/curves, pure JS) and with an OpenSSL signer (``node:crypto``, low-S
normalised), its best configuration.

``--smoke`` runs the smallest scale (levels 1 and 8, 0.25 s warm-up, 0.5 s window, both modes,
every client): it shows that the bench still works end to end, in well under a minute with the
network start. When node or npm is not on PATH, the Node rows say why they were skipped; in
smoke mode a failed ``npm install`` fails the bench (exit 1), since that is what would rot.

    .venv/bin/python bench/bench_client.py [--seconds 6] [--warmup 2] [--levels 1,8,64,256]
        [--clients python,node-default,node-openssl] [--modes submit,evaluate]
        [--port-base 16000] [--state-dir DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchledger.app.fabric import (
    Contract,
    EcdsaSigner,
    EndorseError,
    Identity,
    connect,
    create_channel,
)
from patchledger.network.config import ChaincodeSettings, config_from_env
from patchledger.network.manager import Manager

# Run as a file (bench/<name>.py) the repository root is not on sys.path; the test support this
# bench uses lives in tests/support/ (it is not shipped in the wheel).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.support.network import LocalNetwork

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "bench" / "node-gateway-client"
ORG = "SecOpsMSP"
EVAL_KEY = "bench-evaluate-key"


@dataclass
class Result:
    client: str
    mode: str
    in_flight: int
    count: int
    seconds: float
    cpu_seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    first_error: str = ""

    @property
    def tps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_seconds / self.count if self.count else float("nan")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------ our client


def run_python(contract: Contract, mode: str, in_flight: int, warmup: float,
               seconds: float) -> Result:
    prefix = f"py-{mode}-{in_flight}-{secrets.token_hex(3)}"
    start = time.monotonic()
    measure_from = start + warmup
    end = measure_from + seconds
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(10**9))

    def call() -> None:
        if mode == "evaluate":
            contract.evaluate("Get", [EVAL_KEY])
        else:
            n = next(counter)
            contract.submit("Put", [f"{prefix}-{n}", f"value-{n}"])

    def worker() -> None:
        while time.monotonic() < end:
            began = time.monotonic()
            try:
                call()
            except Exception as exc:
                with lock:
                    errors.append(str(exc).splitlines()[0])
                continue
            if began >= measure_from:
                elapsed = time.monotonic() - began
                with lock:
                    latencies.append(elapsed * 1000)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, measure_from - time.monotonic()))
    cpu0, wall0 = _cpu(), time.monotonic()
    for thread in threads:
        thread.join()
    cpu, wall = _cpu() - cpu0, time.monotonic() - wall0
    return Result("python", mode, in_flight, len(latencies), wall, cpu,
                  _percentile(latencies, 0.50), _percentile(latencies, 0.99), len(errors),
                  errors[0] if errors else "")


# ------------------------------------------------------------------------------ Node client


def install_node_client() -> str:
    """Install the Node client's dependencies; return "" or why it cannot run."""
    if not shutil.which("node") or not shutil.which("npm"):
        return NO_NODE
    if not (NODE_DIR / "node_modules" / "@hyperledger" / "fabric-gateway").is_dir():
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-package-lock"],
                              cwd=NODE_DIR, capture_output=True, text=True, timeout=600,
                              check=False)
        if done.returncode != 0:
            return f"npm install failed: {done.stderr.strip()[-500:]}"
    return ""


def run_node(net: LocalNetwork, signer: str, mode: str, in_flight: int, warmup: float,
             seconds: float) -> Result:
    org = net.org(ORG)
    settings = {
        "peer": org.peer.address,
        "tlsCa": str(net.ca_cert(ORG)),
        "mspId": org.msp_id,
        "mspDir": str(net.admin_msp(ORG)),
        "channel": net.config.topology.channel,
        "chaincode": "patchledger",
        "mode": mode,
        "signer": signer,
        "inFlight": in_flight,
        "seconds": seconds,
        "warmup": warmup,
        "keyPrefix": f"node-{signer}-{mode}-{in_flight}-{secrets.token_hex(3)}",
        "getKey": EVAL_KEY,
    }
    done = subprocess.run(["node", "bench.js", json.dumps(settings)], cwd=NODE_DIR,
                          capture_output=True, text=True, timeout=warmup + seconds + 300,
                          check=False)
    name = f"node-{signer}"
    if done.returncode != 0:
        return Result(name, mode, in_flight, 0, 0.0, 0.0, float("nan"), float("nan"), 1,
                      done.stderr.strip()[-300:])
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    lat = [float(x) for x in data["latencies_ms"]]
    return Result(name, mode, in_flight, int(data["count"]), float(data["seconds"]),
                  float(data["cpu_seconds"]), _percentile(lat, 0.50), _percentile(lat, 0.99),
                  int(data["errors"]), str(data["first_error"]))


# ------------------------------------------------------------------------------ driver


#: Default port base: below Linux's ephemeral port range (32768-60999), which a connection in
#: TIME-WAIT can hold, and apart from the other benches' (docs/benchmarks.md, "Ports").
PORT_BASE = 16000
NODE_CLIENTS = ("node-default", "node-openssl")
NO_NODE = "node/npm not found on PATH"


def _table(results: list[Result], skipped: Sequence[tuple[str, str, int]] = (),
           reason: str = "") -> str:
    """The table: a row per result, then a ``skipped (reason)`` row per (client, mode, level)
    of ``skipped``."""
    head = (f"{'client':<13} {'mode':<8} {'in flight':>9} {'calls':>6} {'tx/s':>8} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'CPU ms/tx':>10} {'errors':>6}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.client:<13} {r.mode:<8} {r.in_flight:>9} {r.count:>6} {r.tps:>8.1f} "
                     f"{r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.cpu_ms_per_call:>10.2f} "
                     f"{r.errors:>6}")
    for client, mode, level in skipped:
        lines.append(f"{client:<13} {mode:<8} {level:>9} skipped ({reason})")
    return "\n".join(lines)


def _wait_ready(contract: Contract, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            contract.submit("Put", [EVAL_KEY, "bench"])
            return
        except EndorseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the network's reset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured window per level")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up per level")
    parser.add_argument("--levels", default="1,8,64,256", help="calls in flight")
    parser.add_argument("--modes", default="submit,evaluate")
    parser.add_argument("--clients", default="python," + ",".join(NODE_CLIENTS))
    parser.add_argument("--port-base", type=int, default=PORT_BASE,
                        help=f"the network's port base (default {PORT_BASE})")
    parser.add_argument("--state-dir", type=Path,
                        help="the network's state directory (default: a new one under /tmp); "
                             "removed at the end")
    parser.add_argument("--smoke", action="store_true",
                        help="smallest scale: shows the bench still works")
    args = parser.parse_args(argv)
    if args.smoke:
        args.levels, args.seconds, args.warmup = "1,8", 0.5, 0.25
    levels = [int(x) for x in args.levels.split(",")]
    modes = args.modes.split(",")
    clients = args.clients.split(",")

    node_problem = install_node_client() if any(c.startswith("node") for c in clients) else ""
    if node_problem and args.smoke and node_problem != NO_NODE:
        print(f"Node client: {node_problem}", file=sys.stderr)
        return 1
    skipped: list[tuple[str, str, int]] = []
    if node_problem:
        print(f"Node client not run: {node_problem}", file=sys.stderr)
        skipped = [(c, m, n) for m in modes for n in levels for c in clients
                   if c.startswith("node")]
        clients = [c for c in clients if not c.startswith("node")]

    state = args.state_dir or Path(tempfile.mkdtemp(prefix="patchledger-bench-client-",
                                                    dir="/tmp"))
    env = dict(os.environ, PATCHLEDGER_STATE_DIR=str(state / "network"),
               PATCHLEDGER_PORT_BASE=str(args.port_base))
    # The main chaincode of this network is the smoke contract (Put/Get), whatever the default,
    # and the network is created without InitLedger, which the smoke contract does not have.
    config = dataclasses.replace(
        config_from_env(env), ledger_policy=None,
        chaincode=ChaincodeSettings(contract="patchledger.chaincode.smoke:contract"))
    manager = Manager(config,
                      lambda line: print(f"[bench network] {line}", file=sys.stderr, flush=True))
    results: list[Result] = []
    signal.signal(signal.SIGTERM, _terminate)
    try:
        manager.up()
        net = LocalNetwork(manager)
        org = net.org(ORG)
        channel = create_channel(org.peer.address,
                                 tls_root_certificates=net.ca_cert(ORG).read_bytes())
        msp = net.admin_msp(ORG)
        with connect(Identity.from_msp_dir(msp, org.msp_id), EcdsaSigner.from_msp_dir(msp),
                     channel, endpoint=org.peer.address) as gateway:
            contract = gateway.get_network(net.config.topology.channel).get_contract(
                "patchledger")
            _wait_ready(contract)
            for mode in modes:
                for level in levels:
                    for client in clients:
                        if client == "python":
                            result = run_python(contract, mode, level, args.warmup,
                                                args.seconds)
                        else:
                            signer = client.removeprefix("node-")
                            result = run_node(net, signer, mode, level, args.warmup,
                                              args.seconds)
                        results.append(result)
                        print(_table([result]).splitlines()[-1], file=sys.stderr, flush=True)
        channel.close()
    finally:
        if manager.config.state_dir.exists():
            manager.reset()
        shutil.rmtree(state, ignore_errors=True)
    print(_table(results, skipped, node_problem))
    failures = {f"{r.client}/{r.mode}/{r.in_flight}: {r.first_error}"
                for r in results if r.first_error}
    for failure in sorted(failures):
        print(f"first error: {failure}")
    print(f"\n{os.cpu_count()} CPUs; CPU ms/tx = client process CPU (user+system) / calls")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
