"""Fixtures of the org app's unit tests: an app on a real SQLite file, users of every role with
API tokens, and TOTP codes. No ledger: ledger-backed endpoints answer 503 unless a test
starts the fake peer and CA (test_ledger_flow.py)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyotp
import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from patchledger.app.web import auth
from patchledger.app.web.config import AppConfig, SecurityConfig
from patchledger.app.web.db import Role
from patchledger.app.web.factory import create_app, state

#: Cheap argon2 parameters and a short lockout for tests.
SECURITY = SecurityConfig(argon2_time_cost=1, argon2_memory_kib=8, lockout_threshold=3,
                          lockout_seconds=60)
PASSWORD = "correct horse battery"


def make_config(tmp_path: Path, **overrides: Any) -> AppConfig:
    """An app configuration with everything under ``tmp_path`` and no ledger."""
    config = AppConfig(
        organization="secops",
        msp_id="SecOpsMSP",
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        artifact_dir=tmp_path / "artifacts",
        wallet_dir=tmp_path / "wallet",
        wallet_passphrase="wallet passphrase",
        secret_key="test session key",
        security=SECURITY,
    )
    return replace(config, **overrides)


def agent_headers(**extra: str) -> dict[str, str]:
    """The agent protocol's headers: a fresh nonce and the time (docs/agent.md)."""
    return {"X-Patchledger-Nonce": secrets.token_hex(16),
            "X-Patchledger-Time": str(int(time.time())), **extra}


def totp_code(secret: str, steps: int = 0) -> str:
    """The TOTP code of ``secret`` ``steps`` time steps from now."""
    return pyotp.TOTP(secret).at(time.time() + steps * 30)


@dataclass
class Account:
    """A user made for a test: its name, role, password, TOTP secret and an API token."""

    username: str
    role: str
    password: str
    totp_secret: str | None
    token: str
    headers: dict[str, str] = field(default_factory=dict)


def add_user(app: APIFlask, username: str, role: str) -> Account:
    """Create a user in ``app``'s database with an API token."""
    with app.app_context():
        db = state().sessions()
        new = auth.create_user(db, SECURITY, username, role, PASSWORD)
        token = auth.create_token(db, new.user, "test")
        db.close()
    return Account(username, role, PASSWORD, new.totp_secret, token.secret,
                   {"Authorization": f"Bearer {token.secret}"})


@pytest.fixture
def app(tmp_path: Path) -> APIFlask:
    return create_app(make_config(tmp_path))


@pytest.fixture
def client(app: APIFlask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def accounts(app: APIFlask) -> dict[str, Account]:
    """One account per role, named after it."""
    return {role.value: add_user(app, f"{role.value}1", role.value) for role in Role}
