"""``patchledger fleet simulate``: N simulated hosts of an organization, the real agent code,
in one process, against the local network and the organization's dispatcher.

The hosts are enrolled once (CA-issued identities, ``EnrollHost`` by the operator, kept in
``--fleet-dir``), pin the channel's roots from an attested ``AttestChannelRoots`` checked
against the fingerprint of the network's CA roots (what an administrator gives at enrollment),
then poll the relay over the dispatcher's state directory until ``--duration`` passes.

    patchledger fleet simulate --org itops --hosts 50 --failure-rate 0.05 \\
        --groups web,db --window db='Sat 02:00-04:00' --artifact patch.tar.gz --duration 120

``patchledger fleet reconcile`` compares every simulated host's agent state on disk with its
deployment of a rollout on the ledger (:mod:`app.fleet.reconcile`): exit status 0 when nothing
was lost, duplicated or disagrees, 1 otherwise (the JSON summary names the hosts).

    patchledger fleet reconcile --org itops --rollout R-1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import threading
import time
from pathlib import Path

from patchledger.agent.attestation import verify_channel_roots
from patchledger.app.dispatch.board import Board
from patchledger.app.dispatch.cli import LocalOrg, guard, operator_ledger
from patchledger.app.dispatch.relay import AgentRelay, ArtifactDirectory
from patchledger.app.errors import UserError
from patchledger.app.fabric import CAClient, Contract, EcdsaSigner, Identity
from patchledger.app.fabric.attest import attest_channel_roots
from patchledger.app.fleet.enroll import enroll_fleet
from patchledger.app.fleet.reconcile import reconcile_fleet
from patchledger.app.fleet.simulator import Fleet, host_specs
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from patchledger.chaincode.lifecycle.trust import OrgTrust
from patchledger.network.config import StateLayout

__all__ = ["add_parser", "pin_roots"]


def pin_roots(contract: Contract, channel: str, organizations: list[str],
              fingerprint: str) -> OrgTrust:
    """The roots an agent pins at enrollment: an attested ``AttestChannelRoots`` endorsed by
    ``organizations``' peers, checked against the administrator's ``fingerprint``.

    Raises:
        AttestationError: the bundle does not verify or has another fingerprint.
        EndorseError: a peer refused or could not be reached.
    """
    nonce = secrets.token_hex(32)
    bundle = attest_channel_roots(contract, nonce, endorsing_organizations=organizations)
    return verify_channel_roots(bundle, channel=channel, chaincode=contract.chaincode_name,
                                nonce=nonce, fingerprint=fingerprint, now=int(time.time()))


def admin_fingerprint(where: LocalOrg) -> str:
    """The fingerprint of the local network's organization roots (its CA certificates)."""
    layout = StateLayout(where.config.state_dir)
    return roots_fingerprint(OrgTrust.from_pem(
        {o.msp_id: layout.ca_cert(o.name).read_bytes() for o in where.config.topology.peer_orgs}))


def _windows(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        group, sep, window = item.partition("=")
        if not sep or not group or not window:
            raise UserError(f"--window {item!r}: expected GROUP=WINDOW, e.g. db='Sat 02:00-04:00'")
        out[group] = window
    return out


def _cmd_simulate(args: argparse.Namespace) -> int:
    specs = host_specs(args.hosts, prefix=args.prefix,
                       groups=[g for g in args.groups.split(",") if g],
                       failure_rate=args.failure_rate, offline_rate=args.offline_rate,
                       seed=args.seed, windows=_windows(args.window))
    unknown = set(args.fail_host) - {s.host_id for s in specs}
    if unknown:
        raise UserError(f"--fail-host {', '.join(sorted(unknown))}: no such host in this fleet")
    specs = [dataclasses.replace(s, fails_health=True) if s.host_id in args.fail_host else s
             for s in specs]
    with operator_ledger(args) as (where, ledger):
        layout = StateLayout(where.config.state_dir)
        admin = layout.user_dir(where.org.name, "admin") / "msp"
        ca = CAClient(f"https://{where.org.ca.address}",
                      tls_ca_certificate=layout.ca_cert(where.org.name).read_bytes())
        fleet_dir = _fleet_dir(args, where)
        hosts = enroll_fleet(specs, fleet_dir, ca=ca,
                             registrar=Identity.from_msp_dir(admin, where.org.msp_id),
                             registrar_signer=EcdsaSigner.from_msp_dir(admin),
                             operator=ledger, channel=where.channel, workers=args.workers)
        orgs = [p.msp_id for p in where.peers]
        roots = pin_roots(ledger.contract, where.channel, orgs, admin_fingerprint(where))
        artifacts = ArtifactDirectory(where.state_dir / "artifacts")
        if args.artifact:
            print(f"artifact {artifacts.put(Path(args.artifact).read_bytes())}", flush=True)
        relay = AgentRelay(Board(where.state_dir), ledger.contract, artifacts, orgs)
        fleet = Fleet(hosts, relay, roots, workers=args.workers)
        print(f"{len(hosts)} simulated hosts of {where.org.msp_id} polling "
              f"{where.state_dir}", flush=True)
        stop = threading.Event()
        timer = threading.Timer(args.duration, stop.set)
        timer.start()
        try:
            fleet.run(stop, args.interval)
        finally:
            timer.cancel()
        print(json.dumps({"hosts": len(hosts), "outcomes": dict(fleet.outcomes),
                          "verified": len(fleet.verified_at)}))
    return 0


def _fleet_dir(args: argparse.Namespace, where: LocalOrg) -> Path:
    return Path(args.fleet_dir or where.state_dir.parent / f"fleet-{where.org.name}")


def _cmd_reconcile(args: argparse.Namespace) -> int:
    with operator_ledger(args) as (where, ledger):
        fleet_dir = _fleet_dir(args, where)
        if not fleet_dir.is_dir():
            raise UserError(f"no simulated fleet in {fleet_dir} (--fleet-dir)")
        hosts = sorted(p.name for p in fleet_dir.iterdir() if (p / "enrolled").exists())
        result = reconcile_fleet(ledger, fleet_dir, hosts, args.rollout)
    print(json.dumps(result.summary(), indent=1))
    return 0 if result.ok else 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``fleet simulate``."""
    fleet = subparsers.add_parser("fleet", help="simulated hosts running the real agent code")
    sub = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    sim = sub.add_parser("simulate", help="run N simulated agents against the dispatcher")
    sim.add_argument("--org", required=True, help="organization (short name or MSP id)")
    sim.add_argument("--msp-dir", default="", help="operator MSP directory (EnrollHost)")
    sim.add_argument("--state-dir", default="", help="the dispatcher's state directory")
    sim.add_argument("--fleet-dir", default="", help="the simulated hosts' directories")
    sim.add_argument("--hosts", type=int, required=True, help="number of hosts")
    sim.add_argument("--prefix", default="sim", help="host id prefix")
    sim.add_argument("--groups", default="fleet", help="groups, dealt round-robin")
    sim.add_argument("--window", action="append", default=[],
                     help="GROUP=WINDOW maintenance window of a group's hosts (repeatable)")
    sim.add_argument("--failure-rate", type=float, default=0.0, help="share failing health")
    sim.add_argument("--offline-rate", type=float, default=0.0, help="share never polling")
    sim.add_argument("--fail-host", action="append", default=[], metavar="HOST_ID",
                     help="this host's health check fails (repeatable; besides the rate)")
    sim.add_argument("--seed", default="fleet", help="seed of the failing/offline draw")
    sim.add_argument("--artifact", default="", help="artifact file to serve (stored by digest)")
    sim.add_argument("--workers", type=int, default=32,
                     help="agent threads (the agents waiting together share one attestation)")
    sim.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    sim.add_argument("--duration", type=float, default=60.0, help="seconds to run")
    sim.set_defaults(func=guard(_cmd_simulate))

    rec = sub.add_parser("reconcile", help="compare the simulated hosts' agent state with the "
                         "ledger's deployments of a rollout")
    rec.add_argument("--org", required=True, help="organization (short name or MSP id)")
    rec.add_argument("--msp-dir", default="", help="an MSP directory of the organization")
    rec.add_argument("--state-dir", default="", help="the dispatcher's state directory")
    rec.add_argument("--fleet-dir", default="", help="the simulated hosts' directories")
    rec.add_argument("--rollout", required=True, help="rollout id")
    rec.set_defaults(func=guard(_cmd_reconcile))
