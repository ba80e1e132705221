"""The web UI in a real browser: Debian's headless Chromium (/usr/bin/chromium, never a
downloaded one) driven by Playwright, against the org app served by waitress on 127.0.0.1
with the fake peer and CA of app.fabric.testing (real gRPC, the approver's own CA-enrolled
key) and a synthesized read model. An approver logs in with TOTP, looks at the dashboard,
the vulnerabilities and a patch, approves it re-entering the TOTP code after seeing what is
signed; an auditor is refused the approval and the users page. Screenshots go to
tmp/test-artifacts/ (not committed).

Not here (docs/ui.md): the three-organization flow on the real Fabric network.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask

from patchledger.app.ui.synth import Writer, estate
from patchledger.app.web.factory import state
from patchledger.chaincode.lifecycle.statement import SignedStatement
from tests.unit.webapp import test_ledger_flow as flow
from tests.unit.webapp.conftest import Account, add_user, totp_code

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "tmp" / "test-artifacts"
PORT = int(os.environ.get("PATCHLEDGER_UI_TEST_PORT", "30800"))

chaincode = flow.chaincode
fake_ca = flow.fake_ca
fake_peer = flow.fake_peer
ledger_app = flow.ledger_app


@pytest.fixture
def served(ledger_app: APIFlask, chaincode: flow.Chaincode) -> Iterator[str]:
    waitress = pytest.importorskip("waitress.server")
    now = int(time.time())
    with ledger_app.app_context(), state().engine.begin() as conn:
        estate(conn, hosts=200, vulns=40, start=now)
        w = Writer(conn, block=100_000)
        w.put("Patch", {**flow.PATCH, "status": "TESTED", "severity": "high",
                        "proposed_by": "SecOpsMSP"}, now)
        w.flush()
    chaincode.records[("Patch", "p-1")] = {**flow.PATCH, "status": "TESTED"}
    server = waitress.create_server(ledger_app, host="127.0.0.1", port=PORT, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{PORT}"
    server.close()
    thread.join(timeout=5)


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (scripts/install.sh installs it)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _login(page: Any, base: str, account: Account) -> None:
    page.goto(f"{base}/ui/login")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    if account.totp_secret:
        page.get_by_label("Authenticator code").fill(totp_code(account.totp_secret))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/ui/")


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
    page.wait_for_function("document.querySelector('#chart-open').dataset.drawn === '1'")
    _shot(page, "dashboard")
    assert page.locator("#waiting").get_by_role("link", name="p-1").count() == 1

    page.get_by_role("link", name="Vulnerabilities").click()
    page.get_by_label("Severity").select_option("critical")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**severity=critical**")
    rows = page.locator("#vuln-table tbody tr")
    assert rows.count() == 10  # estate(): every fourth of 40 is critical
    _shot(page, "vulnerabilities")
    rows.first.get_by_role("link").click()
    page.wait_for_selector("#findings")
    _shot(page, "vulnerability")

    page.goto(f"{served}/ui/patches/p-1")
    assert "Still missing: 2" in page.locator("#quorum").inner_text()
    _shot(page, "patch")
    page.get_by_label("Comment").fill("diff reviewed in the browser")
    page.get_by_label("Statement valid for (days, 1 to 30)").fill("5")
    page.get_by_role("button", name="Review what will be signed").click()
    page.wait_for_selector("#statement")
    assert page.locator("#s-digest").inner_text() == flow.DIGEST
    assert page.locator("#s-decision").inner_text() == "approve"
    _shot(page, "review")
    page.get_by_label("Re-enter your authenticator code to sign").fill(
        totp_code(approver.totp_secret or "", 1))
    page.get_by_role("button", name="Sign and submit").click()
    page.wait_for_selector("text=Signed and submitted")
    _shot(page, "signed")
    function, (argument,) = chaincode.calls[-1]
    statement = SignedStatement.from_dict(json.loads(argument)).statement
    assert function == "Approve" and statement.comment == "diff reviewed in the browser"
    assert statement.artifact_sha256 == flow.DIGEST

    # tablet width: the same dashboard, one column
    tablet = browser.new_context(viewport={"width": 820, "height": 1180})
    tab = tablet.new_page()
    tab.context.add_cookies(context.cookies())
    tab.goto(f"{served}/ui/")
    _shot(tab, "dashboard-tablet")
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
    _shot(page, "refused")
    page.goto(f"{served}/ui/audit")
    page.get_by_role("button", name="Verify the ledger").click()
    page.wait_for_function("document.getElementById('verify-result').dataset.ok !== undefined")
    # this app has no trust anchors configured: the API's 503 is shown, named
    assert "Verification unavailable (503)" in page.locator("#verify-result").inner_text()
    _shot(page, "audit")
    context.close()
