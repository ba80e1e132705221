"""Three organizations in the browser on the real Fabric network: the SecOps and ITOps
approvers each log in with password and TOTP to their own organization's app (served by
waitress, feeding its read model from its own peer), review the statement and approve the
same patch re-entering the TOTP code, and see their transaction id once their block is
projected; Compliance's auditor then sees the patch APPROVED in Compliance's own app and
verifies the ledger there, then exports the patch's evidence bundle, which the CLI verifies
offline (and a forged or cut bundle fails). Screenshots in tmp/test-artifacts/.

The apps, their users and the patch up to TESTED come from the API lifecycle test's fixture
(tests/integration/test_app_lifecycle.py); ports are PATCHLEDGER_TEST_PORT_BASE + 801..803.
"""

from __future__ import annotations

import copy
import functools
import os
import secrets
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyotp
import pytest

from patchledger.app.cli import main
from patchledger.app.reports.evidence import load_bundle, verify_bundle
from patchledger.app.web import auth
from patchledger.app.web.factory import state
from tests.e2e.conftest import serve, shot
from tests.e2e.test_ui_browser import login
from tests.integration import test_app_lifecycle as lifecycle
from tests.integration.lifecycle_world import kev_entry, vulnerability_of

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
apps = lifecycle.apps
PASSWORD = "browser password 1"
BASE_PORT = int(os.environ.get("PATCHLEDGER_TEST_PORT_BASE", "30000")) + 801


def _user(org_app: lifecycle.OrgApp, name: str, role: str) -> str:
    """A user with a known password; its TOTP secret ("" for roles without one)."""
    with org_app.app.app_context():
        db = state().sessions()
        made = auth.create_user(db, lifecycle.FAST, name, role, PASSWORD)
        db.close()
    return made.totp_secret or ""


def _tested_patch(apps: dict[str, lifecycle.OrgApp]) -> str:
    """A KEV vulnerability, an uploaded artifact, a patch proposed by SecOps with ITOps'
    passing evidence: TESTED in every read model. Returns the patch id."""
    secops, itops = apps["secops"], apps["itops"]
    vulnerability = vulnerability_of(kev_entry())
    recorded = secops.client.post("/api/v1/vulnerabilities", json=vulnerability,
                                  headers=secops.tokens["feed"])
    assert recorded.status_code in (201, 409), recorded.json
    artifact = f"openssl rebuilt {secrets.token_hex(4)}".encode() * 40
    stored = lifecycle._ok(secops.client.post("/api/v1/artifacts", data=artifact,
                                              headers=secops.tokens["operator"]), 201)
    patch_id = f"web-{secrets.token_hex(4)}"
    lifecycle._ok(secops.client.post("/api/v1/patches", json={
        "patch_id": patch_id, "title": "openssl security update", "vendor": "Debian",
        "artifact_sha256": stored["sha256"], "artifact_size": stored["size"],
        "artifact_uri": f"/api/v1/artifacts/{stored['sha256']}",
        "fixes": [vulnerability["vuln_id"]], "targets": ["pkg:deb/debian/openssl"]},
        headers=secops.tokens["operator"]), 201)
    lifecycle._wait("the proposal in ITOps' read model", functools.partial(
        lifecycle._has_state, itops, f"/api/v1/patches/{patch_id}", "PROPOSED"))
    lifecycle._ok(itops.client.post(f"/api/v1/patches/{patch_id}/evidence", json={
        "report_sha256": "c1" * 32, "uri": "https://ci.itops.example/runs/2",
        "summary": "suites pass", "passed": True}, headers=itops.tokens["operator"]))
    lifecycle._everywhere(apps, f"/api/v1/patches/{patch_id}", "TESTED")
    return patch_id


def _approve(browser: Any, base: str, org: str, username: str, secret: str,
             patch_id: str) -> str:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    totp = pyotp.TOTP(secret)
    login(page, base, username, PASSWORD, totp.now())
    shot(page, f"network-{org}-dashboard")
    page.goto(f"{base}/ui/patches/{patch_id}")
    page.get_by_label("Comment").fill(f"{org}: reviewed in the browser")
    page.get_by_role("button", name="Review what will be signed").click()
    page.wait_for_selector("#statement")
    shot(page, f"network-{org}-review")
    # a code of the next time step: the login's code is used, a replay would be refused
    page.get_by_label("Re-enter your authenticator code to sign").fill(
        totp.at(time.time() + 30))
    page.get_by_role("button", name="Sign and submit").click()
    page.wait_for_selector("#tx-id")
    tx_id: str = page.locator("#tx-id").inner_text()
    shot(page, f"network-{org}-signed")
    context.close()
    return tx_id


def test_two_approvers_in_their_own_apps_then_compliance_sees_approved(
        apps: dict[str, lifecycle.OrgApp], browser: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run = secrets.token_hex(3)
    patch_id = _tested_patch(apps)
    secrets_of = {org: _user(apps[org], f"web-approver-{run}", "approver")
                  for org in ("secops", "itops")}
    _user(apps["compliance"], f"web-auditor-{run}", "auditor")
    with ExitStack() as stack:
        bases = {org: stack.enter_context(serve(apps[org].app, BASE_PORT + i))
                 for i, org in enumerate(("secops", "itops", "compliance"))}
        tx_ids = {org: _approve(browser, bases[org], org, f"web-approver-{run}",
                                secrets_of[org], patch_id) for org in ("secops", "itops")}
        assert all(len(t) == 64 for t in tx_ids.values()) and len(set(tx_ids.values())) == 2
        lifecycle._everywhere(apps, f"/api/v1/patches/{patch_id}", "APPROVED")

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(60_000)
        page = context.new_page()
        login(page, bases["compliance"], f"web-auditor-{run}", PASSWORD)
        page.goto(f"{bases['compliance']}/ui/patches/{patch_id}")
        assert page.locator("#patch-state").inner_text() == "APPROVED"
        approvals = page.locator("#approvals tbody tr")
        assert approvals.count() == 2
        shot(page, "network-compliance-patch-approved")
        page.goto(f"{bases['compliance']}/ui/")
        shot(page, "network-compliance-dashboard")
        page.goto(f"{bases['compliance']}/ui/audit")
        page.get_by_role("button", name="Verify the ledger").click()
        page.wait_for_selector("#verify-result[data-ok]")
        result = page.locator("#verify-result").inner_text()
        assert result.startswith("Ledger verified"), result
        shot(page, "network-compliance-verified")

        # evidence export, verified offline by the CLI; tampering is found
        page.goto(f"{bases['compliance']}/ui/audit?record_type=Patch&record_id={patch_id}")
        with page.expect_download() as download:
            page.get_by_role("button", name="Export evidence bundle").click()
        bundle = tmp_path / "evidence.json"
        download.value.save_as(str(bundle))
        context.close()
    assert main(["report", "verify-evidence", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "evidence verified" in out and "record versions checked: 5" in out, out
    doc = load_bundle(bundle.read_bytes())
    forged = copy.deepcopy(doc)
    forged["records"][0]["versions"][-1]["record"]["title"] = "something else"
    assert any("content differs" in p for p in verify_bundle(forged).problems)
    cut = copy.deepcopy(doc)
    del cut["blocks"][1]
    assert not verify_bundle(cut).ok
