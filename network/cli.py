"""``patchledger network ...``: operate the local Fabric network.

Every :class:`~patchledger.network.errors.NetworkError` (misuse, state, a failed step) is printed
as one line on standard error and ends the command with exit status 2 (:data:`EXIT_ERROR`), as
the ``patchledger`` command does for the other areas' errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable

from patchledger.network.config import NetworkConfig, StateLayout, config_from_env
from patchledger.network.errors import NetworkError
from patchledger.network.manager import Manager
from patchledger.network.smoke import run_smoke
from patchledger.network.status import collect, render

#: Exit status of a command that failed with a :class:`NetworkError`.
EXIT_ERROR = 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``network`` and its sub-commands."""
    net = subparsers.add_parser("network", help="operate the local Fabric network")
    sub = net.add_subparsers(dest="network_command", metavar="ACTION", required=True)
    sub.add_parser("up", help="create or restart the network (idempotent)").set_defaults(
        func=_guard(_up))
    sub.add_parser("down", help="stop every network process (ledger kept)").set_defaults(
        func=_guard(_down))
    sub.add_parser("reset", help="stop the network and delete its state").set_defaults(
        func=_guard(_reset))
    st = sub.add_parser("status", help="health, channel heights, Raft leader, chaincode")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=_guard(_status))
    lg = sub.add_parser("logs", help="show a node's log (all nodes' last lines without NODE)")
    lg.add_argument("node", nargs="?", help="node name, e.g. peer0.secops")
    lg.add_argument("-n", "--lines", type=int, default=40, help="lines to show (default 40)")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    lg.set_defaults(func=_guard(_logs))
    sm = sub.add_parser("smoke", help="submit a transaction through two orgs, read it on a third")
    sm.add_argument("--json", action="store_true", help="print JSON")
    sm.set_defaults(func=_guard(_smoke))
    ev = sub.add_parser("env", help="print shell exports that point the client commands "
                                     "(invoke, query, events, ledger, identity) at an org's "
                                     "peer and CA as its admin")
    ev.add_argument("org", help="organization: secops, itops or compliance (or MSP id)")
    ev.set_defaults(func=_guard(_env))
    dp = sub.add_parser("deploy", help="upgrade a chaincode to a new version (next sequence), "
                                       "or deploy an additional chaincode")
    dp.add_argument("--version", required=True, help="new chaincode version label")
    dp.add_argument("--contract", help="module:attribute to serve (default: unchanged)")
    dp.add_argument("--name", help="chaincode name (default: the main chaincode)")
    dp.add_argument("--slot", type=int, help="server slot 1-6 of a new additional chaincode")
    dp.set_defaults(func=_guard(_deploy))


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Map a :class:`NetworkError` to one line on standard error and :data:`EXIT_ERROR`."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except NetworkError as exc:
            print(f"patchledger network: error: {exc}", file=sys.stderr)
            return EXIT_ERROR

    return run


def _config() -> NetworkConfig:
    """The network's settings from the environment.

    Raises:
        NetworkError: a setting is invalid (the message names it).
    """
    try:
        return config_from_env()
    except ValueError as exc:
        raise NetworkError(str(exc)) from exc


def _progress(line: str) -> None:
    print(f"[network {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _up(_: argparse.Namespace) -> int:
    t0 = time.monotonic()
    summary = Manager(_config(), _progress).up()
    print(f"{summary} ({time.monotonic() - t0:.1f} s)")
    return 0


def _down(_: argparse.Namespace) -> int:
    t0 = time.monotonic()
    stopped = Manager(_config(), _progress).down()
    print(f"stopped {len(stopped)} processes ({time.monotonic() - t0:.1f} s)"
          + (f": {', '.join(stopped)}" if stopped else ""))
    return 0


def _reset(_: argparse.Namespace) -> int:
    config = _config()
    Manager(config, _progress).reset()
    print(f"network stopped and state removed from {config.state_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    config = _config()
    manager = Manager(config)
    manifest = manager.read_manifest()
    status = collect(manager.config, manifest, manager.process_nodes())
    print(json.dumps(status, indent=2) if args.json else render(status))
    return 0 if status["healthy"] else 1


def _logs(args: argparse.Namespace) -> int:
    config = _config()
    layout = StateLayout(config.state_dir)
    logs = sorted(p.name.removesuffix(".log") for p in (layout.root / "logs").glob("*.log"))
    if args.node:
        if args.node not in logs:
            raise NetworkError(f"no log for {args.node!r} in {layout.root / 'logs'} "
                               f"(known: {', '.join(logs) or 'none'})")
        path = layout.log_file(args.node)
        cmd = ["tail", "-n", str(args.lines), *(["-F"] if args.follow else []), str(path)]
        os.execvp("tail", cmd)  # noqa: S606 - replaces this process with tail, by design
    for name in logs:
        path = layout.log_file(name)
        if path.exists():
            print(f"==> {name} ({path})")
            out = subprocess.run(["tail", "-n", str(min(args.lines, 5)), str(path)],
                                 capture_output=True, text=True, check=False)
            print(out.stdout.rstrip())
    return 0


def _smoke(args: argparse.Namespace) -> int:
    manager = Manager(_config())
    if manager.read_manifest() is None:
        raise NetworkError("no network: run `patchledger network up` first")
    result = run_smoke(manager.config)
    if args.json:
        print(json.dumps(result.__dict__))
    else:
        print(f"smoke transaction: Ping({result.value!r}) endorsed by "
              f"{' and '.join(result.endorsers)}, committed in {result.submit_seconds:.2f} s; "
              f"GetPing({result.key!r}) on {result.reader}'s peer: {result.read_back}")
    return 0


def _env(args: argparse.Namespace) -> int:
    config = _config()
    try:
        org = config.topology.org(args.org)
    except KeyError as exc:
        raise NetworkError(str(exc.args[0])) from exc
    if org.is_orderer_org:
        raise NetworkError(f"{org.name} runs no peer; choose a peer organization")
    layout = StateLayout(config.state_dir)
    admin = layout.user_dir(org.name, "admin") / "msp"
    if not admin.is_dir():
        raise NetworkError(f"no admin identity for {org.name} in {config.state_dir}; "
                           "run `patchledger network up`")
    exports = {
        "PATCHLEDGER_PEER": org.peer.address,
        "PATCHLEDGER_PEER_TLS_CA": str(layout.ca_cert(org.name)),
        "PATCHLEDGER_MSP_ID": org.msp_id,
        "PATCHLEDGER_MSP_DIR": str(admin),
        "PATCHLEDGER_CHANNEL": config.topology.channel,
        "PATCHLEDGER_CA_URL": f"https://{org.ca.address}",
        "PATCHLEDGER_CA_TLS_CA": str(layout.ca_cert(org.name)),
        "PATCHLEDGER_TRUST": ",".join(f"{o.msp_id}={layout.org_msp(o.name)}"
                                      for o in config.topology.orgs),
        "PATCHLEDGER_ORDERER_MSP": config.topology.orderer_org.msp_id,
    }
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    manager = Manager(_config(), _progress)
    seq = manager.deploy(args.version, args.contract, args.name, args.slot)
    print(f"chaincode {args.name or manager.config.chaincode.name} at version {args.version} "
          f"committed (sequence {seq})")
    return 0
