"""Bad input gets a 4xx JSON error that names what was wrong, and changes nothing."""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from patchledger.app.web.db import User
from patchledger.app.web.factory import state
from tests.unit.webapp.conftest import Account

GOOD_PATCH = {"patch_id": "p-1", "title": "fix", "vendor": "Debian",
              "artifact_sha256": "ab" * 32, "artifact_size": 10, "artifact_uri": "https://a/b",
              "fixes": ["CVE-2024-3094"], "targets": ["pkg:deb/debian/xz-utils"]}


def _fields(response: Any) -> set[str]:
    return set(response.json["error"].get("fields", {}))


def test_patch_fields_are_named(client: FlaskClient, accounts: dict[str, Account]) -> None:
    headers = accounts["operator"].headers
    bad = {**GOOD_PATCH, "artifact_sha256": "XYZ", "artifact_size": -1, "patch_id": "a/b",
           "fixes": []}
    response = client.post("/api/v1/patches", json=bad, headers=headers)
    assert response.status_code == 400
    assert _fields(response) == {"json.artifact_sha256", "json.artifact_size", "json.patch_id",
                                 "json.fixes"}
    assert "SHA-256" in response.json["error"]["message"]
    missing = client.post("/api/v1/patches", json={}, headers=headers)
    assert missing.status_code == 400 and "json.title" in _fields(missing)


def test_not_json_and_wrong_types(client: FlaskClient, accounts: dict[str, Account]) -> None:
    headers = accounts["feed"].headers
    text = client.post("/api/v1/vulnerabilities", data="not json", headers={
        **headers, "Content-Type": "application/json"})
    assert text.status_code == 400 and text.json["error"]["message"]
    typed = client.post("/api/v1/vulnerabilities", json={
        "vuln_id": 7, "severity": "apocalyptic", "known_exploited": "sure"}, headers=headers)
    assert typed.status_code == 400
    assert _fields(typed) == {"json.vuln_id", "json.severity", "json.known_exploited"}


def test_approval_needs_a_six_digit_totp(client: FlaskClient,
                                         accounts: dict[str, Account]) -> None:
    response = client.post("/api/v1/patches/p-1/approve", json={"totp": "12ab"},
                           headers=accounts["approver"].headers)
    assert response.status_code == 400 and _fields(response) == {"json.totp"}


def test_query_parameters_are_checked(client: FlaskClient,
                                      accounts: dict[str, Account]) -> None:
    response = client.get("/api/v1/vulnerabilities?limit=100000&state=open;drop",
                          headers=accounts["auditor"].headers)
    assert response.status_code == 400
    assert _fields(response) == {"query.limit", "query.state"}
    unknown = client.get("/api/v1/vulnerabilities?colour=red", headers=accounts["auditor"].headers)
    assert unknown.status_code == 400 and unknown.json["error"]["field"] == "colour"
    assert "severity" in unknown.json["error"]["message"]  # names the filters there are


def test_path_identifiers_are_checked(client: FlaskClient,
                                      accounts: dict[str, Account]) -> None:
    history = client.get("/api/v1/audit/history/patch; drop/x",
                         headers=accounts["auditor"].headers)
    assert history.status_code == 400 and history.json["error"]["field"] == "record_type"
    huge = client.delete(f"/api/v1/tokens/{2**70}", headers=accounts["auditor"].headers)
    assert huge.status_code == 404 and huge.json["error"]["field"] == "token_id"


def test_unknown_route_and_method_are_json(client: FlaskClient,
                                           accounts: dict[str, Account]) -> None:
    missing = client.get("/api/v1/nothing-here", headers=accounts["admin"].headers)
    assert missing.status_code == 404 and missing.json["error"]["status"] == 404
    wrong = client.put("/api/v1/patches", headers=accounts["admin"].headers)
    assert wrong.status_code == 405 and wrong.json["error"]["status"] == 405


def test_bad_user_input_creates_nothing(app: APIFlask, client: FlaskClient,
                                        accounts: dict[str, Account]) -> None:
    with app.app_context():
        before = state().sessions().scalar(select(func.count()).select_from(User))
    for body in ({"username": "x", "role": "admin"}, {"username": "valid.name", "role": "god"},
                 {"username": "valid.name", "role": "operator", "password": "short"}):
        response = client.post("/api/v1/users", json=body, headers=accounts["admin"].headers)
        assert response.status_code == 400, body
        assert response.json["error"]["fields"]
    with app.app_context():
        after = state().sessions().scalar(select(func.count()).select_from(User))
    assert after == before


def test_bad_authorization_header_names_it(client: FlaskClient) -> None:
    for value in ("Basic abc", "Bearer", "Bearer not-a-token"):
        response = client.get("/api/v1/auth/me", headers={"Authorization": value})
        assert response.status_code == 401
        assert response.json["error"]["field"] == "Authorization"


def test_json_the_decoder_cannot_read_is_a_400_not_a_500(
    client: FlaskClient, accounts: dict[str, Account]
) -> None:
    # regression (tests/reliability/test_agent_protocol_fuzzing.py): json.loads raises
    # RecursionError and a plain ValueError, not JSONDecodeError, for these: they were 500s
    # (the agent protocol checks its nonce, time and certificate first: test_agent_api.py)
    headers = {**accounts["operator"].headers, "Content-Type": "application/json"}
    bodies = {"nested too deeply": b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
              "more than 4300 digits": b'{"artifact_size": 1' + b"0" * 5000 + b"}"}
    for reason, body in bodies.items():
        for path in ("/api/v1/patches", "/api/v1/hosts/enrollment-tokens"):
            answer = client.post(path, data=body, headers=headers)
            assert answer.status_code == 400, (path, answer.json)
            assert answer.json["error"]["field"] == "body", answer.json
            assert reason in answer.json["error"]["message"], answer.json
    # ordinary malformed JSON keeps the endpoint's own refusal
    plain = client.post("/api/v1/patches", data=b'{"title": ', headers=headers)
    assert plain.status_code == 400 and plain.json["error"].get("field") != "body"
