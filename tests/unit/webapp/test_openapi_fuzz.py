"""Property-based test of the whole API from its own OpenAPI document (schemathesis): every
operation, a bounded number of generated requests each, authenticated with a token of a role
that the operation allows (so the input validation and the handlers run, not only the RBAC
gate). No ledger is configured: ledger-backed operations must answer a clean 503 naming the
missing peer or CA; nothing may answer another 5xx, and every error is the JSON error
document."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from apiflask import APIFlask
from hypothesis import HealthCheck, settings

from patchledger.app.web.db import Role
from patchledger.app.web.factory import create_app
from patchledger.app.web.rbac import HOST, PERMISSIONS, PUBLIC, permission_of
from tests.unit.webapp.conftest import add_user, agent_headers, make_config

#: The app under test lives as long as the module (schemathesis loads the schema at import).
_HOME = tempfile.TemporaryDirectory(prefix="patchledger-fuzz-")
APP = create_app(make_config(Path(_HOME.name)))
APP.extensions["fuzz_tokens"] = {
    role.value: add_user(APP, f"fuzz-{role.value}", role.value).headers for role in Role}


def _app() -> APIFlask:
    return APP


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _app())


def _headers_for(method: str, path: str) -> dict[str, str]:
    app = _app()
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(path, method=method)
    except Exception:  # not routable (e.g. a generated path that no rule matches)
        return dict(app.extensions["fuzz_tokens"]["admin"])
    permission = permission_of(app.view_functions[endpoint]) or PUBLIC
    if permission == HOST or endpoint.startswith("agent."):
        return agent_headers()  # the agent protocol: no user token, a fresh nonce
    roles = [Role.ADMIN] if permission == PUBLIC else sorted(PERMISSIONS[permission])
    return dict(app.extensions["fuzz_tokens"][roles[0].value])


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    path = case.formatted_path
    response = case.call(headers=_headers_for(case.method, path))
    status = response.status_code
    if status == 503:
        message = response.json()["error"]["message"]
        assert any(m in message for m in ("no peer is configured", "no CA is configured",
                                          "no trust anchors configured",
                                          "takes no host certificates")), message
    else:
        assert status < 500, (case.method, path, status, response.text)
    if status >= 400:
        body = response.json()
        assert body["error"]["status"] == status and body["error"]["message"], body
