"""The API of the UI's management actions (app/web/api): revoking a host enrollment token,
changing the own password, re-enrolling the own second factor (session logins only: an API
token is refused) and a vulnerability's patch candidates (list, detail, dismiss). Each is the
function the UI calls too; bad input is a 400 naming the field and changes nothing; other
roles are refused. The attacks: a revoked enrollment token used at enrollment, guessing the
current password from a session (lockout), a code of the old second factor after
re-enrolment."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pyotp
import pytest
from apiflask import APIFlask
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from patchledger.agent.enroll import build_csr
from patchledger.app.ingest.tables import patch_candidates
from patchledger.app.web.db import EnrollmentToken, User
from patchledger.app.web.factory import state
from tests.support.ui import Writer
from tests.unit.ui.conftest import csrf_of, log_in
from tests.unit.webapp import test_ledger_flow as flow
from tests.unit.webapp.conftest import (
    PASSWORD,
    SECURITY,
    Account,
    add_user,
    agent_headers,
    totp_code,
)
from tests.unit.webapp.test_agent_api import agent_app  # noqa: F401  (pytest fixture)
from tests.unit.webapp.test_ledger_flow import (  # noqa: F401  (pytest fixtures)
    chaincode,
    fake_ca,
    fake_peer,
    ledger_app,
)

NEW_PASSWORD = "a brand new passphrase"


def _session(app: APIFlask, account: Account, *, steps: int = 0) -> tuple[FlaskClient,
                                                                          dict[str, str]]:
    """A client logged in through the API and its CSRF header."""
    client = app.test_client()
    body: dict[str, Any] = {"username": account.username, "password": account.password}
    if account.totp_secret:
        body["totp"] = totp_code(account.totp_secret, steps)
    login = client.post("/api/v1/auth/login", json=body)
    assert login.status_code == 200, login.json
    return client, {"X-CSRFToken": login.json["csrf_token"]}


def _user(app: APIFlask, username: str) -> User:
    with app.app_context():
        db = state().sessions()
        found: User | None = db.scalar(select(User).where(User.username == username))
        db.close()
        assert found is not None
        return found


def _error(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json["error"]
    return error


# ---------------------------------------------------------------------------- enrollment tokens


def _new_token(client: FlaskClient, account: Account, host_id: str) -> dict[str, Any]:
    made = client.post("/api/v1/hosts/enrollment-tokens", json={"host_id": host_id},
                       headers=account.headers)
    assert made.status_code == 201, made.json
    body = made.json
    assert isinstance(body, dict)
    return body


def _enroll(client: FlaskClient, secret: str, host_id: str) -> Any:
    key = ec.generate_private_key(ec.SECP256R1())
    return client.post("/api/v1/agent/enroll", headers=agent_headers(), json={
        "token": secret, "host_id": host_id, "csr_pem": build_csr(key, host_id).decode()})


def test_a_revoked_enrollment_token_is_refused_at_enrollment(agent_app: APIFlask) -> None:  # noqa: F811
    operator = add_user(agent_app, "olga", "operator")
    client = agent_app.test_client()
    revoked = _new_token(client, operator, "web-01")
    live = _new_token(client, operator, "web-02")
    answer = client.delete(f"/api/v1/hosts/enrollment-tokens/{revoked['token']['id']}",
                           headers=operator.headers)
    assert answer.status_code == 200, answer.json
    assert answer.json["id"] == revoked["token"]["id"] and answer.json["used_at"] is None
    # the attack: the agent presents the revoked token (as it would after a leak)
    refused = _enroll(client, revoked["secret"], "web-01")
    assert refused.status_code == 401 and _error(refused)["field"] == "token"
    assert "expired" in _error(refused)["message"]
    # the control: an unrevoked token of the same operator enrolls its host
    assert _enroll(client, live["secret"], "web-02").status_code == 200
    # a used token has nothing to revoke; the list shows both as they are
    used = client.delete(f"/api/v1/hosts/enrollment-tokens/{live['token']['id']}",
                         headers=operator.headers)
    assert used.status_code == 409 and "was used at" in _error(used)["message"]
    listed = {t["host_id"]: t for t in client.get("/api/v1/hosts/enrollment-tokens",
                                                  headers=operator.headers).json["items"]}
    assert listed["web-02"]["used_at"] and listed["web-01"]["used_at"] is None


def test_enrollment_token_revocation_bad_input_and_roles(app: APIFlask, client: FlaskClient,
                                                          accounts: dict[str, Account]) -> None:
    token = _new_token(client, accounts["operator"], "web-07")
    path = f"/api/v1/hosts/enrollment-tokens/{token['token']['id']}"
    with app.app_context():
        expires = state().db().get(EnrollmentToken, token["token"]["id"]).expires_at  # type: ignore[union-attr]
    for role in ("approver", "auditor", "feed"):
        refused = client.delete(path, headers=accounts[role].headers)
        assert refused.status_code == 403 and "host.manage" in _error(refused)["message"]
    for missing in (424242, 0, 2**64):
        answer = client.delete(f"/api/v1/hosts/enrollment-tokens/{missing}",
                               headers=accounts["admin"].headers)
        assert answer.status_code == 404 and _error(answer)["field"] == "token_id", missing
    assert client.delete("/api/v1/hosts/enrollment-tokens/abc",
                         headers=accounts["admin"].headers).status_code in (404, 405)
    with app.app_context():  # nothing changed by the refusals
        assert state().db().get(EnrollmentToken, token["token"]["id"]).expires_at == expires  # type: ignore[union-attr]
    assert client.delete(path, headers=accounts["admin"].headers).status_code == 200
    again = client.delete(path, headers=accounts["admin"].headers)
    assert again.status_code == 409 and "expired at" in _error(again)["message"]


# ---------------------------------------------------------------------------- password


def test_password_change_through_the_api(app: APIFlask) -> None:
    account = add_user(app, "olga", "operator")
    laptop, csrf = _session(app, account)
    phone, _ = _session(app, account)
    before = _user(app, "olga").password_hash
    cases = [({"current_password": "wrong wrong", "new_password": NEW_PASSWORD},
              "current_password", "current password is wrong"),
             ({"current_password": PASSWORD, "new_password": "short"},
              "json.new_password", "new_password"),
             ({"current_password": PASSWORD, "new_password": PASSWORD},
              "new_password", "must differ"),
             ({"new_password": NEW_PASSWORD}, "json.current_password", "current_password"),
             ({"current_password": PASSWORD, "new_password": 12}, "json.new_password",
              "new_password")]
    for body, field, message in cases:
        answer = laptop.post("/api/v1/account/password", json=body, headers=csrf)
        assert answer.status_code == 400, (body, answer.json)
        error = _error(answer)
        assert error.get("field") == field or field in error.get("fields", {}), (body, error)
        assert message in error["message"], (body, error)
    no_csrf = laptop.post("/api/v1/account/password", json={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert no_csrf.status_code == 400 and _error(no_csrf)["field"] == "X-CSRFToken"
    assert _user(app, "olga").password_hash == before  # nothing changed
    assert _user(app, "olga").failed_logins == 1  # the wrong current password counted
    done = laptop.post("/api/v1/account/password", json={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=csrf)
    assert done.status_code == 200, done.json
    assert laptop.get("/api/v1/auth/me").status_code == 200  # this session stays
    assert phone.get("/api/v1/auth/me").status_code == 401  # the other one ended
    fresh = app.test_client()
    assert fresh.post("/api/v1/auth/login", json={"username": "olga",
                                                  "password": PASSWORD}).status_code == 401
    assert fresh.post("/api/v1/auth/login", json={"username": "olga",
                                                  "password": NEW_PASSWORD}).status_code == 200


def test_wrong_current_passwords_lock_the_account(app: APIFlask) -> None:
    """A stolen session cannot guess the password: each wrong guess counts toward lockout."""
    account = add_user(app, "olga", "operator")
    client, csrf = _session(app, account)
    before = _user(app, "olga").password_hash
    for guess in range(SECURITY.lockout_threshold):
        answer = client.post("/api/v1/account/password", json={
            "current_password": f"guess number {guess}", "new_password": NEW_PASSWORD},
            headers=csrf)
        assert answer.status_code == 400, answer.json
    locked = client.post("/api/v1/account/password", json={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=csrf)
    assert locked.status_code == 423 and "locked until" in _error(locked)["message"]
    assert _user(app, "olga").password_hash == before
    login = app.test_client().post("/api/v1/auth/login", json={"username": "olga",
                                                               "password": PASSWORD})
    assert login.status_code == 423  # the right password is refused while locked


@pytest.mark.parametrize("role", ["admin", "approver", "operator", "auditor", "feed"])
def test_an_api_token_cannot_change_credentials(app: APIFlask, accounts: dict[str, Account],
                                                role: str) -> None:
    account = accounts[role]
    client = app.test_client()
    before = _user(app, account.username)
    code = totp_code(account.totp_secret, 1) if account.totp_secret else "123456"
    for path, body in [
            ("/api/v1/account/password", {"current_password": PASSWORD,
                                          "new_password": NEW_PASSWORD}),
            ("/api/v1/account/totp", {"current_password": PASSWORD, "totp": code}),
            ("/api/v1/account/totp/confirm", {"pending": "x", "totp": code}),
            ("/api/v1/account/password", {})]:  # refused before the input is read
        answer = client.post(path, json=body, headers=account.headers)
        assert answer.status_code == 403, (path, answer.json)
        assert _error(answer)["field"] == "Authorization"
        assert "API token may not change the password or the second factor" in \
            _error(answer)["message"]
    after = _user(app, account.username)
    assert (after.password_hash, after.totp_secret, after.totp_last_step,
            after.failed_logins) == (before.password_hash, before.totp_secret,
                                     before.totp_last_step, before.failed_logins)


def test_the_ui_refuses_an_api_token_too(app: APIFlask) -> None:
    """The UI's account forms share the API's function: a bearer token sent to them (no
    CSRF check applies to it) is refused the same way."""
    account = add_user(app, "olga", "operator")
    before = _user(app, "olga").password_hash
    answer = app.test_client().post("/ui/account/password", headers=account.headers, data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD})
    assert answer.status_code == 403
    assert _user(app, "olga").password_hash == before


# ---------------------------------------------------------------------------- second factor


def test_totp_reenrolment_through_the_api(app: APIFlask) -> None:
    account = add_user(app, "amir", "approver")
    old = account.totp_secret or ""
    client, csrf = _session(app, account, steps=-1)
    other, _ = _session(app, account)
    bad = [({"current_password": PASSWORD}, "json.totp"),
           ({"current_password": PASSWORD, "totp": "12345"}, "json.totp"),
           ({"totp": totp_code(old, 1)}, "json.current_password"),
           ({"current_password": "wrong wrong", "totp": totp_code(old, 1)},
            "current_password")]
    for body, field in bad:
        answer = client.post("/api/v1/account/totp", json=body, headers=csrf)
        assert answer.status_code == 400, (body, answer.json)
        error = _error(answer)
        assert error.get("field") == field or field in error.get("fields", {}), (body, error)
    wrong = client.post("/api/v1/account/totp", json={"current_password": PASSWORD,
                                                      "totp": "000000"}, headers=csrf)
    assert wrong.status_code == 401 and _error(wrong)["field"] == "totp"
    started = client.post("/api/v1/account/totp", json={
        "current_password": PASSWORD, "totp": totp_code(old, 1)}, headers=csrf)
    assert started.status_code == 200, started.json
    new, pending = started.json["secret"], started.json["pending"]
    assert started.json["uri"].startswith("otpauth://totp/") and new in started.json["uri"]
    assert started.json["expires_in"] == 600
    assert _user(app, "amir").totp_secret == old  # nothing stored before the confirmation
    confirm_bad = [({"pending": pending, "totp": totp_code(old)}, 401, "totp"),
                   ({"pending": pending[:-4] + "AAAA", "totp": pyotp.TOTP(new).now()}, 400,
                    "pending"),
                   ({"pending": pending}, 400, "json.totp"),
                   ({"totp": pyotp.TOTP(new).now()}, 400, "json.pending")]
    for body, status, field in confirm_bad:
        answer = client.post("/api/v1/account/totp/confirm", json=body, headers=csrf)
        assert answer.status_code == status, (body, answer.json)
        error = _error(answer)
        assert error.get("field") == field or field in error.get("fields", {}), (body, error)
    # another user's session cannot confirm it
    olga, olga_csrf = _session(app, add_user(app, "olga", "operator"))
    stolen = olga.post("/api/v1/account/totp/confirm", json={
        "pending": pending, "totp": pyotp.TOTP(new).now()}, headers=olga_csrf)
    assert stolen.status_code == 400 and "another user" in _error(stolen)["message"]
    assert _user(app, "amir").totp_secret == old
    done = client.post("/api/v1/account/totp/confirm", json={
        "pending": pending, "totp": pyotp.TOTP(new).now()}, headers=csrf)
    assert done.status_code == 200, done.json
    assert _user(app, "amir").totp_secret == new
    assert client.get("/api/v1/auth/me").status_code == 200  # this session stays
    assert other.get("/api/v1/auth/me").status_code == 401  # the other one ended
    replay = client.post("/api/v1/account/totp/confirm", json={
        "pending": pending, "totp": totp_code(new, 1)}, headers=csrf)
    assert replay.status_code == 400 and _error(replay)["field"] == "pending"


def test_a_code_of_the_old_second_factor_is_refused_after_reenrolment(app: APIFlask) -> None:
    account = add_user(app, "amir", "approver")
    old = account.totp_secret or ""
    client, csrf = _session(app, account)
    started = client.post("/api/v1/account/totp", json={
        "current_password": PASSWORD, "totp": totp_code(old, 1)}, headers=csrf)
    new = started.json["secret"]
    assert client.post("/api/v1/account/totp/confirm", json={
        "pending": started.json["pending"], "totp": pyotp.TOTP(new).now()},
        headers=csrf).status_code == 200
    # the attack: an old authenticator entry (a lost phone, a copied secret), a fresh code
    login = app.test_client().post("/api/v1/auth/login", json={
        "username": "amir", "password": PASSWORD, "totp": totp_code(old, 1)})
    assert login.status_code == 401 and "wrong TOTP code" in _error(login)["message"]
    again = client.post("/api/v1/account/totp", json={
        "current_password": PASSWORD, "totp": totp_code(old, 1)}, headers=csrf)
    assert again.status_code == 401 and _error(again)["field"] == "totp"
    # the control: the new factor opens the account
    assert app.test_client().post("/api/v1/auth/login", json={
        "username": "amir", "password": PASSWORD, "totp": totp_code(new, 1)}).status_code == 200


def test_roles_without_a_second_factor_have_nothing_to_reenrol(app: APIFlask) -> None:
    client, csrf = _session(app, add_user(app, "olga", "operator"))
    answer = client.post("/api/v1/account/totp", json={"current_password": PASSWORD,
                                                       "totp": "123456"}, headers=csrf)
    assert answer.status_code == 400 and "password only" in _error(answer)["message"]
    assert _user(app, "olga").totp_secret is None


# ---------------------------------------------------------------------------- patch candidates


def _candidates(app: APIFlask) -> list[str]:
    """Three pending candidates of CVE-2024-3094, one of CVE-2024-0001, one dismissed."""
    stamp = "2026-11-30T10:00:00.000000Z"
    ids = []
    with app.app_context(), state().engine.begin() as conn:
        w = Writer(conn)
        for vuln in ("CVE-2024-3094", "CVE-2024-0001"):
            w.put("Vulnerability", {"vuln_id": vuln, "severity": "critical",
                                    "status": "OPEN", "title": vuln, "cvss_score": "10.0",
                                    "known_exploited": False, "kev_due_date": "",
                                    "aliases": [], "sources": []}, int(time.time()))
        w.flush()
        for n, (vuln, status) in enumerate([("CVE-2024-3094", "PENDING")] * 3 + [
                ("CVE-2024-0001", "PENDING"), ("CVE-2024-3094", "DISMISSED")]):
            cid = f"{n:x}" * 32
            ids.append(cid)
            conn.execute(insert(patch_candidates).values(
                candidate_id=cid, vuln_id=vuln, package="pkg:deb/debian/xz-utils",
                fixed_version=f"5.6.{n}", advisory_ids=json.dumps([f"DSA-{n}"]),
                host_ids=json.dumps(["web-1"]), host_count=1, severity="critical",
                status=status, created_at=stamp, updated_at=stamp,
                decided_by="olga" if status != "PENDING" else "", patch_id="",
                vuln_ids=json.dumps([vuln])))
    return ids


def test_patch_candidates_list_pages_filters_and_etags(app: APIFlask, client: FlaskClient,
                                                       accounts: dict[str, Account]) -> None:
    ids = _candidates(app)
    headers = accounts["operator"].headers
    first = client.get("/api/v1/vulnerabilities/CVE-2024-3094/patch-candidates?limit=2",
                       headers=headers)
    assert first.status_code == 200, first.json
    assert [c["candidate_id"] for c in first.json["items"]] == ids[:2]
    assert first.json["next_cursor"]
    assert first.json["items"][0]["vuln_ids"] == ["CVE-2024-3094"]
    second = client.get("/api/v1/vulnerabilities/CVE-2024-3094/patch-candidates?limit=2"
                        f"&cursor={first.json['next_cursor']}", headers=headers)
    assert [c["candidate_id"] for c in second.json["items"]] == [ids[2]]
    assert second.json["next_cursor"] == ""
    etag = first.headers["ETag"]
    cached = client.get("/api/v1/vulnerabilities/CVE-2024-3094/patch-candidates?limit=2",
                        headers={**headers, "If-None-Match": etag})
    assert cached.status_code == 304
    every = client.get("/api/v1/patch-candidates?status=ANY", headers=headers).json
    assert [c["candidate_id"] for c in every["items"]] == ids
    dismissed = client.get("/api/v1/patch-candidates?status=DISMISSED&vuln_id=CVE-2024-3094",
                           headers=headers).json
    assert [c["candidate_id"] for c in dismissed["items"]] == [ids[4]]
    pending = client.get("/api/v1/patch-candidates", headers=headers).json
    assert [c["candidate_id"] for c in pending["items"]] == ids[:4]
    detail = client.get(f"/api/v1/patch-candidates/{ids[3]}", headers=headers)
    assert detail.status_code == 200 and detail.json["vuln_id"] == "CVE-2024-0001"
    assert client.get(f"/api/v1/patch-candidates/{ids[3]}", headers={
        **headers, "If-None-Match": detail.headers["ETag"]}).status_code == 304
    bad = [("/api/v1/patch-candidates?status=OPEN", 400, "query.status"),
           ("/api/v1/patch-candidates?limit=0", 400, "query.limit"),
           ("/api/v1/patch-candidates?cursor=garbage", 400, "cursor"),
           ("/api/v1/patch-candidates?vuln_id=a%20b", 400, "query.vuln_id"),
           ("/api/v1/vulnerabilities/CVE-1999-9/patch-candidates", 404, "vuln_id"),
           ("/api/v1/patch-candidates?vuln_id=CVE-1999-9", 404, "vuln_id"),
           ("/api/v1/patch-candidates/nope", 404, "candidate_id")]
    for path, status, field in bad:
        answer = client.get(path, headers=headers)
        assert answer.status_code == status, (path, answer.json)
        error = _error(answer)
        assert error.get("field") == field or field in error.get("fields", {}), (path, error)


def test_dismissing_a_candidate(app: APIFlask, client: FlaskClient,
                                accounts: dict[str, Account]) -> None:
    ids = _candidates(app)
    path = f"/api/v1/patch-candidates/{ids[0]}/dismiss"
    for role in ("admin", "approver", "auditor"):
        refused = client.post(path, headers=accounts[role].headers)
        assert refused.status_code == 403 and "patch.propose" in _error(refused)["message"]
        assert client.get(f"/api/v1/patch-candidates/{ids[0]}", headers=accounts[
            role].headers).status_code == 403
    assert client.get(f"/api/v1/patch-candidates/{ids[0]}", headers=accounts[
        "operator"].headers).json["status"] == "PENDING"  # nothing changed
    done = client.post(path, headers=accounts["operator"].headers)
    assert done.status_code == 200, done.json
    assert (done.json["status"], done.json["decided_by"]) == ("DISMISSED", "operator1")
    again = client.post(path, headers=accounts["feed"].headers)
    assert again.status_code == 409 and "is DISMISSED" in _error(again)["message"]
    assert client.post("/api/v1/patch-candidates/nope/dismiss",
                       headers=accounts["feed"].headers).status_code == 404
    fed = client.post(f"/api/v1/patch-candidates/{ids[1]}/dismiss",
                      headers=accounts["feed"].headers)
    assert fed.status_code == 200 and fed.json["decided_by"] == "feed1"
    pending = client.get("/api/v1/vulnerabilities/CVE-2024-3094/patch-candidates",
                         headers=accounts["operator"].headers).json["items"]
    assert [c["candidate_id"] for c in pending] == [ids[2]]
    # the UI's proposal page and form use the same functions: the dismissed one is gone
    # from the page, and proposing it is refused
    ui = log_in(app.test_client(), accounts["operator"])
    page = ui.get("/ui/patch-proposal?vuln_id=CVE-2024-3094")
    assert page.status_code == 200 and "5.6.0" not in page.text and "5.6.2" in page.text
    proposed = ui.post("/ui/patch-proposal", data={
        "csrf_token": csrf_of(page.text), "candidate_id": ids[0], "patch_id": "xz-fix",
        "vendor": "Debian", "artifact_sha256": "0" * 64})
    assert proposed.status_code == 409 and "is DISMISSED" in proposed.text



def test_proposing_a_patch_from_a_candidate(ledger_app: APIFlask,  # noqa: F811
                                            chaincode: flow.Chaincode) -> None:  # noqa: F811
    ids = _candidates(ledger_app)
    client = ledger_app.test_client()
    operator = add_user(ledger_app, "olga", "operator")
    artifact = b"the fixed xz-utils package"
    digest = hashlib.sha256(artifact).hexdigest()
    path = f"/api/v1/patch-candidates/{ids[0]}/propose"
    body = {"patch_id": "xz-fix", "vendor": "Debian", "artifact_sha256": digest}
    unknown = client.post(path, json=body, headers=operator.headers)
    assert unknown.status_code == 404 and _error(unknown)["field"] == "artifact_sha256"
    assert "upload it first" in _error(unknown)["message"]
    for bad, field in [({**body, "patch_id": "a b"}, "json.patch_id"),
                       ({**body, "artifact_sha256": "ABC"}, "json.artifact_sha256"),
                       ({k: v for k, v in body.items() if k != "vendor"}, "json.vendor")]:
        answer = client.post(path, json=bad, headers=operator.headers)
        assert answer.status_code == 400 and field in _error(answer)["fields"], answer.json
    decided = client.post(f"/api/v1/patch-candidates/{ids[4]}/propose", json=body,
                          headers=operator.headers)
    assert decided.status_code == 409 and "is DISMISSED" in _error(decided)["message"]
    assert not [args for f, args in chaincode.calls if f == "ProposePatch"]  # nothing sent
    assert client.get(f"/api/v1/patch-candidates/{ids[0]}",
                      headers=operator.headers).json["status"] == "PENDING"
    uploaded = client.post("/api/v1/artifacts", data=artifact, headers=operator.headers)
    assert uploaded.status_code == 201 and uploaded.json["sha256"] == digest
    done = client.post(path, json=body, headers=operator.headers)
    assert done.status_code == 201, done.json
    assert (done.json["candidate"]["status"], done.json["candidate"]["patch_id"],
            done.json["candidate"]["decided_by"]) == ("CONFIRMED", "xz-fix", "olga")
    ((argument,),) = [args for f, args in chaincode.calls if f == "ProposePatch"]
    proposed = json.loads(argument)
    assert (proposed["patch_id"], proposed["artifact_sha256"], proposed["artifact_size"],
            proposed["fixes"], proposed["targets"], proposed["artifact_uri"]) == (
        "xz-fix", digest, len(artifact), ["CVE-2024-3094"],
        ["pkg:deb/debian/xz-utils@5.6.0"], f"/api/v1/artifacts/{digest}")
    again = client.post(path, json={**body, "patch_id": "xz-fix-2"}, headers=operator.headers)
    assert again.status_code == 409 and "CONFIRMED as xz-fix" in _error(again)["message"]
    assert len([f for f, _ in chaincode.calls if f == "ProposePatch"]) == 1
