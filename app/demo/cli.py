"""``patchledger demo up|down|status|totp``: the demo's process edge (module
:mod:`patchledger.app.demo`).

    patchledger demo up [--fresh] [--hosts N]   # everything, then the scenario (idempotent)
    patchledger demo status                     # the demo's processes and addresses
    patchledger demo totp --user secops/sam     # a TOTP code of a demo user
    patchledger demo down [--reset]             # stop what the demo started (by pid)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from patchledger.app.demo import processes, scenario
from patchledger.app.demo.credentials import Credentials
from patchledger.app.demo.scenario import failing_host
from patchledger.app.demo.settings import ORGS, DemoSettings, settings_from_env
from patchledger.app.errors import UserError
from patchledger.app.fabric import FabricError
from patchledger.network.config import config_from_env
from patchledger.network.errors import NetworkError
from patchledger.network.manager import Manager

__all__ = ["add_parser", "run_up"]

LABELS = {"secops": "SecOps", "itops": "ITOps", "compliance": "Compliance"}


class _Clock:
    """Progress lines with the seconds since the start."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, line: str) -> None:
        print(f"[demo {time.monotonic() - self.t0:6.1f}s] {line}", flush=True)


def _settings(args: argparse.Namespace) -> DemoSettings:
    return settings_from_env(dict(os.environ), hosts=getattr(args, "hosts", None))


def _manager(settings: DemoSettings, progress: Callable[[str], None]) -> Manager:
    try:
        return Manager(config_from_env(dict(settings.network_env)), progress)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _step(progress: Callable[[str], None], name: str, func: Callable[[], Any]) -> Any:
    progress(f"== {name}")
    try:
        return func()
    except (NetworkError, FabricError) as exc:
        raise UserError(f"step {name!r}: {exc}") from exc
    except UserError as exc:
        raise UserError(f"step {name!r}: {exc}") from exc


def reset_everything(settings: DemoSettings, progress: Callable[[str], None]) -> None:
    """Stop the demo's processes and the network; delete the network's and the demo's state."""
    processes.stop_all(settings, progress)
    _manager(settings, progress).reset()
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    progress(f"deleted the network's state and {settings.state_dir}")


def run_up(settings: DemoSettings, progress: Callable[[str], None], *, fresh: bool = False
           ) -> scenario.Outcome:
    """Bring everything up and run the scenario (module docstring of
    :mod:`~patchledger.app.demo.scenario`); the outcome read from the ledger.

    Raises:
        UserError: a step failed (naming the step) or the outcome is not the expected one.
    """
    if fresh:
        _step(progress, "start over (--fresh)", lambda: reset_everything(settings, progress))
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    summary = _step(progress, "network", lambda: _manager(settings, progress).up())
    progress(summary)
    creds = Credentials(settings.credentials_file)
    ctx = scenario.Context(settings, creds, progress)
    _step(progress, "dispatcher identity", lambda: scenario.dispatcher_identity(ctx))

    def apps() -> None:
        for org in ORGS:
            scenario.init_app(ctx, org)
        processes.ensure_all_running(
            settings, [processes.app_process(settings, org) for org in ORGS], progress)

    _step(progress, "apps", apps)

    def users() -> None:
        for org in ORGS:
            scenario.make_users(ctx, org)

    _step(progress, "users", users)
    fleet = processes.fleet_process(settings, [scenario.failing_host(settings)])
    _step(progress, f"simulated fleet ({settings.hosts} ITOps hosts)",
          lambda: processes.ensure_running(
              settings, fleet, progress, timeout=settings.timeout,
              ready=lambda: processes.log_has(settings, fleet.name, "simulated hosts of")))
    for name, func in (("inventories", scenario.store_inventories),
                       ("feeds: KEV matched against the fleet", scenario.import_feeds),
                       ("patch proposed", scenario.propose_patch),
                       ("test evidence", scenario.attach_evidence),
                       ("approvals by two organizations", scenario.approve_patch)):
        _step(progress, name, lambda func=func: func(ctx))  # type: ignore[misc]
    dispatcher = processes.dispatcher_process(settings)

    def rollout() -> None:
        # the rollout is created before the dispatcher runs: a running dispatcher creates a
        # planned rollout it does not find on the ledger itself, and the two submissions race
        if not scenario.rollout_planned(ctx):
            processes.stop(settings, dispatcher, progress)
        scenario.create_rollout(ctx)
        processes.ensure_running(
            settings, dispatcher, progress,
            ready=lambda: processes.log_has(settings, dispatcher.name, "dispatching for"))

    _step(progress, "rollout planned; ITOps' dispatcher", rollout)
    _step(progress, "canary, then waves", lambda: scenario.watch_rollout(
        ctx, alive=lambda: processes.check_alive(settings, [dispatcher, fleet])))
    outcome: scenario.Outcome = _step(progress, "outcome on the ledger",
                                      lambda: scenario.read_outcome(ctx))
    counts: dict[str, int] = {}
    for state in outcome.deployments.values():
        counts[state] = counts.get(state, 0) + 1
    progress(f"rollout {outcome.rollout_status}; patch {outcome.patch_state}; deployments "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + f"; {outcome.failing_host} (health check failing) "
               f"{outcome.deployments.get(outcome.failing_host)}")
    if not outcome.ok:
        raise UserError(f"unexpected outcome: {outcome}")
    facts = _step(progress, "compliance facts", lambda: scenario.compliance_facts(ctx))
    reports = _step(progress, "compliance report", lambda: scenario.compliance_report(ctx))
    _print_compliance(facts, reports, settings)
    return outcome


def _print_compliance(facts: dict[str, Any], reports: dict[str, Path],
                      settings: DemoSettings) -> None:
    v, p, r = facts["vulnerability"], facts["patch"], facts["rollout"]["progress"]
    check = facts["ledger_verification"]
    print("\nCompliance facts (from the Compliance app's read model):")
    print(f"  {v['id']}: {v['severity']}, CISA KEV (due {v['kev_due_date']}), state {v['state']}")
    print(f"  patch {p['id']}: {p['state']}, approved by {', '.join(p['approved_by'])}")
    for wave in r.get("waves", []):
        print(f"  rollout {r['rollout_id']} wave {wave['wave']}: " + ", ".join(
            f"{n} {s}" for s, n in sorted(wave["deployments"].items())))
    print(f"  ledger verified by Compliance: ok={check['ok']}, "
          f"{check['blocks_checked']} blocks checked")
    print(f"  written to {settings.state_dir / 'compliance-facts.json'}")
    for fmt, path in sorted(reports.items()):
        print(f"  compliance report ({fmt}): {path}")
    print(f"  the same report in Compliance's UI: {settings.app_url('compliance')}/ui/reports")


def _ui_url(settings: DemoSettings, org: str) -> str:
    """The app's web UI if this build serves one (``/ui``), else its API documentation."""
    base = settings.app_url(org)
    try:
        with urllib.request.urlopen(f"{base}/ui", timeout=5):  # noqa: S310 (our own app)
            return f"{base}/ui"
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return f"{base}/ui"
    except OSError:
        pass
    return f"{base}/api/v1/docs"


def print_summary(settings: DemoSettings, elapsed: float | None = None) -> None:
    """The addresses, the demo logins, what to look at and how to stop."""
    creds = Credentials(settings.credentials_file)
    cmd = ".venv/bin/patchledger"
    took = f" (this run: {elapsed:.0f} s)" if elapsed is not None else ""
    print(f"\npatchledger demo is running{took}.\n")
    for org in ORGS:
        print(f"  {LABELS[org]:<11} {_ui_url(settings, org):<40} API {settings.app_url(org)}"
              "/api/v1")
    print(f"\nDemo logins (stored in {settings.credentials_file}, mode 0600):")
    for user in sorted(creds.users.values(), key=lambda u: (ORGS.index(u.org), u.username)):
        second = f"TOTP: {cmd} demo totp --user {user.key}" if user.totp_secret else "no TOTP"
        print(f"  {user.key:<22} {user.role:<9} password {user.password}   {second}")
    secops, itops, comp = (settings.app_url(o) for o in ORGS)
    print(f"""
What to look at (in each organization's UI, logged in as its users):
  - SecOps ({secops}/ui): Vulnerabilities -> {scenario.VULN_ID} (CISA KEV) and its findings
    on the ITOps hosts; Patches -> {scenario.PATCH_ID}: artifact digest, test evidence, the
    two signed approvals.
  - ITOps ({itops}/ui): Rollouts -> {scenario.ROLLOUT_ID}: the canary, then the waves; every
    host VERIFIED but {failing_host(settings)}, whose health check fails: ROLLED_BACK.
  - Compliance ({comp}/ui): Audit (history of every record, blocks, ledger verification,
    evidence export) and Reports (the KEV remediation report, HTML/CSV/PDF).
  - The API with a demo token: PATCHLEDGER_API_URL={itops} \\
      PATCHLEDGER_API_TOKEN=<token from the credentials file> {cmd} rollout list
  Logs: {settings.layout.root / 'logs'}; the tour: docs/tour.md.

Status: {cmd} demo status
Stop:   {cmd} demo down          (ledger and state kept; `./scripts/demo.sh` starts again)
Delete: {cmd} demo down --reset  (or start over: ./scripts/demo.sh --fresh)
""")


def _cmd_up(args: argparse.Namespace) -> int:
    settings = _settings(args)
    clock = _Clock()
    run_up(settings, clock, fresh=args.fresh)
    print_summary(settings, time.monotonic() - clock.t0)
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    settings = _settings(args)
    clock = _Clock()
    if args.reset:
        reset_everything(settings, clock)
        return 0
    stopped = processes.stop_all(settings, clock)
    for name in _manager(settings, clock).down():
        stopped.append(name)
    clock(f"stopped {len(stopped)} processes; the ledger and the demo's state are kept")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    rows = processes.status(settings)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        print(f"{row['name']:<18} {row['state']:<8} pid {row['pid'] or '-':<8} {row['url']}")
    print("network: .venv/bin/patchledger network status")
    return 0 if all(r["state"] == "running" for r in rows) else 1


def _cmd_totp(args: argparse.Namespace) -> int:
    settings = _settings(args)
    creds = Credentials(settings.credentials_file)
    user = creds.find(args.user)
    code = user.fresh_code()
    creds.save()
    left = 30 - int(time.time()) % 30
    print(code)
    print(f"{user.key}: valid about {left + 30} s; a code is accepted once", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo up|down|status|totp``."""
    demo = subparsers.add_parser("demo", help="run the whole product on this machine")
    sub = demo.add_subparsers(dest="demo_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start everything and run the scenario (idempotent)")
    up.add_argument("--fresh", action="store_true",
                    help="delete the network's and the demo's state first")
    up.add_argument("--hosts", type=int, default=None,
                    help="simulated ITOps hosts (default $PATCHLEDGER_DEMO_HOSTS or 12)")
    up.set_defaults(func=_cmd_up)
    down = sub.add_parser("down", help="stop what the demo started (by pid), and the network")
    down.add_argument("--reset", action="store_true", help="also delete all state")
    down.set_defaults(func=_cmd_down)
    status = sub.add_parser("status", help="the demo's processes and addresses")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_cmd_status)
    totp = sub.add_parser("totp", help="a TOTP code of a demo user")
    totp.add_argument("--user", required=True, help="ORG/USERNAME or ORG/ROLE, e.g. secops/sam")
    totp.set_defaults(func=_cmd_totp)
