"""Stateful fuzzing of the org app's REST API from its own OpenAPI document (schemathesis's
state machine over the document's links, app/web/openapi.py ``LINKS``): sequences such as
create a user, then read, disable, unlock or enroll that user; create an API token, then
revoke it; upload an artifact, then read it (whole or a range); propose a patch or a
vulnerability, then act on it by its id. Every call carries a token of a role the operation
allows, so the handlers run, not only the permission gate. No ledger is configured, as in
tests/unit/webapp/test_openapi_fuzz.py (the stateless fuzzing of every operation): the
ledger-backed steps must answer a clean 503 naming the missing peer or CA.

The property at every step: no server error (500, or a 5xx other than that 503), and every
error is the app's JSON error document with its status.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from patchledger.app.web.db import Role
from patchledger.app.web.factory import create_app
from patchledger.app.web.openapi import LINKS
from patchledger.app.web.rbac import HOST, PERMISSIONS, PUBLIC, permission_of
from tests.reliability.budget import Budget
from tests.unit.webapp.conftest import add_user, agent_headers, make_config

_HOME = tempfile.TemporaryDirectory(prefix="patchledger-stateful-")
APP = create_app(make_config(Path(_HOME.name)))
TOKENS = {role.value: add_user(APP, f"stateful-{role.value}", role.value).headers
          for role in Role}
MISSING = ("no peer is configured", "no CA is configured", "no trust anchors configured",
           "takes no host certificates")

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP)


def headers_for(method: str, path: str) -> dict[str, str]:
    """A token of the first role the operation allows (the agent protocol's headers for
    agent endpoints)."""
    adapter = APP.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(path, method=method)
    except Exception:  # a generated path that no rule matches
        return dict(TOKENS["admin"])
    permission = permission_of(APP.view_functions[endpoint]) or PUBLIC
    if permission == HOST or endpoint.startswith("agent."):
        return agent_headers()
    roles = [Role.ADMIN] if permission == PUBLIC else sorted(PERMISSIONS[permission])
    return dict(TOKENS[roles[0].value])


def check(status: int, body: Any, what: tuple[Any, ...]) -> None:
    if status == 503:
        assert any(m in body["error"]["message"] for m in MISSING), what
    else:
        assert status < 500, what
    if status >= 400:
        assert body["error"]["status"] == status and body["error"]["message"], what


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Calls with a token of an allowed role; the property above at every step."""

    steps: list[tuple[str, str, int]] = []

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:  # type: ignore[type-arg]
        return {"headers": headers_for(case.method, case.formatted_path)}

    def validate_response(self, response: Any, case: schemathesis.Case,  # type: ignore[type-arg]
                          additional_checks: Any = None, **kwargs: Any) -> None:
        status = response.status_code
        Workflow.steps.append((case.method, case.path, status))
        body = response.json() if status >= 400 or status == 503 else None
        check(status, body, (case.method, case.formatted_path, status, response.text[:300]))


def test_the_document_has_the_links_the_state_machine_follows() -> None:
    spec = APP.test_client().get("/api/v1/openapi.json").get_json()
    found = {(path, method, status): set(r["links"])
             for path, ops in spec["paths"].items() for method, op in ops.items()
             if isinstance(op, dict)
             for status, r in op.get("responses", {}).items() if "links" in r}
    assert found == {k: set(v) for k, v in LINKS.items()}


def test_stateful_sequences_never_get_a_server_error(budget: Budget) -> None:
    Workflow.steps.clear()
    Workflow.run(settings=settings(
        max_examples=budget.scaled(0.5), stateful_step_count=5, deadline=None,
        derandomize=budget.derandomize, database=None,
        suppress_health_check=list(HealthCheck)))
    # the sequences went through links: a linked operation ran after its source
    linked = {(t_method.upper(), target) for links in LINKS.values()
              for target, t_method, _ in links.values()}
    reached = {(m, p) for m, p, _ in Workflow.steps} & linked
    assert reached, Workflow.steps[:20]
