"""The web UI's pages on a synthesized read model: every page renders for the roles allowed
to see it, with the strict CSP and no inline script; the figures shown are the read model's."""

from __future__ import annotations

import re

from apiflask import APIFlask
from flask.testing import FlaskClient

from patchledger.app.ui.views import CSP
from tests.unit.ui.conftest import browser, log_in
from tests.unit.webapp.conftest import Account, totp_code

PAGES = ["/ui/", "/ui/vulnerabilities", "/ui/vulnerabilities/CVE-2026-00000",
         "/ui/vulnerabilities?state=OPEN&severity=high&kev=true&sort=cvss_score&order=desc",
         "/ui/patches", "/ui/patches/p-0001", "/ui/hosts", "/ui/hosts/host-00001",
         "/ui/rollouts", "/ui/rollouts/ro-000", "/ui/policy", "/ui/audit",
         "/ui/audit?record_type=Vulnerability&record_id=CVE-2026-00003", "/ui/audit/blocks/3",
         "/ui/feeds", "/ui/account"]


def test_every_page_renders_with_csp(populated: APIFlask, accounts: dict[str, Account]) -> None:
    client = log_in(populated.test_client(), accounts["operator"])
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["Content-Security-Policy"] == CSP
        html = response.text
        # no inline script: every <script> has a src; no inline style attributes or blocks
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html)), path
        assert "style=" not in html and "<style" not in html, path
        assert not re.search(r"<[^>]+\son[a-z]+=", html), path


def test_dashboard_figures(populated: APIFlask, accounts: dict[str, Account]) -> None:
    client = log_in(populated.test_client(), accounts["approver"])
    html = client.get("/ui/").text
    # estate(): every third vulnerability is MITIGATED, severity cycles over four classes
    open_high = sum(1 for i in range(60) if i % 3 and i % 4 == 1)
    assert f'state=OPEN&amp;severity=high">{open_high}</a>' in html
    # TESTED patches (odd ones) wait for SecOpsMSP's decision
    assert 'href="/ui/patches/p-0001"' in html and 'href="/ui/patches/p-0000"' not in html
    assert "<progress" in html and "ro-000" in html
    assert 'data-chart="bar"' in html


def test_vulnerability_detail_explains_priority(populated: APIFlask,
                                                accounts: dict[str, Account]) -> None:
    client = log_in(populated.test_client(), accounts["auditor"])
    html = client.get("/ui/vulnerabilities/CVE-2026-00000").text
    assert "asset criticality high" in html and "CVSS 7.5 x 4" in html
    assert "History (every version on the ledger)" in html  # auditors have audit.read


def test_unauthenticated_page_redirects_to_login(populated: APIFlask) -> None:
    client = browser(populated.test_client())
    response = client.get("/ui/patches")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/ui/login?next=/ui/patches")


def test_bad_filter_is_a_400_page(populated: APIFlask, accounts: dict[str, Account]) -> None:
    client = log_in(populated.test_client(), accounts["operator"])
    response = client.get("/ui/vulnerabilities?sort=title")
    assert response.status_code == 400 and "sort must be one of" in response.text
    assert response.mimetype == "text/html"
    missing = client.get("/ui/patches/p-nope")
    assert missing.status_code == 404 and "is not in the read model" in missing.text


def test_static_assets_are_vendored(client: FlaskClient) -> None:
    for name in ("vendor/htmx-2.0.11.min.js", "vendor/chart-4.6.1.umd.min.js", "app.js",
                 "app.css"):
        with client.get(f"/ui/static/{name}") as response:
            assert response.status_code == 200 and len(response.data) > 1000, name
    with client.get("/ui/static/../views.py") as response:
        assert response.status_code == 404


def test_api_clients_keep_json_errors(populated: APIFlask,
                                      accounts: dict[str, Account]) -> None:
    client = populated.test_client()
    assert client.get("/ui/patches").status_code == 401  # no Accept: text/html, no redirect
    refused = client.get("/ui/users", headers=accounts["auditor"].headers)
    assert refused.status_code == 403 and refused.json is not None
    assert "users.manage" in refused.json["error"]["message"]


def _check_page(html: str, path: str) -> None:
    """CSP-clean (no inline script, style or handler) and every form control labelled."""
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html)), path
    assert "style=" not in html and "<style" not in html, path
    assert not re.search(r"<[^>]+\son[a-z]+=", html), path
    labels = set(re.findall(r'<label[^>]*\sfor="([^"]+)"', html))
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if 'type="hidden"' in tag or "aria-label=" in tag:
            continue
        found = re.search(r'\sid="([^"]+)"', tag)
        assert found and found.group(1) in labels, (path, tag)
    for tag in re.findall(r"<button\b[^>]*>(.*?)</button>", html, re.S):
        assert tag.strip(), (path, "a button without a name")


def test_management_pages_are_labelled(populated: APIFlask,
                                       accounts: dict[str, Account]) -> None:
    pages: dict[str, list[tuple[str, str, dict[str, str]]]] = {
        "operator": [("GET", "/ui/enrollment-tokens", {}), ("GET", "/ui/rollouts/new", {}),
                     ("GET", "/ui/patch-proposal?vuln_id=CVE-2026-00000", {}),
                     ("POST", "/ui/rollouts/new", {
                         "rollout_id": "ro-x", "patch_id": "p-0000", "mode": "percent",
                         "percentages": "50,50", "canary": "1", "step": "preview"}),
                     ("GET", "/ui/hosts", {}), ("GET", "/ui/vulnerabilities/CVE-2026-00000",
                                                {})],
        "approver": [("POST", "/ui/patches/p-0001/revoke", {}), ("GET", "/ui/patches/p-0000",
                                                                 {})],
        "admin": [("GET", "/ui/policy", {}), ("GET", "/ui/account", {}),
                  ("GET", "/ui/enrollment-tokens", {})],
    }
    clients = {}
    for role, calls in pages.items():
        client = clients[role] = log_in(populated.test_client(), accounts[role])
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/account").text)
        assert csrf
        for method, path, form in calls:
            response = client.open(path, method=method,
                                   data={"csrf_token": csrf.group(1), **form})
            assert response.status_code == 200, (role, path, response.text[:400])
            assert response.headers["Content-Security-Policy"] == CSP
            _check_page(response.text, path)
    # the second-factor enrolment page (QR code, the code field)
    approver = accounts["approver"]
    client = clients["approver"]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/account").text)
    assert csrf
    enrol = client.post("/ui/account/totp", data={
        "csrf_token": csrf.group(1), "current_password": approver.password,
        "totp": totp_code(approver.totp_secret or "", 1)})
    assert enrol.status_code == 200 and 'alt="QR code of the new TOTP' in enrol.text
    _check_page(enrol.text, "/ui/account/totp")
