"""The UI's management pages: host enrollment tokens (shown once, revoked: the agent's
enrollment is refused), a patch proposed from an advisory's fixed version (the artifact
uploaded, the candidate confirmed), a patch revoked with a fresh TOTP code, policy proposals
and votes, and the account's password and second factor; each refusal changes nothing."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time

import pyotp
import pytest
from apiflask import APIFlask
from sqlalchemy import insert, select

from patchledger.app.ingest.tables import patch_candidates
from patchledger.app.web import auth
from patchledger.app.web.db import EnrollmentToken, User
from patchledger.app.web.factory import state
from tests.support.ui import Writer
from tests.unit.ui.conftest import browser, csrf_of, log_in
from tests.unit.webapp import test_ledger_flow as flow
from tests.unit.webapp.conftest import PASSWORD, Account, add_user, totp_code

chaincode = flow.chaincode
fake_ca = flow.fake_ca
fake_peer = flow.fake_peer
ledger_app = flow.ledger_app


def _calls(chain: flow.Chaincode, function: str) -> list[list[str]]:
    return [args for f, args in chain.calls if f == function]


# ---------------------------------------------------------------------------- enrollment tokens


def test_enrollment_token_is_shown_once_and_revoked(app: APIFlask,
                                                    accounts: dict[str, Account]) -> None:
    client = log_in(app.test_client(), accounts["operator"])
    page = client.get("/ui/enrollment-tokens")
    assert page.status_code == 200 and 'id="enrollment-form"' in page.text
    created = client.post("/ui/enrollment-tokens", data={
        "csrf_token": csrf_of(page.text), "host_id": "web-17", "valid_hours": "2"})
    assert created.status_code == 200, created.text
    secret = re.search(r'id="enrollment-secret" class="mono" readonly value="(ple_[^"]+)"',
                       created.text)
    assert secret is not None
    with app.app_context():
        token = auth.check_enrollment_token(state().db(), secret.group(1))  # it works
        assert token.host_id == "web-17"
    listed = client.get("/ui/enrollment-tokens").text
    assert "web-17" in listed and secret.group(1) not in listed  # never shown again
    bad = client.post("/ui/enrollment-tokens", data={
        "csrf_token": csrf_of(page.text), "host_id": "a b", "valid_hours": "2"})
    assert bad.status_code == 400 and "host_id" in bad.text
    too_long = client.post("/ui/enrollment-tokens", data={
        "csrf_token": csrf_of(page.text), "host_id": "web-18", "valid_hours": "500"})
    assert too_long.status_code == 400 and "valid_hours" in too_long.text
    with app.app_context():
        assert state().db().scalar(select(EnrollmentToken).where(
            EnrollmentToken.host_id == "web-18")) is None
    revoked = client.post(f"/ui/enrollment-tokens/{token.id}/revoke",
                          data={"csrf_token": csrf_of(page.text)})
    assert revoked.status_code == 200 and 'id="revoked"' in revoked.text
    with app.app_context(), pytest.raises(auth.AuthError, match="expired"):
        auth.check_enrollment_token(state().db(), secret.group(1))
    again = client.post(f"/ui/enrollment-tokens/{token.id}/revoke",
                        data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 409
    assert client.post("/ui/enrollment-tokens/424242/revoke",
                       data={"csrf_token": csrf_of(page.text)}).status_code == 404
    # the hosts page links to it for host.manage only
    assert 'id="enrollment-link"' in client.get("/ui/hosts").text
    auditor = log_in(app.test_client(), accounts["auditor"])
    assert 'id="enrollment-link"' not in auditor.get("/ui/hosts").text


# ---------------------------------------------------------------------------- patch proposal


def _candidate(app: APIFlask) -> str:
    now = int(time.time())
    with app.app_context(), state().engine.begin() as conn:
        w = Writer(conn)
        w.put("Vulnerability", {"vuln_id": "CVE-2024-3094", "severity": "critical",
                                "status": "OPEN", "title": "xz backdoor", "cvss_score": "10.0",
                                "known_exploited": False, "kev_due_date": "", "aliases": [],
                                "sources": []}, now)
        w.flush()
        stamp = "2026-11-30T10:00:00.000000Z"
        conn.execute(insert(patch_candidates).values(
            candidate_id="c" * 32, vuln_id="CVE-2024-3094", package="pkg:deb/debian/xz-utils",
            fixed_version="5.6.1+really5.4.5-1", advisory_ids=json.dumps(["DSA-5649-1"]),
            host_ids=json.dumps(["web-1", "web-2"]), host_count=2, severity="critical",
            status="PENDING", created_at=stamp, updated_at=stamp, decided_by="", patch_id="",
            vuln_ids=json.dumps(["CVE-2024-3094"])))
    return "c" * 32


def test_patch_proposed_from_a_fixed_version(ledger_app: APIFlask,
                                             chaincode: flow.Chaincode) -> None:
    cid = _candidate(ledger_app)
    client = log_in(ledger_app.test_client(), add_user(ledger_app, "olga", "operator"))
    detail = client.get("/ui/vulnerabilities/CVE-2024-3094")
    assert 'id="propose-link"' in detail.text
    form_page = client.get("/ui/patch-proposal?vuln_id=CVE-2024-3094")
    assert form_page.status_code == 200 and "5.6.1+really5.4.5-1" in form_page.text
    csrf = csrf_of(form_page.text)
    artifact = b"the fixed xz-utils package"
    missing = client.post("/ui/patch-proposal", data={
        "csrf_token": csrf, "candidate_id": cid, "patch_id": "xz-fix", "vendor": "Debian"})
    assert missing.status_code == 400 and "artifact" in missing.text
    assert not _calls(chaincode, "ProposePatch")
    done = client.post("/ui/patch-proposal", content_type="multipart/form-data", data={
        "csrf_token": csrf, "candidate_id": cid, "patch_id": "xz-fix", "vendor": "Debian",
        "artifact": (io.BytesIO(artifact), "xz.deb")})
    assert done.status_code == 200, done.text
    (argument,) = _calls(chaincode, "ProposePatch")[0]
    proposed = json.loads(argument)
    digest = hashlib.sha256(artifact).hexdigest()
    assert (proposed["patch_id"], proposed["artifact_sha256"], proposed["artifact_size"],
            proposed["fixes"], proposed["targets"], proposed["artifact_uri"]) == (
        "xz-fix", digest, len(artifact), ["CVE-2024-3094"],
        ["pkg:deb/debian/xz-utils@5.6.1+really5.4.5-1"], f"/api/v1/artifacts/{digest}")
    # stored in the app's artifact store, and the candidate is decided
    assert client.get(f"/api/v1/artifacts/{digest}").data == artifact
    again = client.post("/ui/patch-proposal", data={
        "csrf_token": csrf, "candidate_id": cid, "patch_id": "xz-fix-2", "vendor": "Debian",
        "artifact_sha256": digest})
    assert again.status_code == 409 and "CONFIRMED as xz-fix" in again.text
    assert len(_calls(chaincode, "ProposePatch")) == 1
    assert "No pending candidate" in client.get(
        "/ui/patch-proposal?vuln_id=CVE-2024-3094").text


# ---------------------------------------------------------------------------- revocation


def test_revoke_needs_confirmation_and_a_fresh_totp(ledger_app: APIFlask,
                                                    chaincode: flow.Chaincode) -> None:
    chaincode.records[("Patch", "p-1")] = {**flow.PATCH, "status": "APPROVED"}
    with ledger_app.app_context(), state().engine.begin() as conn:
        w = Writer(conn)
        w.put("Patch", {**flow.PATCH, "status": "APPROVED", "severity": "high",
                        "proposed_by": "SecOpsMSP"}, int(time.time()))
        w.flush()
    approver = add_user(ledger_app, "amir", "approver")
    client = log_in(ledger_app.test_client(), approver)
    detail = client.get("/ui/patches/p-1")
    assert 'id="revoke-start"' in detail.text
    csrf = csrf_of(detail.text)
    confirm = client.post("/ui/patches/p-1/revoke", data={"csrf_token": csrf})
    assert confirm.status_code == 200 and 'id="confirm-revoke"' in confirm.text
    assert "yours is the first vote" in confirm.text
    form = {"csrf_token": csrf, "confirm": "yes", "reason": "the artifact is compromised"}
    wrong = client.post("/ui/patches/p-1/revoke", data={**form, "totp": "000000"})
    assert wrong.status_code == 401 and "wrong TOTP code" in wrong.text
    empty = client.post("/ui/patches/p-1/revoke", data={**form, "reason": " ",
                                                        "totp": totp_code(approver.totp_secret
                                                                          or "", 1)})
    assert empty.status_code == 400 and "reason" in empty.text
    assert not _calls(chaincode, "RevokePatch")
    done = client.post("/ui/patches/p-1/revoke", data={
        **form, "totp": totp_code(approver.totp_secret or "", 1)})
    assert done.status_code == 200, done.text
    assert _calls(chaincode, "RevokePatch") == [["p-1", "the artifact is compromised"]]
    # an operator sees no revoke button and is refused
    operator = log_in(ledger_app.test_client(), add_user(ledger_app, "olga", "operator"))
    assert 'id="revoke-start"' not in operator.get("/ui/patches/p-1").text
    assert operator.post("/ui/patches/p-1/revoke", data={
        "csrf_token": csrf_of(operator.get("/ui/account").text)}).status_code == 403


# ---------------------------------------------------------------------------- policy


def test_policy_proposal_and_vote(ledger_app: APIFlask, chaincode: flow.Chaincode) -> None:
    now = int(time.time())
    policy = {"policy_id": "default", "version": 2, "organizations": ["SecOpsMSP", "ITOpsMSP"],
              "quorum": {"high": 2}, "change_quorum": 2, "revocation_quorum": 2,
              "exception_quorum": 2, "remediation_days": {"high": 30}}
    with ledger_app.app_context(), state().engine.begin() as conn:
        w = Writer(conn)
        w.put("Policy", policy, now)
        w.put("PolicyChange", {"proposal_id": "pc-7", "policy_id": "default",
                               "base_version": 2, "proposed": {**policy, "soak_seconds": 60},
                               "proposed_by": "ITOpsMSP", "approvals": ["ITOpsMSP"],
                               "status": "PROPOSED"}, now)
        w.flush()
    admin = add_user(ledger_app, "ada", "admin")
    client = log_in(ledger_app.test_client(), admin)
    page = client.get("/ui/policy")
    assert 'id="propose-policy-form"' in page.text and "Vote for policy change pc-7" in page.text
    template = re.search(r'<textarea id="pc-policy"[^>]*>([^<]*)</textarea>', page.text)
    assert template is not None
    current = json.loads(template.group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert "version" not in current and current["quorum"] == {"high": 2}
    csrf = csrf_of(page.text)
    bad = client.post("/ui/policy/proposals", data={"csrf_token": csrf, "proposal_id": "pc-8",
                                                    "policy": "{not json"})
    assert bad.status_code == 400 and "policy is not JSON" in bad.text
    listed = client.post("/ui/policy/proposals", data={"csrf_token": csrf,
                                                       "proposal_id": "pc-8", "policy": "[]"})
    assert listed.status_code == 400
    assert not _calls(chaincode, "ProposePolicy")
    proposed = client.post("/ui/policy/proposals", data={
        "csrf_token": csrf, "proposal_id": "pc-8",
        "policy": json.dumps({**current, "soak_seconds": 120})})
    assert proposed.status_code == 200, proposed.text
    ((pid, document),) = _calls(chaincode, "ProposePolicy")
    assert pid == "pc-8" and json.loads(document)["soak_seconds"] == 120
    confirm = client.post("/ui/policy/proposals/pc-7/vote", data={"csrf_token": csrf})
    assert confirm.status_code == 200 and 'id="confirm-vote"' in confirm.text
    assert not _calls(chaincode, "ApprovePolicy")
    voted = client.post("/ui/policy/proposals/pc-7/vote", data={"csrf_token": csrf,
                                                                 "confirm": "yes"})
    assert voted.status_code == 200
    assert _calls(chaincode, "ApprovePolicy") == [["pc-7"]]
    assert client.post("/ui/policy/proposals/nope/vote",
                       data={"csrf_token": csrf}).status_code == 404


# ---------------------------------------------------------------------------- account


def _user(app: APIFlask, username: str) -> User:
    with app.app_context():
        found = state().db().scalar(select(User).where(User.username == username))
        assert found is not None
        return found


def test_password_change(app: APIFlask) -> None:
    account = add_user(app, "olga", "operator")
    client = log_in(app.test_client(), account)
    other = log_in(app.test_client(), account)
    csrf = csrf_of(client.get("/ui/account").text)
    new = "a brand new passphrase"
    cases = [({"current_password": "wrong", "new_password": new, "new_password_again": new},
              400, "current password is wrong"),
             ({"current_password": PASSWORD, "new_password": new,
               "new_password_again": new + "x"}, 400, "repetition differ"),
             ({"current_password": PASSWORD, "new_password": "short",
               "new_password_again": "short"}, 400, "at least 12 characters"),
             ({"current_password": PASSWORD, "new_password": PASSWORD,
               "new_password_again": PASSWORD}, 400, "must differ")]
    before = _user(app, "olga").password_hash
    for form, status, message in cases:
        response = client.post("/ui/account/password", data={"csrf_token": csrf, **form})
        assert response.status_code == status and message in response.text, form
    assert _user(app, "olga").password_hash == before
    done = client.post("/ui/account/password", data={
        "csrf_token": csrf, "current_password": PASSWORD, "new_password": new,
        "new_password_again": new})
    assert done.status_code == 200 and "Password changed" in done.text
    assert client.get("/ui/account").status_code == 200  # this session stays
    assert other.get("/ui/account").status_code == 302  # the other one ended
    assert log_in(app.test_client(), Account("olga", "operator", new, None, "")) is not None
    fresh = browser(app.test_client())
    page = fresh.get("/ui/login")
    old = fresh.post("/ui/login", data={"csrf_token": csrf_of(page.text), "username": "olga",
                                        "password": PASSWORD})
    assert old.status_code == 401


def test_totp_reenrolment(app: APIFlask) -> None:
    account = add_user(app, "amir", "approver")
    client = log_in(app.test_client(), account)
    csrf = csrf_of(client.get("/ui/account").text)
    old_secret = account.totp_secret or ""
    no_code = client.post("/ui/account/totp", data={"csrf_token": csrf,
                                                    "current_password": PASSWORD})
    assert no_code.status_code == 401 and "TOTP code is required" in no_code.text
    started = client.post("/ui/account/totp", data={
        "csrf_token": csrf, "current_password": PASSWORD, "totp": totp_code(old_secret, 1)})
    assert started.status_code == 200 and 'id="new-totp-qr"' in started.text
    secret = re.search(r'id="new-totp-secret">([A-Z2-7]{32})<', started.text)
    pending = re.search(r'name="pending" value="([^"]+)"', started.text)
    assert secret and pending
    assert _user(app, "amir").totp_secret == old_secret  # nothing changed yet
    wrong = client.post("/ui/account/totp/confirm", data={
        "csrf_token": csrf, "pending": pending.group(1), "totp": totp_code(old_secret)})
    assert wrong.status_code == 401 and "nothing was changed" in wrong.text
    # a pending secret the attacker chose: the signature does not match
    forged = client.post("/ui/account/totp/confirm", data={
        "csrf_token": csrf, "pending": pending.group(1)[:-4] + "AAAA",
        "totp": pyotp.TOTP(secret.group(1)).now()})
    assert forged.status_code == 400 and "altered" in forged.text
    # another user's session cannot use it
    olga = log_in(app.test_client(), add_user(app, "olga", "operator"))
    stolen = olga.post("/ui/account/totp/confirm", data={
        "csrf_token": csrf_of(olga.get("/ui/account").text), "pending": pending.group(1),
        "totp": pyotp.TOTP(secret.group(1)).now()})
    assert stolen.status_code == 400 and "another user" in stolen.text
    assert _user(app, "amir").totp_secret == old_secret
    done = client.post("/ui/account/totp/confirm", data={
        "csrf_token": csrf, "pending": pending.group(1),
        "totp": pyotp.TOTP(secret.group(1)).now()})
    assert done.status_code == 200 and "Second factor replaced" in done.text
    assert _user(app, "amir").totp_secret == secret.group(1)
    # the confirmation ended the pending form's session version: it cannot be replayed
    replay = client.post("/ui/account/totp/confirm", data={
        "csrf_token": csrf, "pending": pending.group(1),
        "totp": totp_code(secret.group(1), 1)})
    assert replay.status_code == 400
    fresh = browser(app.test_client())
    login = fresh.get("/ui/login")
    form = {"csrf_token": csrf_of(login.text), "username": "amir", "password": PASSWORD}
    assert fresh.post("/ui/login", data={**form, "totp": totp_code(old_secret, 1)}
                      ).status_code == 401  # the old factor no longer opens the account
    assert fresh.post("/ui/login", data={**form, "totp": totp_code(secret.group(1), 1)}
                      ).status_code == 302
    # roles without a second factor have nothing to re-enrol
    refused = olga.post("/ui/account/totp", data={
        "csrf_token": csrf_of(olga.get("/ui/account").text), "current_password": PASSWORD})
    assert refused.status_code == 400 and "password only" in refused.text
