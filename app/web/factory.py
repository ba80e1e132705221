"""The Flask application factory of the org app: :func:`create_app`.

One app serves one organization. Requests are authenticated by an API token
(``Authorization: Bearer plt_…``) or by the session cookie set at login; every unsafe request
authenticated by the cookie must carry the CSRF token (``X-CSRFToken`` header, from
``GET /api/v1/auth/csrf``). Every view declares its permission (:mod:`app.web.rbac`); a view
without one is refused to everyone (fail closed). Errors are JSON documents naming what was
wrong (:func:`error_body`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import Response, current_app, g, has_request_context, jsonify, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf, validate_csrf
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from patchledger.app.db import for_writes, open_engine
from patchledger.app.feeds.jsontext import MalformedJSON, load_json
from patchledger.app.web import auth
from patchledger.app.web.config import AppConfig
from patchledger.app.web.db import User, create_schema, session_factory
from patchledger.app.web.errors import RequestError
from patchledger.app.web.ledger import Ledger, LedgerError
from patchledger.app.web.metrics import Metrics
from patchledger.app.web.rbac import HOST, PUBLIC, allowed, permission_of

log = logging.getLogger("patchledger.app.web")
_HERE = Path(__file__).resolve().parent

#: Endpoints of APIFlask and Flask themselves that are open (the OpenAPI document, its UI).
_OPEN_ENDPOINTS = frozenset({"openapi.spec", "openapi.docs", "openapi.swagger_ui_oauth_redirect",
                             "static"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppState:
    """What the views share: the configuration, the database, the ledger, the metrics."""

    config: AppConfig
    engine: Engine
    sessions: sessionmaker  # type: ignore[type-arg]
    ledger: Ledger
    metrics: Metrics

    def db(self) -> Session:
        """The request's database session (closed at the end of the request).

        The session of a request that may write (any method but GET, HEAD, OPTIONS) begins
        its transactions as write transactions (app.db's ``for_writes``: ``BEGIN IMMEDIATE``
        on SQLite), so a read followed by a write cannot fail with "database is locked"
        when another writer committed in between; reads stay deferred (they never block).
        Views commit before a call to the peer or the CA, so no write lock is held across
        one.
        """
        if "db" not in g:
            writes = has_request_context() and request.method not in _SAFE_METHODS
            g.db = self.sessions(bind=for_writes(self.engine)) if writes else self.sessions()
        db: Session = g.db
        return db


def state() -> AppState:
    """The current app's :class:`AppState`."""
    value: AppState = current_app.extensions["patchledger"]
    return value


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON error document: ``{"error": {"status", "message", ...}}``; empty extras dropped."""
    body = {"status": status, "message": message}
    body.update({k: v for k, v in extra.items() if v not in (None, "", {}, [])})
    return {"error": body}


def _json_error(status: int, message: str, **extra: Any) -> Response:
    response = jsonify(error_body(status, message, **extra))
    response.status_code = status
    return response


#: The errors of a file system that cannot take a write: full, over quota, read-only, not
#: permitted, failing.
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                             errno.EPERM, errno.EIO})
#: Below this many free bytes a file system counts as full (SQLite needs pages for its
#: journal and shared memory; a write fails well before the last byte is used).
FULL_BELOW = 256 * 1024


def storage_problem(path: Path) -> tuple[int, str]:
    """What is wrong with the file system holding ``path`` (or its nearest existing parent),
    as the HTTP status and a phrase: ``(507, "the disk is full (N bytes free)")``,
    ``(503, "the file system is read-only")``; ``(0, "")`` when nothing is wrong."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        stats = os.statvfs(probe)
    except OSError:
        return 0, ""
    if stats.f_flag & os.ST_RDONLY:
        return 503, "the file system is read-only"
    free = stats.f_bavail * stats.f_frsize
    if free < FULL_BELOW:
        return 507, f"the disk is full ({free} bytes free)"
    return 0, ""


def current_user() -> User:
    """The authenticated user of the request (set by the ``before_request`` hook)."""
    user: User = g.user
    return user


def create_app(config: AppConfig, *, ledger: Ledger | None = None) -> APIFlask:
    """Build the app for ``config`` (creates the app's tables where missing).

    Raises:
        DatabaseError: the database URL is malformed or of an unsupported backend.
        sqlalchemy.exc.SQLAlchemyError: the database refused the schema migrations.
    """
    app = APIFlask("patchledger.app.web", title=f"patchledger {config.organization} API",
                   version="1", spec_path="/api/v1/openapi.json", docs_path="/api/v1/docs",
                   # the patchledger namespace is mapped by setuptools: give Flask its paths
                   root_path=str(_HERE), instance_path=str(_HERE))
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        OPENAPI_VERSION="3.0.3",
        VALIDATION_ERROR_STATUS_CODE=400,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in _authenticate for cookie sessions only
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which expires by itself
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=config.security.session_idle_seconds),
        JSON_SORT_KEYS=True,
    )
    app.security_schemes = {
        "token": {"type": "http", "scheme": "bearer"},
        "session": {"type": "apiKey", "in": "cookie", "name": "session"},
    }
    CSRFProtect(app)
    engine = open_engine(config.database_url)
    create_schema(engine)
    metrics = Metrics()
    app.extensions["patchledger"] = AppState(
        config, engine, session_factory(engine), ledger or Ledger(config, metrics), metrics)

    _install_hooks(app)
    from patchledger.app.web.api import routes

    routes.register(app)
    from patchledger.app.web import agent_api

    agent_api.register(app)
    from patchledger.app.web.openapi import add_links

    app.spec_processor(add_links)
    from patchledger.app.ui.views import register as register_ui  # the web UI (app/ui)
    register_ui(app)
    return app


def _install_hooks(app: APIFlask) -> None:
    @app.before_request
    def _start() -> Response | None:
        g.started = time.perf_counter()
        refused = _authenticate()
        if refused is None and request.blueprint != "agent":
            # after authentication: no parsing for strangers (the agent protocol checks its
            # own credentials, its size cap, then this: app/web/agent_api.py)
            refuse_undecodable_json()
        return refused

    @app.after_request
    def _finish(response: Response) -> Response:
        st = state()
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        st.metrics.requests.labels(request.method, endpoint, str(response.status_code)).inc()
        st.metrics.latency.labels(request.method, endpoint).observe(elapsed)
        user = g.get("user")
        log.info("request", extra={
            "method": request.method, "path": request.path, "status": response.status_code,
            "ms": round(elapsed * 1000, 2), "user": user.username if user else None,
            "org": st.config.organization})
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.error_processor
    def _http_error(error: HTTPError) -> tuple[dict[str, Any], int, Any]:
        fields: dict[str, Any] = {}
        detail = error.detail if isinstance(error.detail, dict) else {}
        for location, problems in detail.items():
            if isinstance(problems, dict):
                for name, messages in problems.items():
                    fields[f"{location}.{name}"] = messages
        message = error.message or ""
        if fields:
            message = "invalid input: " + "; ".join(
                f"{name}: {msgs}" for name, msgs in sorted(fields.items()))
        return error_body(error.status_code, message, fields=fields, **error.extra_data), \
            error.status_code, error.headers

    @app.errorhandler(RequestError)
    def _request_error(exc: RequestError) -> Response:
        return _json_error(exc.status, exc.message, field=exc.field)

    @app.errorhandler(LedgerError)
    def _ledger_error(exc: LedgerError) -> Response:
        response = _json_error(exc.status, exc.message, endpoint=exc.endpoint,
                               function=exc.function, transaction_id=exc.transaction_id)
        if exc.status == 503:
            response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(OperationalError)
    def _database_busy(exc: OperationalError) -> Response:
        log.warning("app database unavailable", extra={"error": str(exc.orig)})
        st = state()
        st.db().rollback()
        url = st.engine.url
        where = url.render_as_string(hide_password=True)
        status, problem = (storage_problem(Path(url.database)) if url.get_backend_name() ==
                           "sqlite" and url.database else (0, ""))
        if status:
            message = f"the app database {url.database} cannot be written: {problem} ({exc.orig})"
        else:
            status, message = 503, f"the app database is busy or unavailable: {exc.orig}"
        response = _json_error(status, message, endpoint=where)
        response.headers["Retry-After"] = "30" if problem else "1"
        return response

    @app.errorhandler(OSError)
    def _storage_error(exc: OSError) -> Response:
        # a file the app writes (the artifact store, the dispatcher's inbox, the wallet) on a
        # full or read-only file system: the request is refused whole, nothing half-written
        if exc.errno not in _STORAGE_ERRNOS:
            raise exc  # not a storage fault (a connection error...): an internal error
        path = exc.filename or "(unknown path)"
        status = 507 if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 503
        log.warning("app storage unavailable", extra={"error": str(exc), "path": str(path)})
        with contextlib.suppress(Exception):
            state().db().rollback()
        response = _json_error(status, f"the app cannot write {path}: "
                               f"{exc.strerror or exc}; nothing was stored", path=str(path))
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> Response:
        return _json_error(400, f"CSRF check failed: {exc.description}", field="X-CSRFToken")

    @app.errorhandler(HTTPException)
    def _werkzeug_error(exc: HTTPException) -> Response:
        return _json_error(exc.code or 500, exc.description or exc.name)

    @app.get("/metrics")
    @app.doc(hide=True)
    def metrics() -> Response:
        return Response(generate_latest(state().metrics.registry),
                        mimetype=CONTENT_TYPE_LATEST)

    metrics._permission = PUBLIC  # type: ignore[attr-defined]


def refuse_undecodable_json() -> None:
    """Refuse a JSON body that Python's decoder cannot decode without an internal error.

    ``json.loads`` raises :class:`RecursionError` for nesting deeper than it recurses and a
    plain ``ValueError`` for an integer of more than 4,300 digits; neither is the
    ``JSONDecodeError`` that webargs (the API's input parsing) and Flask turn into a 400, so
    such a body was a 500 on every endpoint that reads JSON (found by
    tests/reliability/test_agent_protocol_fuzzing.py). Other malformed JSON is left to the
    endpoint's own parsing (its 400 names the field).

    Raises:
        RequestError: the body is nested too deeply or holds a number too long (400).
    """
    if not request.is_json or not request.content_length:
        return
    try:
        load_json(request.get_data(cache=True))
    except MalformedJSON as exc:
        if isinstance(exc.__cause__, json.JSONDecodeError):
            return
        raise RequestError(f"the JSON body cannot be read: {exc.reason}", status=400,
                           field="body") from exc


def _authenticate() -> Response | None:
    """Set ``g.user`` from the token or the session; refuse what the view's permission does
    not allow. Returns an error response, or ``None`` to go on."""
    g.user = None
    endpoint = request.endpoint
    if endpoint is None:
        return None  # 404/405 follow
    if endpoint in _OPEN_ENDPOINTS:
        return None
    view = current_app.view_functions.get(endpoint)
    permission = permission_of(view)
    if permission is None:
        return _json_error(403, f"endpoint {endpoint} declares no permission: refused")
    if permission in (PUBLIC, HOST):
        # nothing done as a user: no credentials read, no CSRF check; HOST views are
        # authenticated by the host certificate (app/web/agent_api.py)
        return None
    st = state()
    db = st.db()
    header = request.headers.get("Authorization", "")
    user: User | None = None
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            return _json_error(401, "the Authorization header must be 'Bearer <token>'",
                               field="Authorization")
        user = auth.token_user(db, secret.strip())
        if user is None:
            return _json_error(401, "the API token is unknown or revoked",
                               field="Authorization")
        g.via = "token"
    elif "uid" in session:
        candidate = db.get(User, session["uid"])
        if (candidate is None or candidate.disabled
                or session.get("ver") != candidate.session_version):
            session.clear()
            return _json_error(401, "the session has ended: log in again")
        user = candidate
        g.via = "session"
        session.permanent = True  # sliding idle expiry
        if request.method not in _SAFE_METHODS:
            try:
                validate_csrf(request.headers.get("X-CSRFToken", ""))
            except Exception as exc:  # flask_wtf raises ValidationError
                return _json_error(400, f"CSRF check failed: {exc}", field="X-CSRFToken")
    g.user = user
    # End the read transaction: a later write of this request then starts a transaction of its
    # own, and cannot fail on a snapshot that the projector's commits made stale (SQLite WAL).
    db.commit()
    if user is None:
        return _json_error(401, "authentication required: an API token or a session")
    if not allowed(user.role, permission):
        return _json_error(403, f"role {user.role!r} of {user.username!r} lacks permission "
                           f"{permission!r} ({request.method} {request.path})",
                           permission=permission)
    return None


def csrf_token() -> str:
    """A CSRF token bound to the current session."""
    token: str = generate_csrf()
    return token
