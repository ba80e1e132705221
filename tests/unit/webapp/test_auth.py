"""Login, the TOTP second factor (replays refused), lockout, sessions and API tokens, through
the HTTP API of a real app on SQLite."""

from __future__ import annotations

import hashlib
from typing import Any

from apiflask import APIFlask
from flask.testing import FlaskClient
from sqlalchemy import select

from patchledger.app.web.config import SecurityConfig
from patchledger.app.web.db import ApiToken, User
from patchledger.app.web.factory import create_app, state
from tests.unit.webapp.conftest import (
    PASSWORD,
    SECURITY,
    Account,
    add_user,
    agent_headers,
    make_config,
    totp_code,
)


def _login(client: FlaskClient, account: Account, totp: str | None = None,
           password: str = PASSWORD) -> tuple[int, Any]:
    body = {"username": account.username, "password": password}
    if totp is not None:
        body["totp"] = totp
    response = client.post("/api/v1/auth/login", json=body)
    return response.status_code, response.json


def test_operator_logs_in_with_password_only(client: FlaskClient,
                                             accounts: dict[str, Account]) -> None:
    status, body = _login(client, accounts["operator"])
    assert status == 200 and body["user"]["role"] == "operator" and body["csrf_token"]
    assert client.get("/api/v1/auth/me").json["user"]["username"] == "operator1"


def test_wrong_password_and_unknown_user_get_the_same_answer(
        client: FlaskClient, accounts: dict[str, Account]) -> None:
    wrong = _login(client, accounts["operator"], password="not the password")
    ghost = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x" * 12})
    assert wrong == (401, {"error": {"status": 401, "message": "wrong username or password"}})
    assert (ghost.status_code, ghost.json) == wrong


def test_approver_and_admin_need_the_second_factor(client: FlaskClient,
                                                   accounts: dict[str, Account]) -> None:
    for role in ("approver", "admin"):
        status, body = _login(client, accounts[role])
        assert status == 401 and body["error"]["field"] == "totp", body
        status, body = _login(client, accounts[role], "000000" if totp_code(
            accounts[role].totp_secret or "") != "000000" else "111111")
        assert (status, body["error"]["message"]) == (401, "wrong TOTP code")
        status, body = _login(client, accounts[role], totp_code(accounts[role].totp_secret or ""))
        assert status == 200, body


def test_a_totp_code_is_accepted_once(client: FlaskClient,
                                      accounts: dict[str, Account]) -> None:
    approver = accounts["approver"]
    code = totp_code(approver.totp_secret or "")
    assert _login(client, approver, code)[0] == 200
    # the attacker who saw the code replays it at once: refused
    status, body = _login(client, approver, code)
    assert status == 401 and "used already" in body["error"]["message"], body
    # an older code (the previous step) is refused too, the next one works
    assert _login(client, approver, totp_code(approver.totp_secret or "", -1))[0] == 401
    assert _login(client, approver, totp_code(approver.totp_secret or "", 1))[0] == 200


def test_lockout_after_repeated_failures_then_unlock(client: FlaskClient,
                                                     accounts: dict[str, Account]) -> None:
    operator = accounts["operator"]
    for _ in range(SECURITY.lockout_threshold):
        assert _login(client, operator, password="guess guess guess")[0] == 401
    status, body = _login(client, operator)  # the right password, but locked
    assert status == 423 and "locked until" in body["error"]["message"], body
    admin = accounts["admin"]
    unlocked = client.post("/api/v1/users/operator1/unlock", headers=admin.headers)
    assert unlocked.status_code == 200 and unlocked.json["locked"] is False
    assert _login(client, operator)[0] == 200


def test_api_token_is_hashed_at_rest_and_revocable(app: APIFlask, client: FlaskClient,
                                                   accounts: dict[str, Account]) -> None:
    operator = accounts["operator"]
    created = client.post("/api/v1/tokens", json={"name": "ci"}, headers=operator.headers)
    assert created.status_code == 201
    secret, token_id = created.json["secret"], created.json["token"]["id"]
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
    with app.app_context():
        stored = state().sessions().scalars(select(ApiToken)).all()
    assert all(secret not in (t.secret_sha256, t.prefix, t.name) for t in stored)
    assert hashlib.sha256(secret.encode()).hexdigest() in {t.secret_sha256 for t in stored}
    # another user cannot revoke it; its owner can; then it is refused
    other = accounts["auditor"]
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=other.headers).status_code == 404
    revoked = client.delete(f"/api/v1/tokens/{token_id}", headers=operator.headers)
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    refused = client.get("/api/v1/auth/me", headers=bearer)
    assert refused.status_code == 401
    assert refused.json["error"]["message"] == "the API token is unknown or revoked"
    again = client.delete(f"/api/v1/tokens/{token_id}", headers=operator.headers)
    assert again.status_code == 409


def test_admin_revokes_anyones_token_and_disables_users(client: FlaskClient,
                                                        accounts: dict[str, Account]) -> None:
    feed = accounts["feed"]
    tokens = client.get("/api/v1/tokens", headers=feed.headers).json["items"]
    admin = accounts["admin"]
    assert client.delete(f"/api/v1/tokens/{tokens[0]['id']}",
                         headers=admin.headers).status_code == 200
    assert client.get("/api/v1/auth/me", headers=feed.headers).status_code == 401
    operator = accounts["operator"]
    assert _login(client, operator)[0] == 200
    assert client.post("/api/v1/users/operator1/disable", headers=admin.headers).json["disabled"]
    assert client.get("/api/v1/auth/me").status_code == 401  # the session ended
    assert client.get("/api/v1/auth/me", headers=operator.headers).status_code == 401


def test_session_requires_csrf_token_on_unsafe_requests(client: FlaskClient,
                                                        accounts: dict[str, Account]) -> None:
    status, body = _login(client, accounts["operator"])
    assert status == 200
    refused = client.post("/api/v1/tokens", json={"name": "from a forged page"})
    assert refused.status_code == 400 and refused.json["error"]["field"] == "X-CSRFToken"
    forged = client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRFToken": "nope"})
    assert forged.status_code == 400
    accepted = client.post("/api/v1/tokens", json={"name": "mine"},
                           headers={"X-CSRFToken": body["csrf_token"]})
    assert accepted.status_code == 201
    # a token-authenticated request has no cookie to ride on: no CSRF token needed
    bare = FlaskClient(client.application)
    assert bare.post("/api/v1/tokens", json={"name": "ci"},
                     headers=accounts["operator"].headers).status_code == 201


def test_logout_everywhere_ends_other_sessions(app: APIFlask,
                                               accounts: dict[str, Account]) -> None:
    laptop, phone = app.test_client(), app.test_client()
    for browser in (laptop, phone):
        assert _login(browser, accounts["operator"])[0] == 200
    csrf = laptop.get("/api/v1/auth/me").json["csrf_token"]
    assert laptop.post("/api/v1/auth/logout-everywhere",
                       headers={"X-CSRFToken": csrf}).status_code == 200
    assert phone.get("/api/v1/auth/me").status_code == 401


def test_password_hash_is_argon2id_and_rehashed_when_parameters_change(
        tmp_path, accounts: dict[str, Account]) -> None:
    stronger = SecurityConfig(argon2_time_cost=2, argon2_memory_kib=16, lockout_threshold=3)
    app = create_app(make_config(tmp_path, security=stronger))
    with app.app_context():
        before = state().sessions().scalar(select(User).where(User.username == "operator1"))
    assert before is not None and before.password_hash.startswith("$argon2id$")
    assert "t=1" in before.password_hash
    assert _login(app.test_client(), accounts["operator"])[0] == 200
    with app.app_context():
        after = state().sessions().scalar(select(User).where(User.username == "operator1"))
    assert after is not None and "t=2" in after.password_hash


def test_user_creation_shows_secrets_once_and_validates(client: FlaskClient,
                                                        accounts: dict[str, Account],
                                                        app: APIFlask) -> None:
    admin = accounts["admin"]
    created = client.post("/api/v1/users", json={"username": "carol", "role": "approver"},
                          headers=admin.headers)
    assert created.status_code == 201
    assert created.json["password"] and created.json["totp_secret"]
    assert created.json["totp_uri"].startswith("otpauth://totp/")
    listed = client.get("/api/v1/users/carol", headers=admin.headers).json
    assert "password" not in listed and "totp_secret" not in listed and listed["has_totp"]
    dup = client.post("/api/v1/users", json={"username": "carol", "role": "approver"},
                      headers=admin.headers)
    assert dup.status_code == 409 and dup.json["error"]["field"] == "username"
    bad = client.post("/api/v1/users", json={"username": "Bad Name", "role": "king"},
                      headers=admin.headers)
    assert bad.status_code == 400
    assert set(bad.json["error"]["fields"]) == {"json.username", "json.role"}
    add_user(app, "dave", "auditor")
    assert client.get("/api/v1/users/dave", headers=admin.headers).json["has_totp"] is False


def test_expired_enrollment_token_is_refused(app: APIFlask, client: FlaskClient,
                                             accounts: dict[str, Account]) -> None:
    from datetime import timedelta

    from patchledger.app.web.db import EnrollmentToken, utcnow

    made = client.post("/api/v1/hosts/enrollment-tokens",
                       json={"host_id": "db-01", "valid_hours": 1},
                       headers=accounts["operator"].headers).json
    with app.app_context():
        db = state().sessions()
        token = db.get(EnrollmentToken, made["token"]["id"])
        assert token is not None
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.commit()
        db.close()
    refused = client.post("/api/v1/agent/enroll", headers=agent_headers(),
                          json={"token": made["secret"], "host_id": "db-01",
                                "csr_pem": "unused: the token is checked first"})
    assert refused.status_code == 401 and "expired" in refused.json["error"]["message"]
    assert refused.json["error"]["field"] == "token"
    bad = client.post("/api/v1/hosts/enrollment-tokens", json={"host_id": "a b",
                                                               "valid_hours": 999},
                      headers=accounts["operator"].headers)
    assert bad.status_code == 400
    assert set(bad.json["error"]["fields"]) == {"json.host_id", "json.valid_hours"}
