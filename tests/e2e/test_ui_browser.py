"""The web UI in a real browser: Debian's headless Chromium (/usr/bin/chromium, never a
downloaded one) driven by Playwright, against the org app served by waitress on 127.0.0.1
with the fake peer and CA of app.fabric.testing (real gRPC, the approver's own CA-enrolled
key) and a synthesized read model. An approver logs in with TOTP, looks at the dashboard,
the vulnerabilities and a patch, approves it re-entering the TOTP code after seeing what is
signed; an operator plans a rollout in the wizard (the submitted waves are the preview's);
an auditor is refused the approval and the users page. Screenshots go to
tmp/test-artifacts/ (not committed).

Not here (docs/ui.md): the three-organization flow on the real Fabric network.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from apiflask import APIFlask

from patchledger.app.web.factory import state
from patchledger.chaincode.lifecycle.statement import SignedStatement
from tests.e2e.conftest import serve, shot
from tests.support.ui import Writer, estate
from tests.unit.webapp import test_ledger_flow as flow
from tests.unit.webapp.conftest import Account, add_user, totp_code

pytestmark = pytest.mark.e2e
PORT = int(os.environ.get("PATCHLEDGER_UI_TEST_PORT", "30800"))

chaincode = flow.chaincode
fake_ca = flow.fake_ca
fake_peer = flow.fake_peer
ledger_app = flow.ledger_app


@pytest.fixture
def served(ledger_app: APIFlask, chaincode: flow.Chaincode) -> Iterator[str]:
    now = int(time.time())
    with ledger_app.app_context(), state().engine.begin() as conn:
        estate(conn, hosts=200, vulns=40, start=now)
        w = Writer(conn, block=100_000)
        w.put("Patch", {**flow.PATCH, "status": "TESTED", "severity": "high",
                        "proposed_by": "SecOpsMSP"}, now)
        w.flush()
    chaincode.records[("Patch", "p-1")] = {**flow.PATCH, "status": "TESTED"}
    with serve(ledger_app, PORT) as base:
        yield base


def login(page: Any, base: str, username: str, password: str, code: str = "") -> None:
    """Log in through the login form."""
    page.goto(f"{base}/ui/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    if code:
        page.get_by_label("Authenticator code").fill(code)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/ui/")


def _login(page: Any, base: str, account: Account) -> None:
    login(page, base, account.username, account.password,
          totp_code(account.totp_secret) if account.totp_secret else "")


def test_approver_flow_in_chromium(served: str, browser: Any, ledger_app: APIFlask,
                                   chaincode: flow.Chaincode) -> None:
    approver = add_user(ledger_app, "amir", "approver")
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _login(page, served, approver)
    page.wait_for_selector("#chart-open")
    page.wait_for_selector("#chart-open[data-drawn='1']")
    shot(page, "dashboard")
    assert page.locator("#waiting").get_by_role("link", name="p-1").count() == 1

    page.get_by_role("link", name="Vulnerabilities").click()
    page.wait_for_url("**/ui/vulnerabilities")
    page.get_by_label("Severity", exact=True).select_option("critical")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**severity=critical**")
    rows = page.locator("#vuln-table tbody tr")
    assert rows.count() == 10  # estate(): every fourth of 40 is critical
    shot(page, "vulnerabilities")
    rows.first.get_by_role("link").click()
    page.wait_for_selector("#findings")
    shot(page, "vulnerability")

    page.goto(f"{served}/ui/patches/p-1")
    assert "Still missing: 2" in page.locator("#quorum").inner_text()
    shot(page, "patch")
    page.get_by_label("Comment").fill("diff reviewed in the browser")
    page.get_by_label("Statement valid for (days, 1 to 30)").fill("5")
    page.get_by_role("button", name="Review what will be signed").click()
    page.wait_for_selector("#statement")
    assert page.locator("#s-digest").inner_text() == flow.DIGEST
    assert page.locator("#s-decision").inner_text() == "approve"
    shot(page, "review")
    page.get_by_label("Re-enter your authenticator code to sign").fill(
        totp_code(approver.totp_secret or "", 1))
    page.get_by_role("button", name="Sign and submit").click()
    page.wait_for_selector("text=Signed and submitted")
    shot(page, "signed")
    function, (argument,) = chaincode.calls[-1]
    statement = SignedStatement.from_dict(json.loads(argument)).statement
    assert function == "Approve" and statement.comment == "diff reviewed in the browser"
    assert statement.artifact_sha256 == flow.DIGEST

    # tablet width: the same dashboard, one column
    tablet = browser.new_context(viewport={"width": 820, "height": 1180})
    tab = tablet.new_page()
    tab.context.add_cookies(context.cookies())
    tab.goto(f"{served}/ui/")
    shot(tab, "dashboard-tablet")
    width = tab.evaluate("document.documentElement.scrollWidth")
    assert width <= 820, f"horizontal scroll at tablet width ({width} px)"
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
    tablet.close()


def test_auditor_is_refused_in_chromium(served: str, browser: Any,
                                        ledger_app: APIFlask) -> None:
    auditor = add_user(ledger_app, "audrey", "auditor")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    _login(page, served, auditor)
    page.goto(f"{served}/ui/patches/p-1")
    assert page.get_by_role("button", name="Review what will be signed").count() == 0
    response = page.goto(f"{served}/ui/users")
    assert response is not None and response.status == 403
    assert "lacks permission 'users.manage'" in page.locator("[role=alert]").inner_text()
    shot(page, "refused")
    page.goto(f"{served}/ui/audit")
    page.get_by_role("button", name="Verify the ledger").click()
    page.wait_for_selector("#verify-result[data-ok]")
    # this app has no trust anchors configured: the API's 503 is shown, named
    assert "Verification unavailable (503)" in page.locator("#verify-result").inner_text()
    shot(page, "audit")
    context.close()


def test_operator_plans_a_rollout_in_the_wizard(served: str, browser: Any,
                                                ledger_app: APIFlask,
                                                chaincode: flow.Chaincode) -> None:
    operator = add_user(ledger_app, "olga", "operator")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    _login(page, served, operator)
    page.get_by_role("link", name="Plan a rollout").click()
    page.wait_for_url("**/ui/rollouts/new")
    page.get_by_label("Rollout id").fill("ro-browser")
    page.get_by_label("Patch (APPROVED or RELEASED)").select_option("p-0000")
    page.get_by_label("host groups").check()
    page.get_by_label("Groups, one line per wave (comma-separated)").fill("web\ndb,batch")
    page.get_by_label("Canary hosts (a first wave of their own; 0 for none)").fill("2")
    page.get_by_label("Soak between waves (seconds)").fill("1800")
    page.get_by_role("button", name="Preview the waves").click()
    page.wait_for_selector("#preview")
    rows = page.locator("#preview tbody tr")
    assert rows.count() == 3
    assert "3600 s after the start" in rows.nth(2).inner_text()
    shot(page, "wizard-preview")
    # estate(): hosts of SecOps are every third host; groups cycle web, db, batch, edge
    preview_hosts = [rows.nth(i).locator("td").nth(2).inner_text() for i in range(3)]
    page.get_by_role("button", name="Create this rollout").click()
    page.wait_for_selector("text=Rollout ro-browser planned")
    function, (argument,) = chaincode.calls[-1]
    document = json.loads(argument)
    assert function == "CreateRollout" and document["rollout_id"] == "ro-browser"
    assert [str(len(w["hosts"])) for w in document["waves"]] == preview_hosts
    assert document["soak_seconds"] == 1800
    context.close()
