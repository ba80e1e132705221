"""The web UI's pages (blueprint ``ui`` under ``/ui``).

Contracts:
- Every view declares its permission with :func:`requires`; app.web.factory's request hook
  authenticates the session cookie, checks the CSRF token of unsafe requests and refuses roles
  without the permission, exactly as for the API. Refusals come back as HTML pages here (a
  401 on a page redirects to the login page).
- HTML forms carry the session's CSRF token in a ``csrf_token`` field; a hook that runs before
  the app's copies it into the ``X-CSRFToken`` header the app checks, so forms work without
  JavaScript; htmx only makes them smoother.
- Writes go through the API's own functions (app.web.api.routes: ``_submit``, ``_actor``,
  ``_fresh_totp``) with the user's own Fabric identity; reads through app.readmodel.queries
  and app.ui.data.
- Every response carries :data:`CSP` and never inline script or style.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import segno
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import validate_csrf
from sqlalchemy import desc, select
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

from patchledger.app.ingest.tables import feed_imports, inventories
from patchledger.app.readmodel import queries
from patchledger.app.readmodel.projector import lag
from patchledger.app.ui import data, wizard
from patchledger.app.web import auth
from patchledger.app.web.api import reads, routes
from patchledger.app.web.db import ApiToken, Role, User
from patchledger.app.web.factory import csrf_token, current_user, state
from patchledger.app.web.ledger import LedgerError
from patchledger.app.web.rbac import PUBLIC, allowed, requires
from patchledger.common.durable import write_atomic

if TYPE_CHECKING:
    from patchledger.app.reports.cache import ReportCache

_HERE = Path(__file__).resolve().parent
log = logging.getLogger("patchledger.app.ui")
ui = Blueprint("ui", __name__, url_prefix="/ui", root_path=str(_HERE),
               template_folder="templates")

#: The pages' Content-Security-Policy: scripts, styles, fonts and fetches from the app itself
#: only; images from the app or data: URIs (the QR code); nothing framed, no plugins.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; object-src 'none'")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
PAGE_SIZE = 50
#: Patch states a revocation may start from (chaincode/lifecycle/patch.py's machine).
_REVOCABLE = frozenset({"PROPOSED", "TESTED", "APPROVED", "RELEASED", "SUPERSEDED"})
#: The navigation: (endpoint, label, permission).
NAV = (
    ("ui.dashboard", "Dashboard", "records.read"),
    ("ui.vulnerabilities", "Vulnerabilities", "records.read"),
    ("ui.patches", "Patches", "records.read"),
    ("ui.hosts", "Hosts", "records.read"),
    ("ui.rollouts", "Rollouts", "records.read"),
    ("ui.rollout_wizard", "Plan a rollout", "rollout.manage"),
    ("ui.policy", "Policy", "records.read"),
    ("ui.audit", "Audit", "audit.read"),
    ("ui.reports", "Reports", "audit.read"),
    ("ui.feeds", "Feeds", "feeds.read"),
    ("ui.users", "Users", "users.manage"),
    ("ui.account", "Account", "tokens.own"),
)


class PageError(auth.AuthError):
    """Bad input to a page (rendered as an HTML error page with its status)."""


# ---------------------------------------------------------------------------- plumbing


def register(app: Flask) -> None:
    """Mount the UI on ``app`` (after the API: its request hook and error handlers apply)."""
    from patchledger.app.ui import manage  # noqa: F401  (registers its views on ui)

    app.before_request_funcs.setdefault(None, []).insert(0, bridge_form_csrf)
    app.register_blueprint(ui)


def bridge_form_csrf() -> None:
    """Before the app's hook: a form's ``csrf_token`` field becomes the ``X-CSRFToken``
    header the app checks (for /ui requests only; a header already sent wins)."""
    if (request.path.startswith("/ui/") and request.method not in _SAFE
            and "HTTP_X_CSRFTOKEN" not in request.environ):
        token = request.form.get("csrf_token", "")
        if token:
            request.environ["HTTP_X_CSRFTOKEN"] = token


@ui.after_request
def _html_errors(response: Response) -> Response:
    """JSON errors of the app's hook or handlers become pages for browsers (clients accepting
    text/html without an API token; others keep the JSON error); a browser's 401 on GET
    redirects to the login page; every response gets the CSP and hardening headers."""
    browser = request.accept_mimetypes.accept_html and "Authorization" not in request.headers
    if response.status_code >= 400 and response.mimetype == "application/json" and browser:
        body = response.get_json(silent=True) or {}
        error = body.get("error") or {}
        message = str(error.get("message") or response.status)
        if (response.status_code == 401 and request.method in _SAFE
                and request.endpoint != "ui.login"):
            target = url_for("ui.login", next=request.full_path.rstrip("?"))
            response = redirect(target)  # type: ignore[assignment]
        else:
            html = render_template("error.html", status=response.status_code, message=message,
                                   field=error.get("field", ""), **_context())
            headers = {k: v for k, v in response.headers.items()
                       if k in ("Retry-After",)}
            response = Response(html, status=response.status_code, headers=headers,
                                mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _context() -> dict[str, Any]:
    user: User | None = g.get("user")
    nav = [(e, label) for e, label, p in NAV if user is not None and allowed(user.role, p)]
    return {"user": user, "nav": nav, "org": state().config.organization,
            "msp_id": state().config.msp_id, "csrf": csrf_token() if "uid" in session
            or request.endpoint == "ui.login" else ""}


def page(template: str, **values: Any) -> str:
    """Render ``template`` with the layout's context (user, navigation, CSRF token)."""
    return render_template(template, **_context(), **values)


def can(permission: str) -> bool:
    """Whether the current user has ``permission``."""
    user: User | None = g.get("user")
    return user is not None and allowed(user.role, permission)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise PageError(f"{name} must be a whole number from {low} to {high}", status=400,
                        field=name)
    return int(raw)


def _list(record_type: str, filters: dict[str, Any], *, sort: str = "record_id",
          descending: bool = False) -> queries.Page[queries.RecordRow]:
    try:
        with state().engine.connect() as conn:
            return queries.list_records(conn, record_type, filters=filters, sort=sort,
                                        descending=descending, limit=PAGE_SIZE,
                                        cursor=request.args.get("cursor") or None)
    except queries.QueryError as exc:
        raise PageError(str(exc), status=400, field=exc.field) from exc


def _record(record_type: str, record_id: str) -> queries.RecordRow:
    with state().engine.connect() as conn:
        row = queries.get_record(conn, record_type, record_id)
    if row is None:
        raise PageError(f"{record_type} {record_id!r} is not in the read model", status=404,
                        field="record_id")
    return row


def _history(record_type: str, record_id: str) -> list[queries.VersionRow]:
    if not can("audit.read"):
        return []
    with state().engine.connect() as conn:
        return queries.record_history(conn, record_type, record_id)


def _next_url(cursor: str | None) -> str:
    if not cursor:
        return ""
    args = {k: v for k, v in request.args.items() if k != "cursor"}
    args["cursor"] = cursor
    return f"{request.path}?{urlencode(args)}"


@ui.app_template_filter("ts")
def _ts(value: Any) -> str:
    """Seconds since the epoch as ``YYYY-MM-DD HH:MM UTC`` ("" for 0 / empty)."""
    if not value:
        return ""
    return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%d %H:%M UTC")


@ui.app_template_filter("pretty")
def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def _asset(directory: Path, filename: str) -> Response:
    """A file below ``directory`` read whole (small assets; no open file handle outlives the
    request), cached a day.

    Raises:
        NotFound: outside ``directory`` or missing (404).
    """
    found = safe_join(str(directory), filename)
    if found is None or not Path(found).is_file():
        raise NotFound(f"no asset {filename!r}")
    kind = mimetypes.guess_type(found)[0] or "application/octet-stream"
    response = Response(Path(found).read_bytes(), mimetype=kind)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@ui.get("/static/<path:filename>")
@requires(PUBLIC)
def static(filename: str) -> Response:
    """The UI's own and vendored assets (cached a day)."""
    return _asset(_HERE / "static", filename)


# ---------------------------------------------------------------------------- login


@ui.route("/login", methods=["GET", "POST"])
@requires(PUBLIC)
def login() -> Response | str:
    """Password and, for admins and approvers, the TOTP code (app.web.auth.login)."""
    error = ""
    target = request.args.get("next", "")
    if not target.startswith("/ui/") or target.startswith("//"):
        target = url_for("ui.dashboard")
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token", ""))
        except Exception as exc:  # flask_wtf raises ValidationError
            return Response(page("login.html", error=f"the form expired ({exc}); try again",
                                 next=target), status=400)
        st = state()
        try:
            user = auth.login(st.db(), st.config.security, request.form.get("username", ""),
                              request.form.get("password", ""),
                              request.form.get("totp", "").strip() or None)
        except auth.AuthError as exc:
            return Response(page("login.html", error=exc.message, next=target),
                            status=exc.status)
        session.clear()
        session.permanent = True
        session["uid"] = user.id
        session["ver"] = user.session_version
        return redirect(target)  # type: ignore[return-value]
    return page("login.html", error=error, next=target)


@ui.post("/logout")
@requires("tokens.own")
def logout() -> Response:
    session.clear()
    return redirect(url_for("ui.login"))  # type: ignore[return-value]


# ---------------------------------------------------------------------------- dashboard


def _lag() -> Any:
    st = state()
    try:
        height: int | None = st.ledger.height()
    except LedgerError:
        height = None
    except Exception:  # the dashboard never fails for the lag: shown as unknown, logged
        log.exception("the peer height could not be read for the dashboard")
        height = None
    return lag(st.engine, height)


@ui.get("/")
@requires("records.read")
def dashboard() -> str:
    now = int(time.time())
    today = datetime.now(UTC).date()
    with state().engine.connect() as conn:
        by_severity = data.open_by_severity(conn)
        kev = data.kev_due(conn, today)
        waiting = data.waiting_for(conn, state().config.msp_id)
        rollouts = data.active_rollouts(conn)
        stale_count, stale = data.stale_hosts(conn, now)
    return page("dashboard.html", by_severity=by_severity, kev=kev, waiting=waiting,
                rollouts=rollouts, stale_count=stale_count, stale=stale, lag=_lag(),
                today=today.isoformat())


# ---------------------------------------------------------------------------- vulnerabilities

_VULN_SORTS = {"record_id": "id", "cvss_score": "CVSS score", "kev_due_date": "KEV due date",
               "severity": "severity", "updated_at": "last change"}


@ui.get("/vulnerabilities")
@requires("records.read")
def vulnerabilities() -> str:
    filters: dict[str, Any] = {}
    for name in ("state", "severity", "kev_due_date"):
        if request.args.get(name):
            filters[name] = request.args[name]
    if request.args.get("kev") in ("true", "false"):
        filters["known_exploited"] = request.args["kev"]
    sort = request.args.get("sort") or "record_id"
    if sort not in _VULN_SORTS:
        raise PageError(f"sort must be one of {', '.join(_VULN_SORTS)}", status=400,
                        field="sort")
    result = _list("Vulnerability", filters, sort=sort,
                   descending=request.args.get("order") == "desc")
    with state().engine.connect() as conn:
        hosts = data.affected_host_counts(conn, [r.record_id for r in result.items])
    return page("vulnerabilities.html", rows=result.items, hosts=hosts, sorts=_VULN_SORTS,
                next_url=_next_url(result.next_cursor), args=request.args)


@ui.get("/vulnerabilities/<path:vuln_id>")
@requires("records.read")
def vulnerability(vuln_id: str) -> str:
    row = _record("Vulnerability", vuln_id)
    with state().engine.connect() as conn:
        found = data.findings_of(conn, vuln_id)
        exceptions = queries.list_records(conn, "RiskAcceptance",
                                          filters={"vuln_id": vuln_id}, limit=100).items
    return page("vulnerability.html", row=row, findings=found, exceptions=exceptions,
                may_propose=can("patch.propose"),
                history=_history("Vulnerability", vuln_id))


# ---------------------------------------------------------------------------- patches


@ui.get("/patches")
@requires("records.read")
def patches() -> str:
    filters = {k: request.args[k] for k in ("state", "severity") if request.args.get(k)}
    result = _list("Patch", filters)
    return page("patches.html", rows=result.items, next_url=_next_url(result.next_cursor),
                args=request.args)


def _patch_view(patch_id: str) -> dict[str, Any]:
    row = _record("Patch", patch_id)
    with state().engine.connect() as conn:
        approvals = queries.list_records(conn, "Approval", filters={"patch_id": patch_id},
                                         limit=100).items
        policy = data.current_policy(conn)
    quorum = data.quorum_of(row.record, approvals, policy.record if policy else None)
    return {"row": row, "approvals": approvals, "quorum": quorum, "policy": policy,
            "may_decide": can("patch.decide") and row.state == "TESTED",
            "may_revoke": can("patch.revoke") and row.state in _REVOCABLE,
            "history": _history("Patch", patch_id)}


@ui.get("/patches/<patch_id>")
@requires("records.read")
def patch(patch_id: str) -> str:
    return page("patch.html", **_patch_view(patch_id))


def _decision_form() -> tuple[str, str]:
    decision = request.form.get("decision", "")
    if decision not in ("approve", "reject"):
        raise PageError("decision must be approve or reject", status=400, field="decision")
    comment = request.form.get("comment", "").strip()
    if len(comment) > 1024:
        raise PageError("comment must be at most 1024 characters", status=400,
                        field="comment")
    return decision, comment


def _ledger_patch(patch_id: str) -> dict[str, Any]:
    """The patch as the peer holds it (authoritative: what is signed comes from here)."""
    value: dict[str, Any] = state().ledger.evaluate("GetRecord", "Patch",
                                                    routes._record_id(patch_id, "patch_id"))
    return value


@ui.post("/patches/<patch_id>/review")
@requires("patch.decide")
def review(patch_id: str) -> str:
    """Step 1 of a decision: show exactly the statement that will be signed."""
    decision, comment = _decision_form()
    raw_days = request.form.get("valid_days", "7")
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= 30:
        raise PageError("valid_days must be a whole number from 1 to 30", status=400,
                        field="valid_days")
    ledger_patch = _ledger_patch(patch_id)
    expires_at = int(time.time()) + int(raw_days) * 86400
    # the signer's own Fabric identity (enrolled with the CA now at the first ledger act), so
    # the statement shown names exactly the identity that will sign it
    actor = routes._actor()
    statement = {"patch_id": patch_id, "artifact_sha256": ledger_patch["artifact_sha256"],
                 "decision": decision, "msp_id": state().config.msp_id,
                 "approver": actor.enrollment_id, "expires_at": expires_at,
                 "comment": comment}
    return page("review.html", statement=statement, patch=ledger_patch)


@ui.post("/patches/<patch_id>/sign")
@requires("patch.decide")
def sign(patch_id: str) -> str:
    """Step 2: a fresh TOTP code, then the reviewed statement signed with the user's own key
    and submitted (Approve / Reject). Refused when the patch's artifact changed since the
    review or the expiry is not within 30 days."""
    decision, comment = _decision_form()
    digest = request.form.get("artifact_sha256", "")
    raw_expiry = request.form.get("expires_at", "")
    now = int(time.time())
    if not _HEX64.match(digest):
        raise PageError("artifact_sha256 must be 64 lower-case hex digits", status=400,
                        field="artifact_sha256")
    if not raw_expiry.isdigit() or not now < int(raw_expiry) <= now + 31 * 86400:
        raise PageError("expires_at must be within the next 30 days: review again",
                        status=400, field="expires_at")
    statement, result = routes._decide(
        patch_id, {"totp": request.form.get("totp", "").strip(), "comment": comment},
        decision, expires_at=int(raw_expiry), artifact_sha256=digest)
    st = state()
    return page("signed.html", patch_id=patch_id, statement=statement, result=result,
                record_id=f"{patch_id}/{st.config.msp_id}")


@ui.get("/patches/<patch_id>/decision")
@requires("records.read")
def decision_status(patch_id: str) -> Response:
    """Fragment: this organization's decision on the patch as committed (transaction id and
    block), once the read model has projected it (htmx polls it)."""
    with state().engine.connect() as conn:
        row = queries.get_record(conn, "Approval", f"{patch_id}/{state().config.msp_id}")
        patch_row = queries.get_record(conn, "Patch", patch_id)
    html = render_template("_decision.html", row=row, patch_row=patch_row, patch_id=patch_id)
    # 286: htmx stops polling once the decision is committed
    return Response(html, status=286 if row is not None else 200, mimetype="text/html")


# ---------------------------------------------------------------------------- hosts


@ui.get("/hosts")
@requires("records.read")
def hosts() -> str:
    filters = {k: request.args[k] for k in ("state", "owner_msp") if request.args.get(k)}
    result = _list("Host", filters)
    with state().engine.connect() as conn:
        deployments = data.deployment_states(conn, [r.record_id for r in result.items])
        reports = data.last_reports(conn, [r.record_id for r in result.items])
    return page("hosts.html", rows=result.items, deployments=deployments, reports=reports,
                may_manage=can("host.manage"),
                next_url=_next_url(result.next_cursor), args=request.args)


@ui.get("/hosts/<host_id>")
@requires("records.read")
def host(host_id: str) -> str:
    row = _record("Host", host_id)
    with state().engine.connect() as conn:
        deployments = queries.list_records(conn, "Deployment", filters={"host_id": host_id},
                                           limit=100).items
        inventory = conn.execute(select(inventories.c.distro, inventories.c.package_count,
                                        inventories.c.updated_at, inventories.c.origin)
                                 .where(inventories.c.host_id == host_id)).mappings().first()
        last = data.last_reports(conn, [host_id]).get(host_id)
    return page("host.html", row=row, deployments=deployments, inventory=inventory, last=last,
                history=_history("Host", host_id))


# ---------------------------------------------------------------------------- rollouts


@ui.get("/rollouts")
@requires("records.read")
def rollouts() -> str:
    filters = {k: request.args[k] for k in ("state", "patch_id") if request.args.get(k)}
    result = _list("Rollout", filters)
    with state().engine.connect() as conn:
        progress = {r.record_id: data.wave_progress(conn, r) for r in result.items}
    return page("rollouts.html", rows=result.items, progress=progress,
                next_url=_next_url(result.next_cursor), args=request.args)


#: Rollout actions offered per state, with the question the confirmation page asks.
ACTIONS = {
    "advance": ("Advance to the next wave", {"PLANNED", "RUNNING"}),
    "pause": ("Pause", {"RUNNING"}),
    "resume": ("Resume", {"PAUSED"}),
    "halt": ("Halt", {"PLANNED", "RUNNING", "PAUSED"}),
    "roll-back": ("Roll back", {"HALTED"}),
    "complete": ("Complete", {"RUNNING"}),
}


@ui.get("/rollouts/<rollout_id>")
@requires("records.read")
def rollout(rollout_id: str) -> str:
    row = _record("Rollout", rollout_id)
    with state().engine.connect() as conn:
        progress = data.wave_progress(conn, row)
    actions = [(a, label) for a, (label, states) in ACTIONS.items() if row.state in states] \
        if can("rollout.manage") else []
    return page("rollout.html", row=row, progress=progress, actions=actions,
                history=_history("Rollout", rollout_id))


def _own_hosts() -> list[wizard.HostInfo]:
    """Every ENROLLED host of this organization."""
    with state().engine.connect() as conn:
        return [wizard.HostInfo(*h) for h in data.enrolled_hosts(conn, state().config.msp_id)]


def _wizard_number(name: str, default: int, high: int) -> int:
    raw = request.form.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) > high:
        raise PageError(f"{name} must be a whole number from 0 to {high}", status=400,
                        field=name)
    return int(raw)


_WIZARD_DEFAULTS = {"rollout_id": "", "patch_id": "", "mode": "groups", "groups": "",
                    "percentages": "10,30,60", "canary": "0", "failure_threshold_pct": "10",
                    "soak_seconds": "3600", "disruption_budget": str(wizard.DEFAULT_BUDGET),
                    "max_concurrency": str(wizard.DEFAULT_CONCURRENCY),
                    "wave_timeout_seconds": "3600"}


def _plan_path(rollout_id: str) -> Path | None:
    """Where the dispatcher reads this rollout's plan (``<dispatch_dir>/plans/<id>.json``;
    ``None`` when the app has no dispatcher board configured)."""
    board = state().config.dispatch_dir
    return None if board is None else board / "plans" / f"{rollout_id}.json"


@ui.route("/rollouts/new", methods=["GET", "POST"])
@requires("rollout.manage")
def rollout_wizard() -> str:
    """Plan a rollout: patch, waves from groups or percentages, canary, per-wave disruption
    budget and maximum concurrency, failure threshold, soak, wave timeout; a preview of which
    hosts go in which wave, when, and with which limits; then ``CreateRollout`` with exactly
    the previewed hosts (refused when the plan's digest differs from the preview's) and the
    plan handed to the dispatcher (``dispatch_dir``), which enforces the limits."""
    with state().engine.connect() as conn:
        deployable = queries.list_records(conn, "Patch", filters={
            "state": ["APPROVED", "RELEASED"]}, limit=queries.MAX_LIMIT).items
    form = request.form
    hosts = _own_hosts()
    values = {k: form.get(k, default) for k, default in _WIZARD_DEFAULTS.items()}
    if request.method == "POST":
        values["rollback_on_failure"] = "yes" if form.get("rollback_on_failure") else ""
    else:
        values["rollback_on_failure"] = "yes"
    group_names = sorted({g for h in hosts for g in h.groups})
    common = {"patches": deployable, "values": values, "host_count": len(hosts),
              "group_names": group_names, "dispatcher": state().config.dispatch_dir is not None}
    if request.method == "GET":
        return page("wizard.html", waves=None, **common)
    if values["patch_id"] not in {p.record_id for p in deployable}:
        raise PageError(f"patch {values['patch_id']!r} is not APPROVED or RELEASED in the "
                        "read model", status=400, field="patch_id")
    rollout_id = routes._record_id(values["rollout_id"], "rollout_id")
    soak = _wizard_number("soak_seconds", 3600, 30 * 86400)
    threshold = _wizard_number("failure_threshold_pct", 10, 100)
    timeout = _wizard_number("wave_timeout_seconds", 3600, 7 * 86400)
    if timeout < 1:
        raise PageError("wave_timeout_seconds must be at least 1", status=400,
                        field="wave_timeout_seconds")
    try:
        waves = wizard.plan(hosts, mode=values["mode"], groups_text=values["groups"],
                            percentages=values["percentages"],
                            canary=_wizard_number("canary", 0, len(hosts)),
                            soak_seconds=soak,
                            disruption_budget=wizard.quantity(values["disruption_budget"],
                                                              "disruption_budget"),
                            max_concurrency=wizard.quantity(values["max_concurrency"],
                                                            "max_concurrency"))
    except wizard.PlanError as exc:
        raise PageError(str(exc), status=400, field=exc.field) from exc
    plan = wizard.rollout_plan(rollout_id, values["patch_id"], waves, hosts,
                               failure_threshold_pct=threshold, soak_seconds=soak,
                               wave_timeout_seconds=timeout,
                               rollback_on_failure=bool(values["rollback_on_failure"]))
    digest = wizard.plan_digest(plan)
    if form.get("step") != "create":
        windows = {h.host_id: h.maintenance_window for h in hosts}
        return page("wizard.html", waves=waves, windows=windows, plan_sha256=digest, **common)
    if form.get("plan_sha256") != digest:
        raise PageError("the plan differs from the preview (hosts were enrolled or "
                        "decommissioned, or the form changed): preview it again; nothing was "
                        "created", status=409, field="plan_sha256")
    path = _plan_path(rollout_id)
    if path is not None and path.exists():
        raise PageError(f"the dispatcher has a plan for rollout {rollout_id!r} already "
                        f"({path}): choose another id", status=409, field="rollout_id")
    # the ledger first: a plan file the dispatcher saw before the rollout existed would make
    # it create the rollout itself, under its own identity instead of the operator's
    result = routes._submit("CreateRollout", plan.create_rollout_argument())
    handed = ""
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(plan.to_dict(), sort_keys=True))
            handed = str(path)
        except OSError as exc:
            log.exception("rollout %s was created but its plan could not be written",
                          rollout_id)
            raise PageError(f"rollout {rollout_id} was created on the ledger, but the "
                            f"dispatcher's plan could not be written ({exc}): the dispatcher "
                            "will not start it; halt the rollout", status=503,
                            field="dispatch_dir") from exc
    return page("done.html", title=f"Rollout {rollout_id} planned", result=result,
                back=url_for("ui.rollout", rollout_id=rollout_id), plan_path=handed,
                plan=plan)


@ui.post("/rollouts/<rollout_id>/action")
@requires("rollout.manage")
def rollout_action(rollout_id: str) -> str:
    """Pause, resume, halt, roll back...: a confirmation page first, then the transaction."""
    action = request.form.get("action", "")
    if action not in ACTIONS:
        raise PageError(f"action must be one of {', '.join(ACTIONS)}", status=400,
                        field="action")
    row = _record("Rollout", rollout_id)
    if request.form.get("confirm") != "yes":
        return page("confirm.html", row=row, action=action, label=ACTIONS[action][0])
    result = routes._submit(routes._ROLLOUT_ACTIONS[action], rollout_id)
    return page("done.html", title=f"{ACTIONS[action][0]}: {rollout_id}", result=result,
                back=url_for("ui.rollout", rollout_id=rollout_id))


# ---------------------------------------------------------------------------- policy, feeds


@ui.get("/policy")
@requires("records.read")
def policy() -> str:
    with state().engine.connect() as conn:
        current = data.current_policy(conn)
        changes = queries.list_records(conn, "PolicyChange", sort="updated_at",
                                       descending=True, limit=PAGE_SIZE).items
    from patchledger.app.ui.manage import proposal_template

    return page("policy.html", current=current, changes=changes,
                may_change=can("policy.change"),
                policy_json=proposal_template(current.record if current else None))


@ui.get("/feeds")
@requires("feeds.read")
def feeds() -> str:
    with state().engine.connect() as conn:
        rows = conn.execute(select(feed_imports).order_by(desc(feed_imports.c.id)).limit(20)
                            ).mappings().all()
    return page("feeds.html", sources=state().config.feed_sources,
                imports=[reads._import_out(r) for r in rows])


# ---------------------------------------------------------------------------- audit


@ui.get("/audit")
@requires("audit.read")
def audit() -> str:
    record_type = request.args.get("record_type", "")
    record_id = request.args.get("record_id", "")
    history: list[queries.VersionRow] = []
    if record_type or record_id:
        if record_type not in queries.record_types():
            raise PageError(f"record_type must be one of {', '.join(queries.record_types())}",
                            status=400, field="record_type")
        with state().engine.connect() as conn:
            history = queries.record_history(conn, record_type, record_id)
    try:
        with state().engine.connect() as conn:
            blocks = queries.list_blocks(conn, limit=20, cursor=request.args.get("cursor")
                                         or None)
            height = queries.projected_height(conn)
    except queries.QueryError as exc:
        raise PageError(str(exc), status=400, field=exc.field) from exc
    return page("audit.html", types=list(queries.record_types()), record_type=record_type,
                record_id=record_id, history=history, blocks=blocks.items, height=height,
                next_url=_next_url(blocks.next_cursor))


@ui.get("/audit/blocks/<int:number>")
@requires("audit.read")
def block(number: int) -> str:
    with state().engine.connect() as conn:
        found = queries.get_block(conn, number) if number < 2**62 else None
        txs = queries.list_transactions(conn, block_number=number, descending=False,
                                        limit=queries.MAX_LIMIT).items if found else []
    if found is None:
        raise PageError(f"block {number} is not in the read model", status=404,
                        field="number")
    return page("block.html", block=found, transactions=txs)


# ---------------------------------------------------------------------------- users, account


@ui.get("/users")
@requires("users.manage")
def users() -> str:
    rows = state().db().scalars(select(User).order_by(User.username)).all()
    return page("users.html", rows=rows, roles=[r.value for r in Role], created=None)


@ui.post("/users")
@requires("users.manage")
def create_user() -> str:
    """Create a user; the password and the TOTP enrolment QR code are shown once."""
    st = state()
    new = auth.create_user(st.db(), st.config.security, request.form.get("username", ""),
                           request.form.get("role", ""), request.form.get("password") or None,
                           issuer=f"patchledger {st.config.organization}")
    qr = segno.make(new.totp_uri, error="m").svg_data_uri(scale=5) if new.totp_uri else ""
    rows = st.db().scalars(select(User).order_by(User.username)).all()
    return page("users.html", rows=rows, roles=[r.value for r in Role], created=new, qr=qr)


@ui.get("/account")
@requires("tokens.own")
def account() -> str:
    return page("account.html", tokens=_tokens(), new_secret="")


def _tokens() -> list[ApiToken]:
    return list(state().db().scalars(select(ApiToken).where(
        ApiToken.user_id == current_user().id).order_by(ApiToken.id)))


@ui.post("/account/tokens")
@requires("tokens.own")
def create_token() -> str:
    new = auth.create_token(state().db(), current_user(), request.form.get("name", ""))
    return page("account.html", tokens=_tokens(), new_secret=new.secret)


@ui.post("/account/tokens/<int:token_id>/revoke")
@requires("tokens.own")
def revoke_token(token_id: int) -> str:
    auth.revoke_token(state().db(), current_user(), token_id)
    return page("account.html", tokens=_tokens(), new_secret="")


# ---------------------------------------------------------------------------- reports


@ui.get("/reports")
@requires("audit.read")
def reports() -> Response | str:
    """The compliance report form; with ``as_of``, the report itself (html, csv, pdf, json)."""
    from patchledger.app.errors import UserError
    from patchledger.app.reports import render
    from patchledger.app.reports.cache import read_model_state
    from patchledger.app.reports.compliance import Report, compute
    from patchledger.app.reports.source import load_facts, parse_as_of

    as_of = request.args.get("as_of", "")
    fmt = request.args.get("format", "html")
    if not as_of:
        return page("reports.html", today=datetime.now(UTC).date().isoformat(),
                    formats=render.FORMATS)
    if fmt not in render.FORMATS:
        raise PageError(f"format must be one of {', '.join(render.FORMATS)}", status=400,
                        field="format")
    cache = _report_cache()
    try:
        moment = parse_as_of(as_of)
        engine = state().engine

        def fresh() -> Report:
            with engine.connect() as own:
                return compute(load_facts(own, moment))

        with engine.connect() as conn:
            settled, height = read_model_state(conn, moment)
        entry = cache.report(moment.isoformat(), settled, height, fresh,
                             refresh_in_background=True)
        if fmt == "html":
            body = cache.rendering(entry, "html", lambda r: render.html(
                r, stylesheet_href=url_for("ui.report_css")))
            response = Response(body, mimetype="text/html")
        else:
            response = Response(cache.rendering(entry, fmt, lambda r: render.render(r, fmt)),
                                mimetype=render.MEDIA_TYPES[fmt])
            response.headers["Content-Disposition"] = \
                f'attachment; filename="kev-report-{as_of}.{fmt}"'
        response.headers["X-Report-SHA256"] = str(cache.rendering(entry, "sha256",
                                                                  render.digest))
    except UserError as exc:
        raise PageError(str(exc), status=400, field="as_of") from exc
    response.headers["X-Report-Block-Height"] = str(entry.report.facts.block_height)
    return response


def _report_cache() -> ReportCache:
    """The app's cache of computed reports (app.reports.cache), made at first use."""
    from patchledger.app.reports.cache import ReportCache

    cache: ReportCache = current_app.extensions.setdefault("patchledger.report_cache",
                                                           ReportCache())
    return cache


@ui.get("/reports/report.css")
@requires(PUBLIC)
def report_css() -> Response:
    """The reports' stylesheet (app/reports/templates/report.css), linked under the CSP."""
    from patchledger.app.reports import render

    return _asset(render.TEMPLATES, "report.css")


@ui.post("/audit/evidence")
@requires("audit.read")
def evidence() -> Response:
    """An evidence bundle of a record (a patch with its approvals) for offline verification
    (``patchledger report verify-evidence``)."""
    from patchledger.app.fabric import FabricError, TrustAnchors
    from patchledger.app.reports import evidence as ev

    record_type = request.form.get("record_type", "")
    record_id = request.form.get("record_id", "")
    if record_type not in queries.record_types():
        raise PageError(f"record_type must be one of {', '.join(queries.record_types())}",
                        status=400, field="record_type")
    st = state()
    config = st.config
    if not config.trust_msp_dirs or not config.orderer_msp_ids:
        raise LedgerError(503, f"{config.organization}'s app has no trust anchors configured "
                          "(trust, orderer_msp): evidence cannot be exported")
    try:
        anchors = TrustAnchors.from_msp_dirs(dict(config.trust_msp_dirs),
                                             config.orderer_msp_ids)
    except FabricError as exc:
        raise LedgerError(503, f"the trust anchors cannot be loaded: {exc}") from exc
    records = [(record_type, record_id)]
    try:
        with st.engine.connect() as conn:
            if record_type == "Patch":
                records += [("Approval", a.record_id) for a in queries.list_records(
                    conn, "Approval", filters={"patch_id": record_id},
                    limit=queries.MAX_LIMIT).items]
            bundle = ev.build_bundle(conn, records, st.ledger.raw_blocks, anchors,
                                     organization=config.organization,
                                     channel=config.channel, chaincode=config.chaincode)
    except ev.EvidenceError as exc:
        raise PageError(str(exc), status=404, field="record_id") from exc
    body = json.dumps(bundle, sort_keys=True, indent=1)
    response = Response(body, mimetype="application/json")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{record_type}-{record_id}")
    response.headers["Content-Disposition"] = f'attachment; filename="evidence-{safe}.json"'
    return response
