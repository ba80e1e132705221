"""``patchledger dispatch run|plan|audit``: the dispatcher process, rollout planning, and the
audit of a rollout's deployment statuses against the hosts' signatures.

The network is the one this machine runs (``PATCHLEDGER_STATE_DIR``, ``PATCHLEDGER_PORT_BASE``:
its peers and TLS roots come from its configuration and state); the identity is an operator
of the organization (``--msp-dir``, default ``$PATCHLEDGER_MSP_DIR``). The dispatcher's state
directory (``--state-dir``, default ``$PATCHLEDGER_DISPATCH_DIR`` or
``<network state>/../dispatch/<org>``) holds its checkpoint, plans, orders and inbox.

    patchledger dispatch plan --org itops --rollout R-1 --patch P-1 --canary 5% \\
        --wave 25% --wave group:db --budget 10% --concurrency 25% --soak 60
    patchledger dispatch run --org itops
    patchledger dispatch audit --org itops --rollout R-1 [--history]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from patchledger.app.dispatch.audit import audit_rollout
from patchledger.app.dispatch.connect import PeerEndpoint, local_peers, open_ledger
from patchledger.app.dispatch.dispatcher import Dispatcher, DispatchSettings, StepReport
from patchledger.app.dispatch.ledger import FabricLedger
from patchledger.app.dispatch.planner import PlanError, Quantity, RolloutRequest, WaveRequest
from patchledger.app.errors import UserError
from patchledger.app.fabric import EcdsaSigner, FabricError, Identity
from patchledger.network.config import NetworkConfig, config_from_env
from patchledger.network.topology import Org

__all__ = ["LocalOrg", "add_parser", "guard", "local_org", "operator_ledger"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalOrg:
    """An organization of the local network, with its peers and the dispatcher's directory."""

    config: NetworkConfig
    org: Org
    peers: list[PeerEndpoint]
    state_dir: Path

    @property
    def channel(self) -> str:
        """The application channel."""
        return self.config.topology.channel


def local_org(name: str, state_dir: str = "") -> LocalOrg:
    """The local network's organization ``name`` (short name or MSP id).

    Raises:
        UserError: the environment names no valid network, or no such organization.
    """
    try:
        config = config_from_env()
        org = config.topology.org(name)
    except (ValueError, KeyError) as exc:
        raise UserError(str(exc).strip("'\"")) from exc
    if org.is_orderer_org:
        raise UserError(f"{org.name} runs no peer: name a peer organization")
    default = os.environ.get("PATCHLEDGER_DISPATCH_DIR") or \
        config.state_dir.parent / "dispatch" / org.name
    return LocalOrg(config, org, local_peers(config), Path(state_dir or default))


def _identity(msp_dir: str, msp_id: str) -> tuple[Identity, EcdsaSigner]:
    path = msp_dir or os.environ.get("PATCHLEDGER_MSP_DIR", "")
    if not path:
        raise UserError("the operator's MSP directory is required (--msp-dir or "
                        "PATCHLEDGER_MSP_DIR)")
    try:
        return Identity.from_msp_dir(Path(path), msp_id), EcdsaSigner.from_msp_dir(Path(path))
    except FabricError as exc:
        raise UserError(f"cannot load the identity in {path}: {exc}") from exc


@contextmanager
def operator_ledger(args: argparse.Namespace) -> Iterator[tuple[LocalOrg, FabricLedger]]:
    """The organization and its operator's ledger adapter, from the common flags."""
    where = local_org(args.org, args.state_dir)
    identity, signer = _identity(args.msp_dir, where.org.msp_id)
    with open_ledger(identity, signer, where.peers, channel=where.channel) as ledger:
        yield where, ledger


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--org", required=True, help="organization (short name or MSP id)")
    parser.add_argument("--msp-dir", default="", help="operator MSP directory "
                        "(default $PATCHLEDGER_MSP_DIR)")
    parser.add_argument("--state-dir", default="", help="dispatcher state directory")


def _settings(args: argparse.Namespace, where: LocalOrg) -> DispatchSettings:
    others = [p.msp_id for p in where.peers if p.msp_id != where.org.msp_id]
    return DispatchSettings(batch_max_reports=args.batch_size,
                            batch_max_latency=args.batch_latency, interval=args.interval,
                            offline_after=args.offline_after,
                            report_endorsing=(where.org.msp_id, *others[:1]),
                            batches_in_flight=args.in_flight)


def _cmd_run(args: argparse.Namespace) -> int:
    with operator_ledger(args) as (where, ledger):
        dispatcher = Dispatcher(ledger, where.state_dir, where.org.msp_id,
                                _settings(args, where))
        stop = threading.Event()
        if args.duration:
            threading.Timer(args.duration, stop.set).start()

        def show(report: StepReport) -> None:
            for d in report.decisions:
                print(json.dumps({"rollout_id": d.rollout_id, "action": d.action,
                                  "reason": d.reason}), flush=True)
            if args.once:
                stop.set()

        print(f"dispatching for {where.org.msp_id} from {where.state_dir}", flush=True)
        try:
            dispatcher.run(stop, on_step=show)
        finally:
            stop.set()
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    with operator_ledger(args) as (_, ledger):
        report = audit_rollout(ledger, args.rollout, history=args.history)
    print(json.dumps(report.to_dict(), indent=2))
    return 0 if report.ok else 1


def _wave(text: str) -> WaveRequest:
    if text.startswith("group:"):
        return WaveRequest(groups=tuple(g for g in text[6:].split(",") if g))
    quantity = Quantity.parse(text, "--wave")
    if not quantity.percent:
        raise PlanError(f"--wave {text!r}: give a percentage of the fleet (25%) or group:NAME")
    return WaveRequest(percent=quantity.value)


def _cmd_plan(args: argparse.Namespace) -> int:
    request = RolloutRequest(
        args.rollout, args.patch, canary=Quantity.parse(args.canary, "--canary"),
        waves=tuple(_wave(w) for w in args.wave), target_groups=tuple(args.group),
        disruption_budget=Quantity.parse(args.budget, "--budget"),
        max_concurrency=Quantity.parse(args.concurrency, "--concurrency"),
        soak_seconds=args.soak, failure_threshold_pct=args.threshold,
        wave_timeout_seconds=args.wave_timeout, rollback_on_failure=not args.no_rollback)
    with operator_ledger(args) as (where, ledger):
        plan = Dispatcher(ledger, where.state_dir, where.org.msp_id).create_rollout(request)
    print(json.dumps({"rollout_id": plan.rollout_id,
                      "waves": [{"label": w.label, "hosts": len(w.hosts),
                                 "disruption_budget": w.disruption_budget,
                                 "max_concurrency": w.max_concurrency} for w in plan.waves]}))
    return 0


def guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``func`` with the Fabric client's errors shown as one line (exit status 2)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except FabricError as exc:
            raise UserError(str(exc)) from exc
    return run


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``dispatch run``, ``dispatch plan`` and ``dispatch audit``."""
    dispatch = subparsers.add_parser("dispatch", help="staged rollouts: plan, run the dispatcher")
    sub = dispatch.add_subparsers(dest="dispatch_command", metavar="ACTION", required=True)

    run = sub.add_parser("run", help="run the dispatcher process of an organization")
    _common(run)
    run.add_argument("--batch-size", type=int, default=200, help="reports per batch (1-500)")
    run.add_argument("--batch-latency", type=float, default=1.0, help="seconds a report waits")
    run.add_argument("--in-flight", type=int, default=1,
                     help="report batches submitted at once (of disjoint hosts; 1-8)")
    run.add_argument("--interval", type=float, default=0.5, help="seconds between steps")
    run.add_argument("--offline-after", type=float, default=60.0,
                     help="a host silent this long is offline")
    run.add_argument("--duration", type=float, default=0.0, help="stop after N seconds")
    run.add_argument("--once", action="store_true", help="one step, then exit")
    run.set_defaults(func=guard(_cmd_run))

    plan = sub.add_parser("plan", help="plan a rollout and create it on the ledger")
    _common(plan)
    plan.add_argument("--rollout", required=True, help="rollout id")
    plan.add_argument("--patch", required=True, help="APPROVED patch id")
    plan.add_argument("--canary", default="1", help="canary size: hosts or %% of the fleet")
    plan.add_argument("--wave", action="append", default=[],
                      help="a later wave: N%% of the fleet or group:NAME[,NAME] (repeatable)")
    plan.add_argument("--group", action="append", default=[], help="only hosts of this group")
    plan.add_argument("--budget", default="10%", help="disruption budget per wave (N or N%%)")
    plan.add_argument("--concurrency", default="25%", help="max concurrency per wave")
    plan.add_argument("--soak", type=int, default=0, help="soak seconds after each wave")
    plan.add_argument("--threshold", type=int, default=0, help="failure threshold %%")
    plan.add_argument("--wave-timeout", type=int, default=3600,
                      help="seconds before silent hosts make a wave inconclusive")
    plan.add_argument("--no-rollback", action="store_true", help="halt without rolling back")
    plan.set_defaults(func=guard(_cmd_plan))

    audit = sub.add_parser("audit", help="check a rollout's deployment statuses against the "
                           "hosts' signatures (exit 1 when one does not verify)")
    _common(audit)
    audit.add_argument("--rollout", required=True, help="rollout id")
    audit.add_argument("--history", action="store_true",
                       help="check every version of each deployment too (GetHistory)")
    audit.set_defaults(func=guard(_cmd_audit))
