"""The RBAC matrix: every endpoint of the app, called by every role and by nobody, against the
permission table of app.web.rbac. No ledger is configured, so an allowed call ends in 400
(validation), 404/409 (app records) or 503 (ledger), never in 401/403; a refused one is 403."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from patchledger.app.web.db import Role
from patchledger.app.web.factory import create_app
from patchledger.app.web.rbac import HOST, PERMISSIONS, PUBLIC, permission_of
from tests.unit.webapp.conftest import Account, add_user, agent_headers, make_config

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
_OPEN = {"openapi.spec", "openapi.docs", "openapi.swagger_ui_oauth_redirect", "static"}


def _endpoints(app: APIFlask) -> list[tuple[str, str, str]]:
    """(method, concrete path, permission) of every route but the OpenAPI ones."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in _OPEN:
            continue
        permission = permission_of(app.view_functions[rule.endpoint])
        assert permission is not None, f"{rule.endpoint} declares no permission"
        path = re.sub(r"<int:[^>]+>", "999", rule.rule)
        path = re.sub(r"<(?:path:)?[^>]+>", "x1", path)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path, permission))
    return found


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
    for method, path, permission in _endpoints(app):
        if permission == HOST:
            continue  # no user role has it: test_host_endpoints_refuse_every_user
        response = client.open(path, method=method, json={}, headers=account.headers)
        allowed = permission == PUBLIC or role in EXPECTED[permission]
        status = response.status_code
        assert status < 500 or status == 503, (method, path, status, response.json)
        if allowed and status in (401, 403):
            wrong.append(f"{method} {path}: {role} refused ({status}): {response.json}")
        if not allowed and status != 403:
            wrong.append(f"{method} {path}: {role} not refused ({status})")
        if not allowed:
            assert permission in response.json["error"]["message"]
    assert not wrong, "\n".join(wrong)


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
