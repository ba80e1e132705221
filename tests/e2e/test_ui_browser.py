"""The web UI in a real browser: Debian's headless Chromium (/usr/bin/chromium, never a
downloaded one) driven by Playwright, against the org app served by waitress on 127.0.0.1
with the fake peer and CA of app.fabric.testing (real gRPC, the approver's own CA-enrolled
key) and a synthesized read model. An approver logs in with TOTP, looks at the dashboard,
the vulnerabilities and a patch, approves it re-entering the TOTP code after seeing what is
signed; an operator plans a rollout in the wizard with a disruption budget and a concurrency
(the submitted waves are the preview's, the plan with its limits is handed to the
dispatcher); an operator creates a host enrollment token (shown once, then revoked) with the
keyboard; an approver revokes a patch after confirming it with a fresh TOTP code; an auditor
is refused the approval and the users page. Screenshots go to tmp/test-artifacts/ (not
committed).

Not here (docs/ui.md): the three-organization flow on the real Fabric network.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask

from patchledger.app.dispatch.planner import RolloutPlan
from patchledger.app.web import auth
from patchledger.app.web.factory import state
from patchledger.chaincode.lifecycle.statement import SignedStatement
from tests.e2e.conftest import serve, shot
from tests.support.fabric.fake_ca import FakeCA
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.ui import Writer, estate
from tests.unit.webapp import test_ledger_flow as flow
from tests.unit.webapp.conftest import Account, add_user, totp_code

pytestmark = pytest.mark.e2e
PORT = int(os.environ.get("PATCHLEDGER_UI_TEST_PORT", "30800"))

chaincode = flow.chaincode
fake_ca = flow.fake_ca
fake_peer = flow.fake_peer


@pytest.fixture
def ledger_app(tmp_path: Path, fake_ca: FakeCA, fake_peer: FakeGateway) -> APIFlask:
    """The app on the fake peer and CA, with a dispatcher board (the wizard hands its plans
    there)."""
    return flow._ledger_app(tmp_path, fake_ca, fake_peer, dispatch_dir=tmp_path / "dispatch")


def _desktop(browser: Any) -> tuple[Any, Any, list[str]]:
    """A 1280 px wide browser context, its page, and the console errors it logs."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


def _csp_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if "Content Security Policy" in e]


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
    context, page, errors = _desktop(browser)
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
    assert not _csp_errors(errors), errors
    context.close()
    tablet.close()


def test_auditor_is_refused_in_chromium(served: str, browser: Any,
                                        ledger_app: APIFlask) -> None:
    auditor = add_user(ledger_app, "audrey", "auditor")
    context, page, _ = _desktop(browser)
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
    context, page, errors = _desktop(browser)
    _login(page, served, operator)
    page.get_by_role("link", name="Plan a rollout").click()
    page.wait_for_url("**/ui/rollouts/new")

    def fill_form() -> None:
        page.get_by_label("Rollout id").fill("ro-browser")
        page.get_by_label("Patch (APPROVED or RELEASED)").select_option("p-0000")
        page.get_by_label("host groups").check()
        page.get_by_label("Groups, one line per wave (comma-separated)").fill("web\ndb,batch")
        page.get_by_label("Canary hosts (a first wave of their own; 0 for none)").fill("2")
        page.get_by_label("Soak between waves (seconds)").fill("1800")

    fill_form()
    budget = page.get_by_label(re.compile("^Disruption budget per wave"))
    concurrency = page.get_by_label(re.compile("^Maximum concurrency per wave"))
    # a bad budget is refused, naming the field, before anything is planned
    budget.fill("0")
    page.get_by_role("button", name="Preview the waves").click()
    page.wait_for_selector("[role=alert]")
    assert "disruption_budget" in page.locator("[role=alert]").inner_text()
    shot(page, "wizard-refused")
    assert not [c for c in chaincode.calls if c[0] == "CreateRollout"]
    page.goto(f"{served}/ui/rollouts/new")
    fill_form()
    budget.fill("3")
    concurrency.fill("50%")
    page.get_by_role("button", name="Preview the waves").click()
    page.wait_for_selector("#preview")
    rows = page.locator("#preview tbody tr")
    assert rows.count() == 3
    assert "3600 s after the start" in rows.nth(2).inner_text()
    shot(page, "wizard-preview")
    # estate(): hosts of SecOps are every third host; groups cycle web, db, batch, edge
    cells = [[rows.nth(i).locator("td").nth(n).inner_text() for n in (2, 4, 5)]
             for i in range(3)]
    preview_hosts = [c[0] for c in cells]
    # the canary's 2 hosts: budget 3 capped at 2, concurrency 50 % of 2 = 1
    assert cells[0][1:] == ["2", "1"]
    assert all(c[1] == str(min(3, int(c[0]))) and c[2] == str(max(1, int(c[0]) // 2))
               for c in cells)
    page.get_by_role("button", name="Create this rollout").click()
    page.wait_for_selector("text=Rollout ro-browser planned")
    assert "handed to the dispatcher" in page.locator("#plan-handed").inner_text()
    shot(page, "wizard-created")
    function, (argument,) = chaincode.calls[-1]
    document = json.loads(argument)
    assert function == "CreateRollout" and document["rollout_id"] == "ro-browser"
    assert [str(len(w["hosts"])) for w in document["waves"]] == preview_hosts
    assert document["soak_seconds"] == 1800
    with ledger_app.app_context():
        dispatch = state().config.dispatch_dir
    assert dispatch is not None
    plan = RolloutPlan.from_dict(json.loads((dispatch / "plans" / "ro-browser.json")
                                            .read_text()))
    assert plan.create_rollout_argument() == document
    assert [[str(len(w.hosts)), str(w.disruption_budget), str(w.max_concurrency)]
            for w in plan.waves] == cells
    assert not _csp_errors(errors), errors
    context.close()


def test_operator_creates_and_revokes_an_enrollment_token(served: str, browser: Any,
                                                          ledger_app: APIFlask) -> None:
    operator = add_user(ledger_app, "otto", "operator")
    context, page, errors = _desktop(browser)
    _login(page, served, operator)
    page.get_by_role("link", name="Hosts").click()
    page.get_by_role("link", name="Enrollment tokens").click()
    page.wait_for_url("**/ui/enrollment-tokens")
    # the keyboard only: the labelled fields, then Enter submits the form
    page.get_by_label("Host id").focus()
    page.keyboard.type("web-browser-1")
    page.keyboard.press("Tab")  # the hint is no stop: next is the validity field
    assert page.evaluate("document.activeElement.id") == "et-hours"
    page.keyboard.press("Control+A")
    page.keyboard.type("4")
    page.keyboard.press("Enter")
    page.wait_for_selector("#new-enrollment-token")
    secret = page.get_by_label("Enrollment token", exact=True).input_value()
    assert secret.startswith("ple_")
    assert "shown once" in page.locator("#new-enrollment-token [role=alert]").inner_text()
    shot(page, "enrollment-token-created")
    with ledger_app.app_context():
        token = auth.check_enrollment_token(state().sessions(), secret)
    assert token.host_id == "web-browser-1"
    page.goto(f"{served}/ui/enrollment-tokens")
    assert secret not in page.content()  # never shown again
    revoke = page.get_by_role("button", name=f"Revoke the enrollment token {token.id} of "
                                             "host web-browser-1")
    revoke.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#revoked")
    shot(page, "enrollment-token-revoked")
    with ledger_app.app_context(), pytest.raises(auth.AuthError, match="expired"):
        auth.check_enrollment_token(state().sessions(), secret)
    assert not _csp_errors(errors), errors
    context.close()


def test_approver_revokes_a_patch(served: str, browser: Any, ledger_app: APIFlask,
                                  chaincode: flow.Chaincode) -> None:
    approver = add_user(ledger_app, "ruth", "approver")
    context, page, errors = _desktop(browser)
    _login(page, served, approver)
    page.goto(f"{served}/ui/patches/p-0000")  # APPROVED in estate()
    page.get_by_role("button", name="Revoke p-0000…").click()
    page.wait_for_selector("#revoke-form")
    assert "yours is the first vote" in page.locator("#revocation-votes").inner_text()
    shot(page, "revoke-confirm")
    page.get_by_label("Reason (recorded on the ledger)").fill("the build was tampered with")
    page.get_by_label("Your TOTP code (a fresh one)").fill("000000")
    page.get_by_role("button", name="Yes, vote to revoke p-0000").click()
    page.wait_for_selector("[role=alert]:has-text('TOTP')")
    assert "wrong TOTP code" in page.locator("[role=alert]").inner_text()
    assert not [c for c in chaincode.calls if c[0] == "RevokePatch"]
    page.goto(f"{served}/ui/patches/p-0000")
    page.get_by_role("button", name="Revoke p-0000…").click()
    page.wait_for_selector("#revoke-form")
    page.get_by_label("Reason (recorded on the ledger)").fill("the build was tampered with")
    page.get_by_label("Your TOTP code (a fresh one)").fill(
        totp_code(approver.totp_secret or "", 1))
    page.get_by_role("button", name="Yes, vote to revoke p-0000").click()
    page.wait_for_selector("text=Revocation of p-0000")
    shot(page, "revoked")
    assert [args for f, args in chaincode.calls if f == "RevokePatch"] == [
        ["p-0000", "the build was tampered with"]]
    assert not _csp_errors(errors), errors
    context.close()
