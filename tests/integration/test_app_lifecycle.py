"""The whole patch lifecycle through the org apps' REST API only, on the real network.

Three apps (SecOps, ITOps, Compliance), in process, each on its own peer and CA and its own
SQLite database, each feeding its read model from its peer's blocks. Each app's bootstrap admin
is made as ``patchledger app init`` makes it; everything after goes through HTTP: the admin
logs in with password and TOTP and creates users; each user logs in (TOTP for approvers) and
creates an API token; the app registers and enrolls each acting user with its CA. Then: a
host's packages are stored, the shared feeds (KEV catalog, a Debian DSA list) imported and
matched, the KEV vulnerability recorded by the feed user and seen in every read model with
its finding, an artifact uploaded, the patch proposed with its digest,
test evidence attached by ITOps, approvals by a SecOps and an ITOps approver each with a fresh
TOTP code (statements signed with their own keys), and APPROVED is read from every
organization's read model.

The network's policy is set once as in the other lifecycle tests (InitLedger by the SecOps
admin, not an app operation).
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from patchledger.app.fabric import create_channel
from patchledger.app.web import auth
from patchledger.app.web.config import SecurityConfig, config_from_mapping
from patchledger.app.web.factory import create_app, state
from patchledger.app.web.projection import ProjectionRunner, start_projection
from tests.integration.lifecycle_world import bootstrap_policy
from tests.support.network import LocalNetwork
from tests.unit.ingest.ingest_support import DPKG, require_feeds
from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, ITOPS, SECOPS

pytestmark = pytest.mark.integration

ORGS = {"secops": SECOPS, "itops": ITOPS, "compliance": COMPLIANCE}
FAST = SecurityConfig(argon2_time_cost=1, argon2_memory_kib=64)


@dataclass
class OrgApp:
    """One organization's app under test."""

    org: str
    app: APIFlask
    client: FlaskClient
    runner: ProjectionRunner
    tokens: dict[str, dict[str, str]]
    totp: dict[str, str]


def _org_values(net: LocalNetwork, org: str, home: Path) -> dict[str, Any]:
    o = net.org(org)
    topology = net.config.topology
    return {
        "org": org, "home": str(home), "peer": o.peer.address,
        "peer_tls_ca": str(net.ca_cert(org)), "ca_url": f"https://{o.ca.address}",
        "ca_tls_ca": str(net.ca_cert(org)), "registrar_msp_dir": str(net.admin_msp(org)),
        "channel": topology.channel,
        "trust": ",".join(f"{t.msp_id}={net.layout.org_msp(t.name)}" for t in topology.orgs),
        "orderer_msp": topology.orderer_org.msp_id,
    }


def _code(secret: str) -> str:
    """A TOTP code of a time step not used yet by this test (waits for the next step when
    the current one was used: a code is accepted once)."""
    step = int(time.time() // 30)
    used = _USED.get(secret, -1)
    if step <= used:
        time.sleep((used + 1) * 30 - time.time() + 0.5)
        step = int(time.time() // 30)
    _USED[secret] = step
    return pyotp.TOTP(secret).at(step * 30)


_USED: dict[str, int] = {}


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.json)
    return response.json


def _build(net: LocalNetwork, org: str, home: Path, run: str) -> OrgApp:
    from dataclasses import replace

    values = _org_values(net, org, home)
    if org == "secops":
        values["feeds"] = ",".join(require_feeds())
    config = replace(config_from_mapping(values), security=FAST)
    app = create_app(config)
    with app.app_context():
        db = state().sessions()
        admin = auth.create_user(db, FAST, "admin", "admin")  # what `app init` does
        db.close()
    client = app.test_client()
    assert admin.totp_secret
    login = _ok(client.post("/api/v1/auth/login", json={
        "username": "admin", "password": admin.password, "totp": _code(admin.totp_secret)}))
    csrf = {"X-CSRFToken": login["csrf_token"]}
    tokens: dict[str, dict[str, str]] = {}
    totp: dict[str, str] = {}
    for role in ("feed", "operator", "approver"):
        name = f"{role}-{run}"
        made = _ok(client.post("/api/v1/users", json={"username": name, "role": role},
                               headers=csrf), 201)
        user_client = app.test_client()
        body = {"username": name, "password": made["password"]}
        if made["totp_secret"]:
            totp[role] = made["totp_secret"]
            body["totp"] = _code(made["totp_secret"])
        session = _ok(user_client.post("/api/v1/auth/login", json=body))
        token = _ok(user_client.post("/api/v1/tokens", json={"name": "lifecycle test"},
                                     headers={"X-CSRFToken": session["csrf_token"]}), 201)
        tokens[role] = {"Authorization": f"Bearer {token['secret']}"}
    return OrgApp(org, app, client, start_projection(app), tokens, totp)


@pytest.fixture(scope="module")
def apps(fabric_network: LocalNetwork, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[dict[str, OrgApp]]:
    net = fabric_network
    channel = create_channel(net.org(SECOPS).peer.address,
                             tls_root_certificates=net.ca_cert(SECOPS).read_bytes())
    try:
        bootstrap_policy(net, channel, net.config.topology.channel)
    finally:
        channel.close()
    run = secrets.token_hex(3)
    built: dict[str, OrgApp] = {}
    try:
        for org in ORGS:
            built[org] = _build(net, org, tmp_path_factory.mktemp(f"app-{org}"), run)
        yield built
    finally:
        for org_app in built.values():
            org_app.runner.stop()
            with org_app.app.app_context():
                state().ledger.close()


def _wait(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.3)


def _state_in(org_app: OrgApp, path: str) -> str | None:
    response = org_app.client.get(path, headers=org_app.tokens["operator"])
    return response.json["state"] if response.status_code == 200 else None


def _has_state(org_app: OrgApp, path: str, wanted: str | None) -> bool:
    """Whether ``path`` is in ``org_app``'s read model (in state ``wanted``, when given)."""
    found = _state_in(org_app, path)
    return found is not None if wanted is None else found == wanted


def _everywhere(apps: dict[str, OrgApp], path: str, wanted: str) -> None:
    for org_app in apps.values():
        _wait(f"{path} {wanted} in {org_app.org}'s read model",
              functools.partial(_has_state, org_app, path, wanted))


def test_patch_lifecycle_through_the_api(apps: dict[str, OrgApp]) -> None:
    secops, itops = apps["secops"], apps["itops"]
    vuln_id = "CVE-2022-46169"  # cacti; in the KEV catalog
    # the SecOps app's feeds are the shared KEV catalog and a Debian DSA list; its operator
    # stores a host's packages (cacti below the DSA-5298-1 fix: CVE-2022-46169, in KEV)
    _ok(secops.client.put("/api/v1/hosts/web-1/packages", json={
        "format": "dpkg", "content": DPKG, "release": "bullseye", "criticality": "high"},
        headers=secops.tokens["operator"]))
    imported = _ok(secops.client.post("/api/v1/feeds/import", headers=secops.tokens["feed"]))
    report = imported["report"]
    assert report["status"] == "ok" and report["findings"] > 0, report
    assert report["refused"] == 0 and report["failed"] == 0, report
    for org_app in apps.values():
        _wait(f"{vuln_id} in {org_app.org}'s read model",
              functools.partial(_has_state, org_app, f"/api/v1/vulnerabilities/{vuln_id}", None))
    kev = _ok(itops.client.get(f"/api/v1/vulnerabilities/{vuln_id}",
                               headers=itops.tokens["operator"]))["record"]
    assert kev["known_exploited"] is True and kev["severity"] == "critical"
    found = _ok(secops.client.get(f"/api/v1/vulnerabilities/{vuln_id}/findings",
                                  headers=secops.tokens["operator"]))["items"]
    assert [(f["host_id"], f["package"].split("@")[0]) for f in found] == [
        ("web-1", "pkg:deb/debian/cacti")]
    assert "CISA KEV" in str(found[0]["priority"])
    # importing the same feeds again writes nothing new
    again = _ok(secops.client.post("/api/v1/feeds/import", headers=secops.tokens["feed"]))
    assert again["report"]["submitted"] == 0, again["report"]

    artifact = f"xz-utils 5.4.5 rebuilt {secrets.token_hex(4)}".encode() * 50
    stored = _ok(secops.client.post("/api/v1/artifacts", data=artifact,
                                    headers=secops.tokens["operator"]), 201)
    patch_id = f"xz-{secrets.token_hex(4)}"
    _ok(secops.client.post("/api/v1/patches", json={
        "patch_id": patch_id, "title": "xz-utils security update", "vendor": "Debian",
        "artifact_sha256": stored["sha256"], "artifact_size": stored["size"],
        "artifact_uri": f"/api/v1/artifacts/{stored['sha256']}", "fixes": [vuln_id],
        "targets": ["pkg:deb/debian/xz-utils"]}, headers=secops.tokens["operator"]), 201)
    _everywhere(apps, f"/api/v1/patches/{patch_id}", "PROPOSED")

    _ok(itops.client.post(f"/api/v1/patches/{patch_id}/evidence", json={
        "report_sha256": "c0" * 32, "uri": "https://ci.itops.example/runs/1",
        "summary": "install, upgrade and rollback suites pass", "passed": True},
        headers=itops.tokens["operator"]))
    _everywhere(apps, f"/api/v1/patches/{patch_id}", "TESTED")

    # an approval without a valid fresh code is refused and reaches no ledger
    refused = secops.client.post(f"/api/v1/patches/{patch_id}/approve",
                                 json={"totp": "000000"}, headers=secops.tokens["approver"])
    assert refused.status_code in (401, 400), refused.json
    for org_app in (secops, itops):
        _ok(org_app.client.post(f"/api/v1/patches/{patch_id}/approve", json={
            "totp": _code(org_app.totp["approver"]), "comment": "diff and evidence reviewed"},
            headers=org_app.tokens["approver"]))
        if org_app is secops:
            _wait("SecOps' approval in ITOps' read model", lambda: itops.client.get(
                f"/api/v1/approvals?patch_id={patch_id}", headers=itops.tokens["operator"]
            ).json["items"] != [])
    _everywhere(apps, f"/api/v1/patches/{patch_id}", "APPROVED")

    compliance = apps["compliance"]
    bundle = _ok(compliance.client.get(f"/api/v1/patches/{patch_id}/bundle",
                                       headers=compliance.tokens["operator"]))["record"]
    statements = [a["statement"]["statement"] for a in bundle["approvals"]]
    assert {s["msp_id"] for s in statements} == {SECOPS, ITOPS}
    assert all(s["artifact_sha256"] == stored["sha256"] for s in statements)
    approvers = {s["approver"] for s in statements}
    assert all(a.startswith("approver-") for a in approvers) and len(approvers) == 2
    history = _ok(compliance.client.get(f"/api/v1/audit/history/Patch/{patch_id}",
                                        headers=compliance.tokens["operator"]))["items"]
    assert [v["state"] for v in history] == ["PROPOSED", "TESTED", "APPROVED"]
    assert {v["creator_msp"] for v in history} >= {SECOPS, ITOPS}
    metrics = secops.client.get("/metrics").get_data(as_text=True)
    assert 'patchledger_ledger_submits_total{function="Approve"} 1.0' in metrics
    status = _ok(compliance.client.get("/api/v1/readmodel/status",
                                       headers=compliance.tokens["operator"]))
    assert status["peer_height"] is not None and status["behind"] is not None
    # an auditor-side check of the whole chain: hashes, orderer and creator signatures
    verified = _ok(compliance.client.post("/api/v1/audit/verify", json={},
                                          headers=compliance.tokens["operator"]))
    assert verified["ok"] is True, verified["inconsistency"]
    assert verified["blocks_checked"] == verified["stop"] + 1 >= status["projected"]
    approve_tx = next(v["tx_id"] for v in history if v["state"] == "APPROVED")
    tx = _ok(compliance.client.get(f"/api/v1/audit/transactions/{approve_tx}",
                                   headers=compliance.tokens["operator"]))["transaction"]
    assert tx["function"] == "Approve" and tx["creator_msp"] == ITOPS and tx["valid"]
    assert "approver-" in tx["creator_subject"]
