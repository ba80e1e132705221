"""Fixtures of the web UI's tests: the org app (tests/unit/webapp's configuration, real
SQLite), a synthesized estate in its read model, and logged-in browser-like clients."""

from __future__ import annotations

import re
import time

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from patchledger.app.web.factory import state
from tests.support.ui import estate
from tests.unit.webapp import conftest as webapp
from tests.unit.webapp.conftest import Account, totp_code

# the org app's fixtures (tests/unit/webapp/conftest.py): app, client, one account per role
app = webapp.app
client = webapp.client
accounts = webapp.accounts

START = int(time.time())


@pytest.fixture
def populated(app: APIFlask) -> APIFlask:
    with app.app_context(), state().engine.begin() as conn:
        estate(conn, hosts=400, vulns=60, start=START)
    return app


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def browser(client: FlaskClient) -> FlaskClient:
    """``client`` sending a browser's Accept header (HTML error pages, login redirects)."""
    client.environ_base["HTTP_ACCEPT"] = "text/html,application/xhtml+xml,*/*;q=0.8"
    return client


def log_in(client: FlaskClient, account: Account) -> FlaskClient:
    """Log ``account`` in through the login form (with a TOTP code when it has one), as a
    browser."""
    browser(client)
    page = client.get("/ui/login")
    assert page.status_code == 200
    form = {"csrf_token": csrf_of(page.text), "username": account.username,
            "password": account.password}
    if account.totp_secret:
        form["totp"] = totp_code(account.totp_secret)
    done = client.post("/ui/login", data=form)
    assert done.status_code == 302, done.text
    return client
