"""The UI's actions: the approval flow against the fake peer and CA (real gRPC, the user's
own enrolled key), its refusals (wrong or replayed TOTP, an artifact changed since the
review), confirmed rollout actions, and every page and action refused to the roles that may
not use them (app.web.rbac's table)."""

from __future__ import annotations

import json
import re
import time

import pytest
from apiflask import APIFlask

from patchledger.app.ui.views import NAV
from patchledger.app.web.factory import state
from patchledger.app.web.rbac import PUBLIC, allowed, permission_of
from patchledger.chaincode.lifecycle.statement import SignedStatement
from tests.support.ui import Writer
from tests.unit.ui.conftest import browser, csrf_of, log_in
from tests.unit.webapp import test_ledger_flow as flow
from tests.unit.webapp.conftest import Account, add_user, totp_code

chaincode = flow.chaincode
fake_ca = flow.fake_ca
fake_peer = flow.fake_peer
ledger_app = flow.ledger_app


def _tested_patch(app: APIFlask, chain: flow.Chaincode) -> None:
    chain.records[("Patch", "p-1")] = {**flow.PATCH, "status": "TESTED", "severity": "high"}
    with app.app_context(), state().engine.begin() as conn:
        w = Writer(conn)
        w.put("Policy", {"policy_id": "default", "version": 1, "organizations": [
            "SecOpsMSP", "ITOpsMSP", "ComplianceMSP"], "quorum": {"high": 2}}, int(time.time()))
        w.put("Patch", {**flow.PATCH, "status": "TESTED", "severity": "high",
                        "proposed_by": "SecOpsMSP"}, int(time.time()))
        w.flush()


def test_review_then_sign_with_fresh_totp(ledger_app: APIFlask, chaincode: flow.Chaincode
                                          ) -> None:
    _tested_patch(ledger_app, chaincode)
    approver = add_user(ledger_app, "amir", "approver")
    client = log_in(ledger_app.test_client(), approver)
    detail = client.get("/ui/patches/p-1")
    assert detail.status_code == 200 and "Still missing: 2" in detail.text
    review = client.post("/ui/patches/p-1/review", data={
        "csrf_token": csrf_of(detail.text), "decision": "approve", "comment": "diff read",
        "valid_days": "3"})
    assert review.status_code == 200, review.text
    assert flow.DIGEST in review.text and "<strong>approve</strong>" in review.text
    form = dict(re.findall(r'name="([a-z0-9_]+)" value="([^"]*)"', review.text))
    assert int(form["expires_at"]) - int(time.time()) in range(3 * 86400 - 60, 3 * 86400 + 1)
    secret = approver.totp_secret or ""

    wrong = client.post("/ui/patches/p-1/sign", data={**form, "totp": "000000"})
    assert wrong.status_code == 401 and "wrong TOTP code" in wrong.text, wrong.text[-900:]
    assert not any(f == "Approve" for f, _ in chaincode.calls)

    signed = client.post("/ui/patches/p-1/sign", data={**form, "totp": totp_code(secret, 1)})
    assert signed.status_code == 200, signed.text
    function, (argument,) = chaincode.calls[-1]
    statement = SignedStatement.from_dict(json.loads(argument)).statement
    assert function == "Approve"
    assert (statement.patch_id, statement.artifact_sha256, statement.decision,
            statement.expires_at, statement.comment) == (
        "p-1", flow.DIGEST, "approve", int(form["expires_at"]), "diff read")
    # the signer shown at the review is the identity that signed
    assert f">{statement.approver}</dd>" in review.text
    # the decision fragment waits for the block, then shows the transaction id (286 stops
    # htmx polling)
    assert client.get("/ui/patches/p-1/decision").status_code == 200


def test_sign_refuses_a_changed_artifact(ledger_app: APIFlask, chaincode: flow.Chaincode
                                         ) -> None:
    _tested_patch(ledger_app, chaincode)
    approver = add_user(ledger_app, "amir", "approver")
    client = log_in(ledger_app.test_client(), approver)
    csrf = csrf_of(client.get("/ui/patches/p-1").text)
    form = {"csrf_token": csrf, "decision": "approve", "comment": "",
            "artifact_sha256": "cd" * 32, "expires_at": str(int(time.time()) + 86400),
            "totp": totp_code(approver.totp_secret or "", 1)}
    response = client.post("/ui/patches/p-1/sign", data=form)
    assert response.status_code == 409 and "nothing was signed" in response.text
    assert not any(f == "Approve" for f, _ in chaincode.calls)


def test_form_without_csrf_token_is_refused(ledger_app: APIFlask,
                                            chaincode: flow.Chaincode) -> None:
    _tested_patch(ledger_app, chaincode)
    approver = add_user(ledger_app, "amir", "approver")
    client = log_in(ledger_app.test_client(), approver)
    response = client.post("/ui/patches/p-1/review", data={"decision": "approve",
                                                           "valid_days": "3"})
    assert response.status_code == 400 and "CSRF check failed" in response.text


def test_rollout_action_asks_for_confirmation(populated: APIFlask,
                                              accounts: dict[str, Account]) -> None:
    client = log_in(populated.test_client(), accounts["operator"])
    page = client.get("/ui/rollouts/ro-000")
    assert "Pause…" in page.text and "Halt…" in page.text
    confirm = client.post("/ui/rollouts/ro-000/action", data={
        "csrf_token": csrf_of(page.text), "action": "halt"})
    assert confirm.status_code == 200 and 'name="confirm" value="yes"' in confirm.text
    # confirmed: the transaction is attempted (no peer in this app: 503, named)
    done = client.post("/ui/rollouts/ro-000/action", data={
        "csrf_token": csrf_of(page.text), "action": "halt", "confirm": "yes"})
    assert done.status_code == 503


#: Every UI endpoint but the public ones, a URL for it and the permission it needs
#: (test_the_matrix_names_every_ui_endpoint fails when a route is missing here). Logging
#: out comes last: it ends the session the other calls use.
REFUSALS = [
    ("GET", "/ui/", "records.read"),
    ("GET", "/ui/vulnerabilities", "records.read"),
    ("GET", "/ui/vulnerabilities/CVE-2026-00000", "records.read"),
    ("GET", "/ui/patches", "records.read"),
    ("GET", "/ui/patches/p-0001", "records.read"),
    ("GET", "/ui/patches/p-0001/decision", "records.read"),
    ("GET", "/ui/hosts", "records.read"),
    ("GET", "/ui/hosts/host-00001", "records.read"),
    ("GET", "/ui/rollouts", "records.read"),
    ("GET", "/ui/rollouts/ro-000", "records.read"),
    ("GET", "/ui/policy", "records.read"),
    ("GET", "/ui/audit", "audit.read"),
    ("GET", "/ui/audit/blocks/1", "audit.read"),
    ("POST", "/ui/audit/evidence", "audit.read"),
    ("GET", "/ui/reports", "audit.read"),
    ("GET", "/ui/feeds", "feeds.read"),
    ("GET", "/ui/users", "users.manage"),
    ("POST", "/ui/users", "users.manage"),
    ("POST", "/ui/patches/p-0001/review", "patch.decide"),
    ("POST", "/ui/patches/p-0001/sign", "patch.decide"),
    ("POST", "/ui/patches/p-0001/revoke", "patch.revoke"),
    ("GET", "/ui/patch-proposal", "patch.propose"),
    ("POST", "/ui/patch-proposal", "patch.propose"),
    ("GET", "/ui/rollouts/new", "rollout.manage"),
    ("POST", "/ui/rollouts/new", "rollout.manage"),
    ("POST", "/ui/rollouts/ro-000/action", "rollout.manage"),
    ("GET", "/ui/enrollment-tokens", "host.manage"),
    ("POST", "/ui/enrollment-tokens", "host.manage"),
    ("POST", "/ui/enrollment-tokens/999/revoke", "host.manage"),
    ("POST", "/ui/policy/proposals", "policy.change"),
    ("POST", "/ui/policy/proposals/pc-1/vote", "policy.change"),
    ("GET", "/ui/account", "tokens.own"),
    ("POST", "/ui/account/tokens", "tokens.own"),
    ("POST", "/ui/account/tokens/999/revoke", "tokens.own"),
    ("POST", "/ui/account/password", "tokens.own"),
    ("POST", "/ui/account/totp", "tokens.own"),
    ("POST", "/ui/account/totp/confirm", "tokens.own"),
    ("POST", "/ui/logout", "tokens.own"),
]


def test_the_matrix_names_every_ui_endpoint(app: APIFlask) -> None:
    """A UI route without a line in REFUSALS (or with the wrong permission there) fails."""
    adapter = app.url_map.bind("localhost")
    listed = {}
    for method, path, permission in REFUSALS:
        endpoint, _ = adapter.match(path, method=method)
        assert permission_of(app.view_functions[endpoint]) == permission, (method, path)
        listed[(method, endpoint)] = path
    routes = {(method, rule.endpoint) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/ui")
              and permission_of(app.view_functions[rule.endpoint]) != PUBLIC
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert routes - set(listed) == set(), "UI routes missing from REFUSALS"
    assert set(listed) - routes == set()


@pytest.mark.parametrize("role", ["admin", "approver", "operator", "auditor", "feed"])
def test_pages_and_actions_refused_to_other_roles(populated: APIFlask,
                                                  accounts: dict[str, Account],
                                                  role: str) -> None:
    client = log_in(populated.test_client(), accounts[role])
    nav = client.get("/ui/account").text
    for endpoint, label, permission in NAV:
        assert (f">{label}</a>" in nav) == allowed(role, permission), (role, endpoint)
    csrf = csrf_of(nav)
    for method, path, permission in REFUSALS:
        response = client.open(path, method=method, data={"csrf_token": csrf})
        if allowed(role, permission):
            assert response.status_code != 403, (role, path)
            assert response.status_code < 500 or response.status_code == 503, (role, path)
        else:
            assert response.status_code == 403, (role, path, response.status_code)
            assert f"lacks permission &#39;{permission}&#39;" in response.text


def test_login_with_wrong_totp_and_lockout_message(app: APIFlask) -> None:
    approver = add_user(app, "amir", "approver")
    client = browser(app.test_client())
    page = client.get("/ui/login")
    response = client.post("/ui/login", data={"csrf_token": csrf_of(page.text),
                                              "username": "amir",
                                              "password": approver.password, "totp": "123456"})
    assert response.status_code == 401 and "wrong TOTP code" in response.text
    assert client.get("/ui/").status_code == 302
    stale = client.post("/ui/login", data={"csrf_token": "forged", "username": "amir",
                                           "password": approver.password})
    assert stale.status_code == 400 and "the form expired" in stale.text


def test_admin_creates_user_with_totp_qr(app: APIFlask, accounts: dict[str, Account]) -> None:
    client = log_in(app.test_client(), accounts["admin"])
    page = client.get("/ui/users")
    created = client.post("/ui/users", data={"csrf_token": csrf_of(page.text),
                                             "username": "newbie", "role": "approver"})
    assert created.status_code == 200, created.text
    assert 'src="data:image/svg+xml' in created.text and 'id="totp-secret"' in created.text
    bad = client.post("/ui/users", data={"csrf_token": csrf_of(page.text),
                                         "username": "Bad Name", "role": "approver"})
    assert bad.status_code == 400 and "must match" in bad.text


def test_export_needs_trust_anchors(populated: APIFlask,
                                   accounts: dict[str, Account]) -> None:
    client = log_in(populated.test_client(), accounts["auditor"])
    page = client.get("/ui/audit?record_type=Patch&record_id=p-0001")
    assert "Export evidence bundle" in page.text
    csrf = csrf_of(page.text)
    response = client.post("/ui/audit/evidence", data={"csrf_token": csrf,
                                                       "record_type": "Patch",
                                                       "record_id": "p-0001"})
    assert response.status_code == 503 and "no trust anchors configured" in response.text
    feed = log_in(populated.test_client(), accounts["feed"])
    feed_csrf = csrf_of(feed.get("/ui/account").text)
    assert feed.post("/ui/audit/evidence", data={"csrf_token": feed_csrf}).status_code == 403
