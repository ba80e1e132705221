"""The demo scenario's steps, in order, each small, named and idempotent (it looks at the
ledger or the apps first and does only what is not done yet).

Setup: the apps' databases and bootstrap admins (as ``patchledger app init`` makes them), the
demo users of every organization (through the admin's API session), the ITOps dispatcher's
operator identity (from ITOps' Fabric CA). Scenario, through the apps' REST API unless said:

1. ``inventories``: the simulated ITOps hosts' dpkg inventories stored in SecOps' app;
2. ``feeds``: SecOps' feed user imports the shared KEV catalog and Debian's DSA list: the KEV
   vulnerability :data:`VULN_ID` is matched against the inventories and recorded on the
   ledger;
3. ``propose``: SecOps' operator uploads the artifact and proposes the patch;
4. ``evidence``: ITOps' operator attaches the test report's digest (TESTED);
5. ``approve``: SecOps' and Compliance's approvers approve with a fresh TOTP code each
   (statements signed with their own keys; APPROVED);
6. ``rollout``: ITOps' dispatcher plans a canary and two waves and creates the rollout;
7. ``watch``: the dispatcher and the simulated fleet (the real agent code) carry it out;
   the host whose health check fails rolls back;
8. ``outcome``: the ledger's deployments checked: VERIFIED on every host but the failing
   one, which is ROLLED_BACK; the rollout COMPLETED;
9. ``compliance``: the compliance facts read from the Compliance app's read model.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchledger.app.demo.credentials import Credentials, DemoUser
from patchledger.app.demo.settings import FLEET_ORG, ORGS, DemoSettings
from patchledger.app.dispatch.connect import local_peers, open_ledger
from patchledger.app.dispatch.dispatcher import Dispatcher
from patchledger.app.dispatch.ledger import FabricLedger
from patchledger.app.dispatch.planner import (
    HostInfo,
    Quantity,
    RolloutPlan,
    RolloutRequest,
    WaveRequest,
    plan_rollout,
)
from patchledger.app.dispatch.relay import ArtifactDirectory
from patchledger.app.errors import UserError
from patchledger.app.fabric import Attribute, CAClient, EcdsaSigner, Identity, RegistrationRequest
from patchledger.app.fleet.simulator import artifact_of, host_specs
from patchledger.app.web.client import ApiClient, ApiError
from patchledger.app.web.config import ORGANIZATIONS, local_network_values
from patchledger.network.config import StateLayout, config_from_env

Progress = Callable[[str], None]

#: The KEV entry the demo's inventories are exposed to: Cacti's unauthenticated command
#: injection (in CISA's KEV catalog; Debian fixed it in DSA-5298-1, cacti 1.2.16+ds1-2+deb11u1).
VULN_ID = "CVE-2022-46169"
PATCH_ID = "DEMO-cacti-1.2.16-deb11u1"
ROLLOUT_ID = "DEMO-R-cacti"
#: A host's packages (``dpkg-query -W``): cacti below the DSA-5298-1 fix.
INVENTORY = ("cacti 1.2.16+ds1-2\nopenssl 1.1.1n-0+deb11u3\nbash 5.1-2+deb11u1\n"
             "nginx 1.18.0-6.1+deb11u3\n")
#: The groups the fleet's hosts are dealt into (round-robin) and the rollout targets.
GROUPS = ("web", "db")
#: The demo users of each organization (besides the bootstrap admin): username -> role.
USERS: dict[str, dict[str, str]] = {
    "secops": {"sam": "approver", "sec-operator": "operator", "feed-bot": "feed"},
    "itops": {"ivy": "approver", "ops-operator": "operator"},
    "compliance": {"cora": "approver", "audrey": "auditor", "comp-operator": "operator"},
}
APPROVERS = ("secops", "compliance")


def artifact() -> bytes:
    """The patch artifact: a tar.gz the simulated hosts' file-tree backend applies."""
    return artifact_of({"VERSION": b"cacti 1.2.16+ds1-2+deb11u1\n",
                        "NOTES": b"DSA-5298-1: fixes CVE-2022-46169 (KEV)\n"})


# ---------------------------------------------------------------------------- the demo's HTTP


class _Session:
    """A browser-like session of one user on one app (cookies and the CSRF token)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""

    def post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(  # noqa: S310 (the demo's own http://127.0.0.1 app)
            f"{self.base_url}/api/v1{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "X-CSRFToken": self.csrf})
        try:
            with self.opener.open(req, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise ApiError(f"POST {path} on {self.base_url}: HTTP {exc.code}: {detail}",
                           status=exc.code) from None
        except OSError as exc:
            raise ApiError(f"POST {path} on {self.base_url}: no answer: {exc}") from None


def login_and_token(base_url: str, user: DemoUser) -> str:
    """Log ``user`` in (password, and a fresh TOTP code if the role has one) and make an API
    token; its secret.

    Raises:
        ApiError: the app refused.
    """
    session = _Session(base_url)
    body = {"username": user.username, "password": user.password}
    if user.totp_secret:
        body["totp"] = user.fresh_code()
    session.csrf = session.post("/auth/login", body)["csrf_token"]
    secret: str = session.post("/tokens", {"name": "patchledger demo"})["secret"]
    return secret


@dataclass
class Context:
    """What the steps share: the settings, the credentials and progress output."""

    settings: DemoSettings
    credentials: Credentials
    progress: Progress
    timings: list[tuple[str, float]] = field(default_factory=list)

    def api(self, org: str, role: str) -> ApiClient:
        """``org``'s app as its demo user of ``role``.

        Raises:
            UserError: no such demo user yet, or it has no token.
        """
        user = self.credentials.find(f"{org}/{role}")
        if not user.token:
            raise UserError(f"demo user {user.key} has no API token yet")
        return ApiClient(self.settings.app_url(org), user.token)

    def wait(self, what: str, check: Callable[[], bool], timeout: float | None = None) -> None:
        """Poll ``check`` until true.

        Raises:
            UserError: not true within the timeout (naming ``what``).
        """
        limit = self.settings.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not check():
            if time.monotonic() > deadline:
                raise UserError(f"timed out after {limit:.0f} s waiting for {what}")
            time.sleep(0.4)

    @contextmanager
    def ledger(self) -> Iterator[FabricLedger]:
        """The ledger as ITOps' dispatcher identity (the operator)."""
        config = config_from_env(dict(self.settings.network_env))
        msp = self.settings.operator_msp
        with open_ledger(Identity.from_msp_dir(msp, ORGANIZATIONS[FLEET_ORG]),
                         EcdsaSigner.from_msp_dir(msp), local_peers(config),
                         channel=config.topology.channel) as ledger:
            yield ledger


# ---------------------------------------------------------------------------- setup


def app_config(settings: DemoSettings, org: str) -> Path:
    """Write ``org``'s app configuration file (the local network's peer, CA and registrar,
    its home, port and, for SecOps, the feeds); its path."""
    values: dict[str, Any] = local_network_values(org, dict(settings.network_env))
    values.update(org=org, home=str(settings.app_home(org)), host=settings.host,
                  port=settings.app_port(org))
    if org == "secops":
        values["feeds"] = [str(p) for p in settings.feed_sources]
    path = settings.app_home(org) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=1, sort_keys=True))
    return path


def init_app(ctx: Context, org: str) -> None:
    """``org``'s database and bootstrap admin, as ``patchledger app init`` makes them (once)."""
    from sqlalchemy import select

    from patchledger.app.db import open_engine
    from patchledger.app.web import auth
    from patchledger.app.web.config import config_from_file
    from patchledger.app.web.db import User, create_schema, session_factory

    config = config_from_file(app_config(ctx.settings, org), org)
    if ctx.credentials.get(f"{org}/admin") is not None:
        return
    engine = open_engine(config.database_url)
    try:
        create_schema(engine)
        with session_factory(engine)() as db:
            if db.scalar(select(User).limit(1)) is not None:
                raise UserError(f"{org}'s app database has users the demo did not make "
                                f"({config.database_url}): start over with --fresh")
            new = auth.create_user(db, config.security, "admin", "admin",
                                   issuer=f"patchledger {org}")
    finally:
        engine.dispose()
    ctx.credentials.add(DemoUser(org, "admin", "admin", new.password, new.totp_secret or ""))
    ctx.progress(f"{org}: app database and bootstrap admin created")


def make_users(ctx: Context, org: str) -> None:
    """The admin's API token, then each demo user of ``org`` (created by the admin, logged in
    once to make its API token)."""
    url = ctx.settings.app_url(org)
    admin = ctx.credentials.find(f"{org}/admin")
    if not admin.token:
        admin.token = login_and_token(url, admin)
        ctx.credentials.save()
    api = ApiClient(url, admin.token)
    for username, role in USERS[org].items():
        user = ctx.credentials.get(f"{org}/{username}")
        if user is None:
            made = api.request("POST", "/users", {"username": username, "role": role})
            user = ctx.credentials.add(DemoUser(org, username, role, made["password"],
                                                made.get("totp_secret") or ""))
        if not user.token:
            user.token = login_and_token(url, user)
            ctx.credentials.save()
    ctx.progress(f"{org}: users {', '.join(f'{u} ({r})' for u, r in USERS[org].items())}")


def dispatcher_identity(ctx: Context) -> None:
    """ITOps' dispatcher identity (``role=operator``) from ITOps' CA, as an MSP directory."""
    target = ctx.settings.operator_msp
    if (target / "signcerts").is_dir():
        return
    import secrets

    config = config_from_env(dict(ctx.settings.network_env))
    org = config.topology.org(FLEET_ORG)
    layout = StateLayout(config.state_dir)
    admin = layout.user_dir(org.name, "admin") / "msp"
    ca = CAClient(f"https://{org.ca.address}",
                  tls_ca_certificate=layout.ca_cert(org.name).read_bytes())
    name = f"demo-dispatcher-{secrets.token_hex(3)}"
    secret = ca.register(Identity.from_msp_dir(admin, org.msp_id), EcdsaSigner.from_msp_dir(admin),
                         RegistrationRequest(name, attributes=[
                             Attribute("role", "operator", ecert=True)]))
    ca.enroll(name, secret).write_msp_dir(target)
    ctx.progress(f"itops: dispatcher identity {name} (role=operator) enrolled")


def fleet_plan(settings: DemoSettings) -> tuple[list[str], RolloutRequest, RolloutPlan]:
    """The fleet's host ids, the rollout request and its plan over them (the planner is
    pure: the dispatcher plans the same from the enrolled hosts)."""
    specs = host_specs(settings.hosts, prefix="demo", groups=GROUPS)
    hosts = [HostInfo(s.host_id, s.groups) for s in specs]
    probe = RolloutRequest(ROLLOUT_ID, PATCH_ID, canary=Quantity(1),
                           waves=(WaveRequest(percent=50),), target_groups=GROUPS,
                           disruption_budget=Quantity(50, percent=True),
                           max_concurrency=Quantity(100, percent=True))
    last = plan_rollout(probe, hosts).waves[-1]
    # the threshold lets one failing host per wave through (the failing host is in the last)
    threshold = min(100, math.ceil(100 / max(1, len(last.hosts))))
    request = RolloutRequest(
        ROLLOUT_ID, PATCH_ID, canary=Quantity(1), waves=(WaveRequest(percent=50),),
        target_groups=GROUPS, disruption_budget=Quantity(50, percent=True),
        max_concurrency=Quantity(100, percent=True), failure_threshold_pct=threshold,
        wave_timeout_seconds=600)
    return [s.host_id for s in specs], request, plan_rollout(request, hosts)


def failing_host(settings: DemoSettings) -> str:
    """The host whose health check fails: the last one released in the last wave."""
    return fleet_plan(settings)[2].waves[-1].hosts[-1]


# ---------------------------------------------------------------------------- scenario


def _state(api: ApiClient, path: str) -> str | None:
    try:
        answer = api.request("GET", path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return str(answer.get("state")) if isinstance(answer, dict) else None


def _everywhere(ctx: Context, path: str, wanted: str) -> None:
    for org in ORGS:
        api = ctx.api(org, "operator")
        ctx.wait(f"{path} {wanted} in {org}'s read model",
                 lambda api=api: _state(api, path) == wanted)  # type: ignore[misc]


_AFTER_PROPOSED = ("PROPOSED", "TESTED", "APPROVED", "RELEASED", "SUPERSEDED")


def store_inventories(ctx: Context) -> None:
    """Step 1: each simulated host's dpkg inventory in SecOps' app (its matching input)."""
    api = ctx.api("secops", "operator")
    hosts, _, _ = fleet_plan(ctx.settings)
    for host_id in hosts:
        api.request("PUT", f"/hosts/{host_id}/packages", {
            "format": "dpkg", "content": INVENTORY, "release": "bullseye",
            "criticality": "high"})
    ctx.progress(f"inventories of {len(hosts)} ITOps hosts stored in SecOps' app "
                 "(cacti 1.2.16+ds1-2, below Debian's fix)")


def import_feeds(ctx: Context) -> None:
    """Step 2: SecOps' feed user imports the shared feeds; the KEV vulnerability is recorded
    and reaches every organization's read model."""
    if not ctx.settings.kev_catalog.is_file():
        raise UserError(f"no KEV catalog at {ctx.settings.kev_catalog}: set "
                        "PATCHLEDGER_FEEDS_DIR to the shared feeds")
    report = ctx.api("secops", "feed").request("POST", "/feeds/import")["report"]
    ctx.progress(f"feeds imported: {report.get('advisories', '?')} advisories, "
                 f"{report.get('findings', '?')} findings, {report.get('submitted', 0)} "
                 f"records submitted ({report.get('status')})")
    for org in ORGS:
        api = ctx.api(org, "operator")
        ctx.wait(f"{VULN_ID} in {org}'s read model",
                 lambda api=api: _state(api, f"/vulnerabilities/{VULN_ID}")  # type: ignore[misc]
                 is not None)
    vuln = ctx.api("itops", "operator").request("GET", f"/vulnerabilities/{VULN_ID}")["record"]
    if not vuln.get("known_exploited"):
        raise UserError(f"{VULN_ID} was recorded without its KEV flag: {vuln}")
    found = ctx.api("secops", "operator").request(
        "GET", f"/vulnerabilities/{VULN_ID}/findings", query={"limit": 200})["items"]
    ctx.progress(f"{VULN_ID} ({vuln.get('severity')}, CISA KEV, due {vuln.get('kev_due_date')})"
                 f" matched on {len(found)} hosts")


def propose_patch(ctx: Context) -> None:
    """Step 3: the artifact uploaded to SecOps' app (and given to the dispatcher's artifact
    directory, from which the simulated agents download it); the patch proposed."""
    data = artifact()
    ArtifactDirectory(ctx.settings.dispatch_dir / "artifacts").put(data)
    api = ctx.api("secops", "operator")
    if _state(api, f"/patches/{PATCH_ID}") is None:
        digest = hashlib.sha256(data).hexdigest()
        stored = api.request("POST", "/artifacts", data=data, headers={
            "X-Artifact-SHA256": digest, "Content-Type": "application/octet-stream"})
        api.request("POST", "/patches", {
            "patch_id": PATCH_ID, "title": "cacti security update (DSA-5298-1)",
            "vendor": "Debian", "artifact_sha256": stored["sha256"],
            "artifact_size": stored["size"],
            "artifact_uri": f"/api/v1/artifacts/{stored['sha256']}", "fixes": [VULN_ID],
            "targets": ["pkg:deb/debian/cacti"]})
    ctx.wait(f"{PATCH_ID} in SecOps' read model",
             lambda: _state(api, f"/patches/{PATCH_ID}") in _AFTER_PROPOSED)
    ctx.progress(f"patch {PATCH_ID} proposed by SecOps with its artifact "  # or found
                 f"(sha256 {hashlib.sha256(data).hexdigest()[:16]}...)")


def attach_evidence(ctx: Context) -> None:
    """Step 4: ITOps' operator attaches the test report's digest."""
    api = ctx.api("itops", "operator")
    ctx.wait(f"{PATCH_ID} in ITOps' read model",
             lambda: _state(api, f"/patches/{PATCH_ID}") in _AFTER_PROPOSED)
    if _state(api, f"/patches/{PATCH_ID}") == "PROPOSED":
        report = b"cacti 1.2.16+ds1-2+deb11u1: install, upgrade, rollback suites: 42 passed\n"
        api.request("POST", f"/patches/{PATCH_ID}/evidence", {
            "report_sha256": hashlib.sha256(report).hexdigest(),
            "uri": "https://ci.itops.example/runs/demo-cacti",
            "summary": "install, upgrade and rollback suites pass on bullseye", "passed": True})
    ctx.progress("test evidence attached by ITOps (TESTED)")


def _approved_by(api: ApiClient, msp_id: str) -> bool:
    """Whether the app's read model holds an approval of the patch by ``msp_id``."""
    items = api.request("GET", "/approvals", query={"patch_id": PATCH_ID})["items"]
    return any(_approval_org(a) == msp_id for a in items)


def approve_patch(ctx: Context) -> None:
    """Step 5: SecOps' and Compliance's approvers approve, each with a fresh TOTP code."""
    for org in APPROVERS:
        api = ctx.api(org, "approver")
        msp_id = ORGANIZATIONS[org]
        ctx.wait(f"{PATCH_ID} TESTED in {org}'s read model",
                 lambda api=api: _state(api, f"/patches/{PATCH_ID}")  # type: ignore[misc]
                 in ("TESTED", "APPROVED", "RELEASED"))
        if _approved_by(api, msp_id) or _state(api, f"/patches/{PATCH_ID}") != "TESTED":
            ctx.progress(f"{org} approved already")
            continue
        approver = ctx.credentials.find(f"{org}/approver")
        code = approver.fresh_code()
        ctx.credentials.save()
        api.request("POST", f"/patches/{PATCH_ID}/approve", {
            "totp": code, "comment": "reviewed the artifact digest and the test evidence",
            "valid_days": 7})
        ctx.progress(f"approved by {approver.username} of {org} (TOTP, signed statement)")
        for other in APPROVERS:  # the next approver's app sees this approval first
            if other != org:
                nxt = ctx.api(other, "approver")
                ctx.wait(f"{org}'s approval in {other}'s read model",
                         lambda nxt=nxt, msp_id=msp_id:  # type: ignore[misc]
                         _approved_by(nxt, msp_id))
    if _state(ctx.api("itops", "operator"), f"/patches/{PATCH_ID}") != "RELEASED":
        _everywhere(ctx, f"/patches/{PATCH_ID}", "APPROVED")
    ctx.progress("patch APPROVED by two organizations")


def _approval_org(item: dict[str, Any]) -> str:
    record = item.get("record") or item
    statement = record.get("statement") or {}
    inner = statement.get("statement", statement)
    return str(inner.get("msp_id") or record.get("msp_id") or "")


def rollout_planned(ctx: Context) -> bool:
    """Whether the dispatcher's state holds the demo rollout's plan."""
    with ctx.ledger() as ledger:
        dispatcher = Dispatcher(ledger, ctx.settings.dispatch_dir, ORGANIZATIONS[FLEET_ORG])
        return ROLLOUT_ID in dispatcher.plans()


def create_rollout(ctx: Context) -> None:
    """Step 6: ITOps' dispatcher plans the rollout (canary, then waves) and creates it."""
    _, request, expected = fleet_plan(ctx.settings)
    with ctx.ledger() as ledger:
        dispatcher = Dispatcher(ledger, ctx.settings.dispatch_dir, ORGANIZATIONS[FLEET_ORG])
        plan = dispatcher.plans().get(ROLLOUT_ID)
        if plan is None:
            plan = dispatcher.create_rollout(request)
    if [w.hosts for w in plan.waves] != [w.hosts for w in expected.waves]:
        raise UserError(f"rollout {ROLLOUT_ID} was planned over other hosts than the demo "
                        "fleet (other hosts enrolled in its groups?): start over with --fresh")
    ctx.progress(f"rollout {ROLLOUT_ID} created: " + ", ".join(
        f"{w.label} {len(w.hosts)} hosts" for w in plan.waves)
        + f"; failure threshold {plan.failure_threshold_pct}% per wave")


SETTLED = ("VERIFIED", "ROLLED_BACK", "FAILED", "SKIPPED")


def watch_rollout(ctx: Context, alive: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Step 7: wait for the rollout to end, showing each wave's progress; the final record.
    ``alive`` raises when a process the rollout needs has stopped.

    Raises:
        UserError: it halted or was rolled back, did not end in time, or ``alive`` raised.
    """
    last = ""
    deadline = time.monotonic() + ctx.settings.timeout
    with ctx.ledger() as ledger:
        while True:
            rollout = ledger.evaluate("GetRecord", "Rollout", ROLLOUT_ID)
            states = Counter(d["status"] for d in ledger.records("Deployment")
                             if d.get("rollout_id") == ROLLOUT_ID)
            line = (f"rollout {rollout['status']}, wave {int(rollout['current_wave']) + 1}"
                    f"/{len(rollout['waves'])}: " + ", ".join(
                        f"{n} {s}" for s, n in sorted(states.items())))
            if line != last:
                ctx.progress(line)
                last = line
            if rollout["status"] == "COMPLETED" and sum(
                    n for s, n in states.items() if s in SETTLED) == sum(states.values()):
                return dict(rollout)
            if rollout["status"] in ("HALTED", "ROLLED_BACK", "CANCELLED"):
                raise UserError(f"rollout {ROLLOUT_ID} ended {rollout['status']}: "
                                f"{rollout.get('reason', '')}")
            alive()
            if time.monotonic() > deadline:
                raise UserError(f"rollout {ROLLOUT_ID} still {rollout['status']} after "
                                f"{ctx.settings.timeout:.0f} s ({line}); see the logs of "
                                f"dispatch-itops and fleet-itops in {ctx.settings.state_dir}")
            time.sleep(1.0)


@dataclass(frozen=True)
class Outcome:
    """The scenario's outcome as the ledger holds it."""

    rollout_status: str
    patch_state: str
    deployments: dict[str, str]
    failing_host: str

    @property
    def ok(self) -> bool:
        """Every host VERIFIED but the failing one, which is ROLLED_BACK."""
        others = {h: s for h, s in self.deployments.items() if h != self.failing_host}
        return (self.rollout_status == "COMPLETED" and len(self.deployments) > 1
                and self.deployments.get(self.failing_host) == "ROLLED_BACK"
                and all(s == "VERIFIED" for s in others.values()))


def read_outcome(ctx: Context) -> Outcome:
    """Step 8: the rollout, the patch and every deployment read from the ledger."""
    with ctx.ledger() as ledger:
        rollout = ledger.evaluate("GetRecord", "Rollout", ROLLOUT_ID)
        patch = ledger.evaluate("GetRecord", "Patch", PATCH_ID)
        deployments = {d["host_id"]: d["status"] for d in ledger.records("Deployment")
                       if d.get("rollout_id") == ROLLOUT_ID}
    return Outcome(rollout["status"], patch["status"], deployments,
                   failing_host(ctx.settings))


def compliance_facts(ctx: Context) -> dict[str, Any]:
    """Step 9: the compliance facts from the Compliance app's read model (and its ledger
    verification), written to ``<demo>/compliance-facts.json``."""
    api = ctx.api("compliance", "operator")
    vuln = api.request("GET", f"/vulnerabilities/{VULN_ID}")
    patch = api.request("GET", f"/patches/{PATCH_ID}")
    approvals = api.request("GET", "/approvals", query={"patch_id": PATCH_ID})["items"]
    ctx.wait(f"{ROLLOUT_ID} COMPLETED in Compliance's read model",
             lambda: _state(api, f"/rollouts/{ROLLOUT_ID}") == "COMPLETED")
    progress = api.request("GET", f"/rollouts/{ROLLOUT_ID}/progress")
    verified = api.request("POST", "/audit/verify", {})
    facts = {
        "vulnerability": {"id": VULN_ID, "state": vuln.get("state"),
                          "known_exploited": vuln["record"].get("known_exploited"),
                          "kev_due_date": vuln["record"].get("kev_due_date"),
                          "severity": vuln["record"].get("severity")},
        "patch": {"id": PATCH_ID, "state": patch.get("state"),
                  "approved_by": sorted({_approval_org(a) for a in approvals})},
        "rollout": {"id": ROLLOUT_ID, "progress": progress},
        "ledger_verification": {k: verified.get(k) for k in ("ok", "blocks_checked",
                                                            "inconsistency")},
        "source": "the Compliance app's read model (GET /api/v1/...), ledger verified by "
                  "POST /api/v1/audit/verify",
    }
    path = ctx.settings.state_dir / "compliance-facts.json"
    path.write_text(json.dumps(facts, indent=1, sort_keys=True))
    return facts


def compliance_report(ctx: Context) -> dict[str, Path]:
    """Step 10: the KEV remediation report (app.reports) of the Compliance app's read model
    as of today, as HTML, JSON and PDF in ``<demo>/reports/``; the files by format (PDF is
    left out, with a progress line, when WeasyPrint cannot render here).

    Raises:
        UserError: the read model holds no policy yet.
    """
    from datetime import UTC, datetime

    from patchledger.app.reports import render
    from patchledger.app.reports.cli import build
    from patchledger.app.web.config import config_from_file

    config = config_from_file(ctx.settings.app_home("compliance") / "config.json", "compliance")
    as_of = datetime.now(UTC).date().isoformat()
    report = build(config.database_url, as_of)
    out = ctx.settings.state_dir / "reports"
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    # WeasyPrint logs every CSS rule it skips as a warning: not the demo's progress
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    for fmt in ("html", "json", "pdf"):
        try:
            data = render.render(report, fmt)
        except (OSError, ImportError) as exc:  # WeasyPrint without its system libraries
            ctx.progress(f"report as {fmt} skipped: {exc}")
            continue
        path = out / f"kev-report-{as_of}.{fmt}"
        path.write_bytes(data)
        written[fmt] = path
    kev = report.kev_overall
    ctx.progress(f"KEV remediation report as of {as_of} (block height "
                 f"{report.facts.block_height}, sha256 {render.digest(report)[:16]}...): "
                 f"{kev.met} met, {kev.missed} missed, {kev.open} open of {kev.total}")
    return written
