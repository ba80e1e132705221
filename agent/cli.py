"""``patchledger-agent``: the host agent's console script (the process edge: the only place
that reads the environment, the configuration file and the command line, installs signal
handlers and configures logging).

    patchledger-agent [--config FILE] enroll --server URL --token T --ca-file F [--host-id H]
                                             [--roots-fingerprint HEX]
                                             [--fingerprint [MSP=]sha256:HEX ...]
    patchledger-agent [--config FILE] run [--dry-run]     foreground daemon (systemd)
    patchledger-agent [--config FILE] once [--dry-run]    one cycle, exit 0 ok / 1 failed
    patchledger-agent [--config FILE] status [--json]     for a person; changes nothing

Exit status: 0 success, 1 a failed cycle or refused enrollment, 2 bad configuration or usage,
3 another run holds the lock, 143 stopped by a signal during a change (reverted).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from patchledger.agent.daemon import Agent
from patchledger.agent.enroll import (
    EnrollmentError,
    attested_roots,
    enroll,
    load_enrollment,
    parse_fingerprints,
)
from patchledger.agent.errors import AgentError, ConfigError, LockError
from patchledger.agent.settings import DaemonSettings, load_settings
from patchledger.agent.transport import Transport, TransportError, client_context

__all__ = ["main"]

log = logging.getLogger("patchledger.agent")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patchledger-agent",
                                     description="patchledger host agent")
    parser.add_argument("--config", type=Path, help="TOML settings file"
                        " (default $PATCHLEDGER_AGENT_CONFIG or /etc/patchledger/agent.toml)")
    parser.add_argument("--state-dir", help="override state_dir")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("enroll", help="enroll this host with a one-time token")
    e.add_argument("--server", required=True, help="the organization app, https://host:port")
    e.add_argument("--token", required=True, help="the one-time enrollment token")
    e.add_argument("--host-id", default=socket.gethostname().split(".")[0],
                   help="this host's id on the ledger (default: the short host name)")
    e.add_argument("--ca-file", required=True, type=Path,
                   help="the app's TLS CA certificate (handed out with the token)")
    e.add_argument("--roots-fingerprint",
                   help="the channel roots fingerprint (roots_fingerprint of every"
                        " organization's roots, from the channel configuration): pin the roots"
                        " the peers attest")
    e.add_argument("--fingerprint", action="append", default=[],
                   help="[MSP=]sha256:HEX of one organization root (repeatable; no MSP= is the"
                        " host's own organization)")
    for name, text in (("run", "run in the foreground until stopped"),
                       ("once", "run one poll cycle")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--dry-run", action="store_true", default=None,
                       help="verify and plan only; change and send nothing")
    s = sub.add_parser("status", help="show the agent's state")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _settings(args: argparse.Namespace, **overrides: object) -> DaemonSettings:
    return load_settings(args.config, os.environ,
                         overrides={"state_dir": args.state_dir, **overrides})


def _agent(settings: DaemonSettings) -> Agent:
    identity = load_enrollment(settings.state_dir)
    server = settings.server or identity.server
    context = client_context(identity.tls_ca_file, identity.cert_file, identity.key_file)
    return Agent(settings, identity, Transport(server, context,
                                                timeout=settings.request_timeout))


def _enroll(args: argparse.Namespace) -> int:
    settings = _settings(args)
    transport = Transport(args.server, client_context(args.ca_file))
    now = int(time.time())
    verifier = attested_roots(
        fingerprint=args.roots_fingerprint, channel=settings.channel,
        chaincode=settings.chaincode, now=now, min_endorsers=settings.min_endorsers,
    ) if args.roots_fingerprint else None
    try:
        done = enroll(transport, host_id=args.host_id, token=args.token,
                      state_dir=settings.state_dir,
                      fingerprints=parse_fingerprints(args.fingerprint),
                      tls_ca_pem=args.ca_file.read_bytes(), verifier=verifier, now=now)
    except (EnrollmentError, TransportError) as exc:
        return _fail(f"enrollment of host {args.host_id} with {args.server} failed: {exc}", 1)
    print(f"enrolled {done.host_id} ({done.msp_id}); pinned roots of"
          f" {', '.join(done.roots.organizations)}; state in {settings.state_dir}")
    return 0


def _run(args: argparse.Namespace, *, once: bool) -> int:
    agent = _agent(_settings(args, dry_run=args.dry_run))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current step", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return agent.run(stop, once=once)


def _status(args: argparse.Namespace) -> int:
    status = _agent(_settings(args)).status()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    for key, value in status.items():
        if key == "assignments":
            print("assignments:" + ("" if value else " none"))
            for item in value:
                print(f"  {item['deployment']}: {item['state']}")
        else:
            print(f"{key}: {value if value not in ('', None) else '-'}")
    return 0


def _fail(message: str, status: int) -> int:
    log.error("%s", message)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. Returns the exit status (module docstring)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "enroll":
            return _enroll(args)
        if args.command == "status":
            return _status(args)
        return _run(args, once=args.command == "once")
    except LockError as exc:
        return _fail(str(exc), 3)
    except (ConfigError, EnrollmentError) as exc:
        return _fail(str(exc), 2)
    except AgentError as exc:
        return _fail(str(exc), 1)


if __name__ == "__main__":
    raise SystemExit(main())
