"""The RBAC matrix: every endpoint of the app, listed in :data:`ROUTES` with the permission it
must declare (a route missing there fails test_routes_lists_every_endpoint), called by every
role and by nobody, against the permission table of app.web.rbac. No ledger is configured, so
an allowed call ends in 400 (validation), 404/409 (app records) or 503 (ledger), never in
401/403; a refused one is 403. The endpoints that change the own password or second factor
(:data:`SESSION_ONLY`) refuse every API token with 403 and open to every role's session."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from patchledger.app.web.db import Role
from patchledger.app.web.factory import create_app
from patchledger.app.web.rbac import HOST, PERMISSIONS, PUBLIC, permission_of
from tests.unit.webapp.conftest import (
    Account,
    add_user,
    agent_headers,
    make_config,
    totp_code,
)

#: What the table in app/web/rbac.py's docstring says, written out independently.
EXPECTED = {
    "users.manage": {"admin"},
    "tokens.own": {"admin", "approver", "operator", "auditor", "feed"},
    "records.read": {"admin", "approver", "operator", "auditor", "feed"},
    "vuln.record": {"feed"},
    "vuln.assess": {"operator", "feed"},
    "patch.propose": {"operator", "feed"},
    "artifact.upload": {"operator", "feed"},
    "patch.evidence": {"operator"},
    "patch.decide": {"approver"},
    "patch.revoke": {"approver"},
    "policy.change": {"admin"},
    "host.manage": {"admin", "operator"},
    "rollout.manage": {"operator"},
    "exception.grant": {"approver"},
    "exception.expire": {"admin", "approver", "operator"},
    "audit.read": {"admin", "approver", "operator", "auditor"},
    "feeds.read": {"admin", "operator", "auditor", "feed"},
    "feeds.import": {"feed"},
}
#: Every endpoint of the app outside the UI (tests/unit/ui/test_actions.py lists those):
#: (method, URL rule, the permission it must declare).
ROUTES = [
    ("POST", "/api/v1/agent/enroll", PUBLIC),
    ("GET", "/api/v1/agent/enrollment-bundle", PUBLIC),
    ("POST", "/api/v1/auth/login", PUBLIC),
    ("GET", "/api/v1/health", PUBLIC),
    ("GET", "/metrics", PUBLIC),
    ("POST", "/api/v1/account/password", "tokens.own"),
    ("POST", "/api/v1/account/totp", "tokens.own"),
    ("POST", "/api/v1/account/totp/confirm", "tokens.own"),
    ("POST", "/api/v1/auth/logout", "tokens.own"),
    ("POST", "/api/v1/auth/logout-everywhere", "tokens.own"),
    ("GET", "/api/v1/auth/me", "tokens.own"),
    ("GET", "/api/v1/tokens", "tokens.own"),
    ("POST", "/api/v1/tokens", "tokens.own"),
    ("DELETE", "/api/v1/tokens/<int:token_id>", "tokens.own"),
    ("GET", "/api/v1/users", "users.manage"),
    ("POST", "/api/v1/users", "users.manage"),
    ("GET", "/api/v1/users/<username>", "users.manage"),
    ("POST", "/api/v1/users/<username>/disable", "users.manage"),
    ("POST", "/api/v1/users/<username>/enroll", "users.manage"),
    ("POST", "/api/v1/users/<username>/unlock", "users.manage"),
    ("GET", "/api/v1/approvals", "records.read"),
    ("GET", "/api/v1/approvals/<path:record_id>", "records.read"),
    ("GET", "/api/v1/artifacts/<sha256>", "records.read"),
    ("GET", "/api/v1/deployments", "records.read"),
    ("GET", "/api/v1/deployments/<path:record_id>", "records.read"),
    ("GET", "/api/v1/exceptions", "records.read"),
    ("GET", "/api/v1/exceptions/<path:record_id>", "records.read"),
    ("GET", "/api/v1/hosts", "records.read"),
    ("GET", "/api/v1/hosts/<record_id>", "records.read"),
    ("GET", "/api/v1/patches", "records.read"),
    ("GET", "/api/v1/patches/<patch_id>/bundle", "records.read"),
    ("GET", "/api/v1/patches/<record_id>", "records.read"),
    ("GET", "/api/v1/policies", "records.read"),
    ("GET", "/api/v1/policies/<record_id>", "records.read"),
    ("GET", "/api/v1/policy-changes", "records.read"),
    ("GET", "/api/v1/policy-changes/<record_id>", "records.read"),
    ("GET", "/api/v1/readmodel/status", "records.read"),
    ("GET", "/api/v1/revocations", "records.read"),
    ("GET", "/api/v1/revocations/<record_id>", "records.read"),
    ("GET", "/api/v1/rollouts", "records.read"),
    ("GET", "/api/v1/rollouts/<record_id>", "records.read"),
    ("GET", "/api/v1/rollouts/<rollout_id>/progress", "records.read"),
    ("GET", "/api/v1/vulnerabilities", "records.read"),
    ("GET", "/api/v1/vulnerabilities/<record_id>", "records.read"),
    ("GET", "/api/v1/vulnerabilities/<vuln_id>/findings", "records.read"),
    ("POST", "/api/v1/vulnerabilities", "vuln.record"),
    ("POST", "/api/v1/vulnerabilities/<vuln_id>/assessment", "vuln.assess"),
    ("GET", "/api/v1/patch-candidates", "patch.propose"),
    ("GET", "/api/v1/patch-candidates/<candidate_id>", "patch.propose"),
    ("POST", "/api/v1/patch-candidates/<candidate_id>/dismiss", "patch.propose"),
    ("POST", "/api/v1/patch-candidates/<candidate_id>/propose", "patch.propose"),
    ("POST", "/api/v1/patches", "patch.propose"),
    ("GET", "/api/v1/vulnerabilities/<vuln_id>/patch-candidates", "patch.propose"),
    ("POST", "/api/v1/artifacts", "artifact.upload"),
    ("POST", "/api/v1/patches/<patch_id>/evidence", "patch.evidence"),
    ("POST", "/api/v1/patches/<patch_id>/approve", "patch.decide"),
    ("POST", "/api/v1/patches/<patch_id>/reject", "patch.decide"),
    ("POST", "/api/v1/patches/<patch_id>/revoke", "patch.revoke"),
    ("POST", "/api/v1/policy-changes", "policy.change"),
    ("POST", "/api/v1/policy-changes/<proposal_id>/vote", "policy.change"),
    ("POST", "/api/v1/hosts", "host.manage"),
    ("POST", "/api/v1/hosts/<host_id>/decommission", "host.manage"),
    ("POST", "/api/v1/hosts/<host_id>/inventory", "host.manage"),
    ("PUT", "/api/v1/hosts/<host_id>/packages", "host.manage"),
    ("GET", "/api/v1/hosts/enrollment-tokens", "host.manage"),
    ("POST", "/api/v1/hosts/enrollment-tokens", "host.manage"),
    ("DELETE", "/api/v1/hosts/enrollment-tokens/<int:token_id>", "host.manage"),
    ("POST", "/api/v1/rollouts", "rollout.manage"),
    ("POST", "/api/v1/rollouts/<rollout_id>/advance", "rollout.manage"),
    ("POST", "/api/v1/rollouts/<rollout_id>/complete", "rollout.manage"),
    ("POST", "/api/v1/rollouts/<rollout_id>/halt", "rollout.manage"),
    ("POST", "/api/v1/rollouts/<rollout_id>/pause", "rollout.manage"),
    ("POST", "/api/v1/rollouts/<rollout_id>/resume", "rollout.manage"),
    ("POST", "/api/v1/rollouts/<rollout_id>/roll-back", "rollout.manage"),
    ("POST", "/api/v1/exceptions", "exception.grant"),
    ("POST", "/api/v1/exceptions/<vuln_id>/<exception_id>/expire", "exception.expire"),
    ("GET", "/api/v1/audit/blocks", "audit.read"),
    ("GET", "/api/v1/audit/blocks/<int:number>", "audit.read"),
    ("GET", "/api/v1/audit/history/<record_type>/<path:record_id>", "audit.read"),
    ("GET", "/api/v1/audit/transactions", "audit.read"),
    ("GET", "/api/v1/audit/transactions/<tx_id>", "audit.read"),
    ("POST", "/api/v1/audit/verify", "audit.read"),
    ("GET", "/api/v1/feeds", "feeds.read"),
    ("GET", "/api/v1/feeds/imports", "feeds.read"),
    ("POST", "/api/v1/feeds/import", "feeds.import"),
    ("GET", "/api/v1/agent/artifacts/<sha256>", HOST),
    ("POST", "/api/v1/agent/attestations/deployment", HOST),
    ("GET", "/api/v1/agent/desired-state", HOST),
    ("PUT", "/api/v1/agent/inventory", HOST),
    ("GET", "/api/v1/agent/poll", HOST),
    ("POST", "/api/v1/agent/reports", HOST),
]
#: The endpoints open to session logins only (an API token gets 403, never a credential
#: change).
SESSION_ONLY = {("POST", "/api/v1/account/password"), ("POST", "/api/v1/account/totp"),
                ("POST", "/api/v1/account/totp/confirm")}
_OPEN = {"openapi.spec", "openapi.docs", "openapi.swagger_ui_oauth_redirect", "static"}


def _concrete(rule: str) -> str:
    return re.sub(r"<(?:path:)?[^>]+>", "x1", re.sub(r"<int:[^>]+>", "999", rule))


def _endpoints(app: APIFlask) -> list[tuple[str, str, str]]:
    """(method, concrete path, permission) of every listed route (:data:`ROUTES`)."""
    return [(method, _concrete(rule), permission) for method, rule, permission in ROUTES]


def test_routes_lists_every_endpoint(app: APIFlask) -> None:
    """A route of the app (outside the UI) missing from ROUTES, or declaring another
    permission than listed there, fails here."""
    served = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in _OPEN or rule.rule.startswith("/ui"):
            continue
        permission = permission_of(app.view_functions[rule.endpoint])
        assert permission is not None, f"{rule.endpoint} declares no permission"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            served[(method, rule.rule)] = permission
    listed = {(method, rule): permission for method, rule, permission in ROUTES}
    assert len(listed) == len(ROUTES), "a route is listed twice"
    assert sorted(set(served) - set(listed)) == [], "routes missing from ROUTES"
    assert sorted(set(listed) - set(served)) == [], "ROUTES lists routes the app lacks"
    assert {k: v for k, v in served.items() if listed[k] != v} == {}
    session_only = {(method, rule.rule) for rule in app.url_map.iter_rules()
                    if getattr(app.view_functions[rule.endpoint], "_session_only", False)
                    for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert session_only == SESSION_ONLY


def test_the_table_is_the_documented_one() -> None:
    assert {k: {r.value for r in v} for k, v in PERMISSIONS.items()} == EXPECTED


def test_every_endpoint_declares_a_known_permission(app: APIFlask) -> None:
    endpoints = _endpoints(app)
    assert len(endpoints) > 40
    assert {p for _, _, p in endpoints} - {PUBLIC, HOST} <= set(PERMISSIONS)


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_matrix(app: APIFlask, client: FlaskClient, accounts: dict[str, Account],
                role: str) -> None:
    account = accounts[role]
    wrong = []
    for method, rule, permission in ROUTES:
        if permission == HOST:
            continue  # no user role has it: test_host_endpoints_refuse_every_user
        path = _concrete(rule)
        response = client.open(path, method=method, json={}, headers=account.headers)
        allowed = permission == PUBLIC or role in EXPECTED[permission]
        status = response.status_code
        if (method, rule) in SESSION_ONLY:  # an API token: refused, with the reason
            if status != 403 or "API token may not change" not in response.json["error"][
                    "message"]:
                wrong.append(f"{method} {path}: {role}'s API token not refused ({status})")
            continue
        assert status < 500 or status == 503, (method, path, status, response.json)
        if allowed and status in (401, 403):
            wrong.append(f"{method} {path}: {role} refused ({status}): {response.json}")
        if not allowed and status != 403:
            wrong.append(f"{method} {path}: {role} not refused ({status})")
        if not allowed:
            assert permission in response.json["error"]["message"]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_session_only_endpoints_open_to_every_roles_session(
        app: APIFlask, accounts: dict[str, Account], role: str) -> None:
    account = accounts[role]
    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={
        "username": account.username, "password": account.password,
        "totp": totp_code(account.totp_secret) if account.totp_secret else None})
    assert login.status_code == 200, login.json
    csrf = {"X-CSRFToken": login.json["csrf_token"]}
    for method, path in sorted(SESSION_ONLY):
        allowed = role in EXPECTED[permission_of(app.view_functions[
            app.url_map.bind("localhost").match(path, method=method)[0]]) or ""]
        response = client.open(path, method=method, json={}, headers=csrf)
        assert response.status_code == (400 if allowed else 403), (role, path, response.json)


def test_nobody_gets_only_public_endpoints(app: APIFlask, client: FlaskClient) -> None:
    for method, path, permission in _endpoints(app):
        status = client.open(path, method=method, json={}).status_code
        if permission == PUBLIC:
            assert status not in (401, 403), (method, path)
        elif permission == HOST:
            assert status == 400, (method, path, status)  # no nonce, no certificate
        else:
            assert status == 401, (method, path, status)


def test_host_endpoints_refuse_every_user(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path, agent_cert_header="X-Client-Cert"))
    client = app.test_client()
    hosts = [(m, p) for m, p, perm in _endpoints(app) if perm == HOST]
    assert len(hosts) == 6
    for role in Role:
        account = add_user(app, f"u-{role.value}", role.value)
        for method, path in hosts:
            response = client.open(path, method=method, json={},
                                   headers=agent_headers(**account.headers))
            assert response.status_code == 401, (role, method, path, response.json)
            assert response.json["error"]["field"] == "X-Client-Cert"


def test_undeclared_view_is_refused_to_everyone(app: APIFlask, client: FlaskClient,
                                                 accounts: dict[str, Account]) -> None:
    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {"secret": "leaked"}

    response = client.get("/api/v1/forgotten", headers=accounts["admin"].headers)
    assert response.status_code == 403
    assert "declares no permission" in response.json["error"]["message"]
