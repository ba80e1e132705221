"""Users, passwords, the TOTP second factor, lockout and API tokens (no Flask here).

Contracts:
- Passwords are argon2id hashes; a hash made with other parameters is re-hashed at the next
  successful login.
- A TOTP code is accepted once: the accepted time step is stored and a code of that step or
  an earlier one is refused (pyotp alone would accept a replay within the window).
- ``lockout_threshold`` failed logins in a row lock the account for ``lockout_seconds``; a
  locked account is refused even with the right password.
- API tokens are random 256-bit secrets; only their SHA-256 is stored; a revoked token is
  refused from the next request on.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from patchledger.app.web.config import SecurityConfig
from patchledger.app.web.db import TOTP_ROLES, ApiToken, EnrollmentToken, Role, User, utcnow
from patchledger.app.web.errors import RequestError

#: What a username may look like (it becomes part of a Fabric CA enrollment id).
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
#: The prefix of every API token, so that scanners can recognise leaked ones.
TOKEN_PREFIX = "plt_"  # noqa: S105 (a public prefix, not a secret)
#: The prefix of host enrollment tokens.
ENROLLMENT_PREFIX = "ple_"
#: How long a pending second-factor re-enrolment may wait for its confirming code.
TOTP_ENROLMENT_SECONDS = 600


class AuthError(RequestError):
    """Authentication or account management refused (401 unless said otherwise)."""

    def __init__(self, message: str, *, status: int = 401, field: str = "") -> None:
        super().__init__(message, status=status, field=field)


@dataclass(frozen=True)
class NewUser:
    """A created user with its one-time secrets (shown once, never stored in clear)."""

    user: User
    password: str
    totp_secret: str | None
    totp_uri: str | None


@dataclass(frozen=True)
class NewToken:
    """A created API token with its secret (shown once)."""

    token: ApiToken
    secret: str


def hasher(security: SecurityConfig) -> PasswordHasher:
    """The argon2id hasher with the configured parameters."""
    return PasswordHasher(time_cost=security.argon2_time_cost,
                          memory_cost=security.argon2_memory_kib, parallelism=1)


def _validate_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AuthError(f"unknown role {role!r}: one of {', '.join(r.value for r in Role)}",
                        status=400, field="role") from None


def create_user(session: Session, security: SecurityConfig, username: str, role: str,
                password: str | None = None, *, issuer: str = "patchledger") -> NewUser:
    """Create a user (committed); a random password when none is given; a TOTP secret for the
    roles that need a second factor.

    Raises:
        AuthError: bad username (400), unknown role (400), short password (400), or the
            username exists (409).
    """
    if not USERNAME.match(username):
        raise AuthError(f"username {username!r} must match {USERNAME.pattern}",
                        status=400, field="username")
    parsed = _validate_role(role)
    if password is not None and len(password) < 12:
        raise AuthError("password must have at least 12 characters", status=400,
                        field="password")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise AuthError(f"user {username!r} exists already", status=409, field="username")
    password = password or secrets.token_urlsafe(18)
    totp_secret = pyotp.random_base32() if parsed in TOTP_ROLES else None
    user = User(username=username, role=parsed.value,
                password_hash=hasher(security).hash(password), totp_secret=totp_secret,
                totp_last_step=0, failed_logins=0, session_version=1, disabled=False)
    session.add(user)
    session.commit()
    uri = (pyotp.TOTP(totp_secret).provisioning_uri(name=username, issuer_name=issuer)
           if totp_secret else None)
    return NewUser(user, password, totp_secret, uri)


def find_user(session: Session, username: str) -> User:
    """The user called ``username``.

    Raises:
        AuthError: no such user (404).
    """
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AuthError(f"user {username!r} does not exist", status=404, field="username")
    return user


def as_aware(moment: datetime) -> datetime:
    """``moment`` with UTC as its zone when it has none (SQLite returns naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def check_totp(session: Session, security: SecurityConfig, user: User, code: str | None,
               *, now: float | None = None) -> None:
    """Accept ``code`` for ``user`` once (committed).

    Raises:
        AuthError: no code given, wrong code, or a code already used (401, field ``totp``).
    """
    if not user.totp_secret:
        raise AuthError(f"user {user.username!r} has no second factor", status=403,
                        field="totp")
    if not code:
        raise AuthError("a TOTP code is required", field="totp")
    if not re.fullmatch(r"\d{6}", code):
        raise AuthError("the TOTP code must be 6 digits", status=400, field="totp")
    totp = pyotp.TOTP(user.totp_secret)
    moment = time.time() if now is None else now
    current = int(moment // totp.interval)
    for step in range(current - security.totp_valid_window,
                      current + security.totp_valid_window + 1):
        if hmac.compare_digest(totp.at(step * totp.interval), code):
            if step <= user.totp_last_step:
                raise AuthError("this TOTP code was used already: wait for the next one",
                                field="totp")
            user.totp_last_step = step
            session.commit()
            return
    raise AuthError("wrong TOTP code", field="totp")


def login(session: Session, security: SecurityConfig, username: str, password: str,
          totp: str | None, *, now: float | None = None) -> User:
    """Check a password (and TOTP for the roles that need it) with lockout (committed).

    Raises:
        AuthError: wrong credentials (401, one message whether the user exists or not),
            disabled account (403), locked account (423).
    """
    moment = utcnow()
    user = session.scalar(select(User).where(User.username == username))
    session.commit()  # the writes below run in a transaction of their own (see factory)
    if user is None:
        hasher(security).hash(password)  # same cost whether or not the user exists
        raise AuthError("wrong username or password")
    if user.locked_until is not None and as_aware(user.locked_until) > moment:
        raise AuthError(f"account {username!r} is locked until "
                        f"{as_aware(user.locked_until).isoformat(timespec='seconds')} after "
                        f"{user.failed_logins} failed logins", status=423)
    ph = hasher(security)
    try:
        ph.verify(user.password_hash, password)
        if Role(user.role) in TOTP_ROLES:
            check_totp(session, security, user, totp, now=now)
    except (VerifyMismatchError, VerificationError, InvalidHashError, AuthError) as exc:
        user.failed_logins += 1
        if user.failed_logins >= security.lockout_threshold:
            user.locked_until = moment + timedelta(seconds=security.lockout_seconds)
        session.commit()
        if isinstance(exc, AuthError):
            raise
        raise AuthError("wrong username or password") from None
    if user.disabled:
        raise AuthError(f"account {username!r} is disabled", status=403)
    if ph.check_needs_rehash(user.password_hash):
        user.password_hash = ph.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    session.commit()
    return user


def unlock(session: Session, user: User) -> None:
    """Clear a lockout (committed)."""
    user.failed_logins = 0
    user.locked_until = None
    session.commit()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, user: User, name: str) -> NewToken:
    """A new API token for ``user`` (committed); the secret is returned once.

    Raises:
        AuthError: empty or over-long name (400, field ``name``).
    """
    if not 1 <= len(name) <= 64:
        raise AuthError("token name must have 1 to 64 characters", status=400, field="name")
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(user_id=user.id, name=name, prefix=prefix, secret_sha256=_digest(secret))
    session.add(token)
    session.commit()
    return NewToken(token, secret)


def token_user(session: Session, secret: str) -> User | None:
    """The user of a live token, or ``None`` (unknown, revoked, user disabled)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.secret_sha256 == _digest(secret)))
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or user.disabled:
        return None
    moment = utcnow()
    session.commit()  # end the read transaction: the update below gets one of its own
    # written at most once a minute (a write per request would contend with the projector),
    # and best effort: a busy database does not fail the request for a bookkeeping field
    if token.last_used_at is None or moment - as_aware(token.last_used_at) > timedelta(
            seconds=60):
        token.last_used_at = moment
        try:
            session.commit()
        except OperationalError:
            session.rollback()
    return user


def revoke_token(session: Session, user: User, token_id: int, *, any_user: bool = False) -> None:
    """Revoke a token of ``user`` (or of anyone with ``any_user``) (committed).

    Raises:
        AuthError: no such token of this user (404), already revoked (409).
    """
    token = session.get(ApiToken, token_id) if 0 < token_id < 2**63 else None
    if token is None or (token.user_id != user.id and not any_user):
        raise AuthError(f"token {token_id} does not exist", status=404, field="token_id")
    if token.revoked_at is not None:
        raise AuthError(f"token {token_id} was revoked at {token.revoked_at.isoformat()}",
                        status=409, field="token_id")
    token.revoked_at = utcnow()
    session.commit()


@dataclass(frozen=True)
class NewEnrollmentToken:
    """A created host enrollment token with its secret (shown once)."""

    token: EnrollmentToken
    secret: str


def create_enrollment_token(session: Session, creator: User, host_id: str,
                            valid_hours: int) -> NewEnrollmentToken:
    """A one-time enrollment token for ``host_id`` valid ``valid_hours`` (committed).

    Raises:
        AuthError: a host id that is not a ledger identifier (400, field ``host_id``).
    """
    if not re.fullmatch(r"[\x21-\x2e\x30-\x7e]{1,200}", host_id):
        raise AuthError(f"host_id {host_id!r} must be 1-200 printable ASCII characters "
                        "without space or '/'", status=400, field="host_id")
    secret = f"{ENROLLMENT_PREFIX}{secrets.token_urlsafe(32)}"
    token = EnrollmentToken(host_id=host_id, secret_sha256=_digest(secret),
                            created_by=creator.username,
                            expires_at=utcnow() + timedelta(hours=valid_hours))
    session.add(token)
    session.commit()
    return NewEnrollmentToken(token, secret)


def check_enrollment_token(session: Session, secret: str) -> EnrollmentToken:
    """The live (unused, unexpired) enrollment token with this secret.

    Raises:
        AuthError: unknown, used or expired (401, field ``token``).
    """
    token = session.scalar(select(EnrollmentToken).where(
        EnrollmentToken.secret_sha256 == _digest(secret)))
    session.commit()
    if token is None:
        raise AuthError("the enrollment token is unknown", field="token")
    if token.used_at is not None:
        raise AuthError(f"the enrollment token of host {token.host_id!r} was used at "
                        f"{as_aware(token.used_at).isoformat(timespec='seconds')}",
                        field="token")
    if as_aware(token.expires_at) <= utcnow():
        raise AuthError(f"the enrollment token of host {token.host_id!r} expired at "
                        f"{as_aware(token.expires_at).isoformat(timespec='seconds')}",
                        field="token")
    return token


def mark_enrollment_token_used(session: Session, token: EnrollmentToken,
                               enrollment_id: str) -> None:
    """Record that ``token`` was redeemed for ``enrollment_id`` (committed), once.

    Raises:
        AuthError: it was redeemed concurrently (409, field ``token``).
    """
    done = session.execute(
        update(EnrollmentToken)
        .where(EnrollmentToken.id == token.id, EnrollmentToken.used_at.is_(None))
        .values(used_at=utcnow(), enrollment_id=enrollment_id))
    session.commit()
    if getattr(done, "rowcount", 0) != 1:
        raise AuthError(f"the enrollment token of host {token.host_id!r} was just used",
                        status=409, field="token")


def revoke_enrollment_token(session: Session, token_id: int) -> EnrollmentToken:
    """End a live enrollment token now (committed): its validity is cut to this moment, so
    ``check_enrollment_token`` refuses it as expired from the next request on (the table has
    no revocation column of its own).

    Raises:
        AuthError: no such token (404), already used or expired (409, field ``token_id``).
    """
    token = session.get(EnrollmentToken, token_id) if 0 < token_id < 2**63 else None
    if token is None:
        raise AuthError(f"enrollment token {token_id} does not exist", status=404,
                        field="token_id")
    moment = utcnow()
    if token.used_at is not None:
        raise AuthError(f"enrollment token {token_id} of host {token.host_id!r} was used at "
                        f"{as_aware(token.used_at).isoformat(timespec='seconds')}: nothing "
                        "to revoke", status=409, field="token_id")
    if as_aware(token.expires_at) <= moment:
        raise AuthError(f"enrollment token {token_id} of host {token.host_id!r} expired at "
                        f"{as_aware(token.expires_at).isoformat(timespec='seconds')}",
                        status=409, field="token_id")
    token.expires_at = moment
    session.commit()
    return token


def _failed_attempt(session: Session, security: SecurityConfig, user: User) -> None:
    user.failed_logins += 1
    if user.failed_logins >= security.lockout_threshold:
        user.locked_until = utcnow() + timedelta(seconds=security.lockout_seconds)
    session.commit()


def check_password(session: Session, security: SecurityConfig, user: User,
                   password: str) -> None:
    """Re-check the logged-in ``user``'s current password (account changes); a wrong one
    counts as a failed login (lockout), so a stolen session cannot guess it.

    Raises:
        AuthError: the account is locked (423) or the password is wrong (400, field
            ``current_password``: the session itself is authenticated).
    """
    if user.locked_until is not None and as_aware(user.locked_until) > utcnow():
        raise AuthError(f"account {user.username!r} is locked until "
                        f"{as_aware(user.locked_until).isoformat(timespec='seconds')}",
                        status=423, field="current_password")
    try:
        hasher(security).verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        _failed_attempt(session, security, user)
        raise AuthError("the current password is wrong", status=400,
                        field="current_password") from None


def change_password(session: Session, security: SecurityConfig, user: User, current: str,
                    new: str) -> None:
    """Replace ``user``'s password after re-checking the current one (committed); every
    other session of the user ends (the session version is bumped).

    Raises:
        AuthError: wrong current password (400) or locked (423); a new password shorter than
            12 characters or equal to the current one (400, field ``new_password``).
    """
    check_password(session, security, user, current)
    if len(new) < 12:
        raise AuthError("the new password must have at least 12 characters", status=400,
                        field="new_password")
    if new == current:
        raise AuthError("the new password must differ from the current one", status=400,
                        field="new_password")
    user.password_hash = hasher(security).hash(new)
    user.failed_logins = 0
    user.session_version += 1
    session.commit()


def totp_uri(secret: str, username: str, issuer: str) -> str:
    """The ``otpauth://`` URI of a TOTP secret (what the QR code holds)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def replace_totp(session: Session, security: SecurityConfig, user: User, secret: str,
                 code: str, *, now: float | None = None) -> None:
    """Make ``secret`` the user's second factor once ``code`` proves the authenticator holds
    it (committed); the new factor's accepted step is stored (no replay of ``code``) and
    every other session of the user ends.

    Raises:
        AuthError: ``secret`` is not a base32 TOTP secret (400, field ``secret``); the code
            is missing, malformed or wrong for the new secret (401/400, field ``totp``).
    """
    if not re.fullmatch(r"[A-Z2-7]{32}", secret):
        raise AuthError("the new TOTP secret is malformed", status=400, field="secret")
    if not re.fullmatch(r"\d{6}", code or ""):
        raise AuthError("the code from the authenticator must be 6 digits", status=400,
                        field="totp")
    totp = pyotp.TOTP(secret)
    moment = time.time() if now is None else now
    current = int(moment // totp.interval)
    for step in range(current - security.totp_valid_window,
                      current + security.totp_valid_window + 1):
        if hmac.compare_digest(totp.at(step * totp.interval), code):
            user.totp_secret = secret
            user.totp_last_step = step
            user.session_version += 1
            session.commit()
            return
    raise AuthError("wrong code for the new second factor: nothing was changed",
                    field="totp")


@dataclass(frozen=True)
class PendingTotp:
    """A second factor waiting for its confirming code: the new ``secret``, its ``uri`` (the
    QR code's content) and ``pending``, the signed form of both that step 2 presents."""

    secret: str
    uri: str
    pending: str


def _totp_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="patchledger-totp-enrolment")


def start_totp_change(session: Session, security: SecurityConfig, user: User,
                      current_password: str, code: str, *, secret_key: str,
                      issuer: str) -> PendingTotp:
    """Re-enrol the second factor, step 1: the current password (a wrong one counts toward
    lockout) and a code of the current factor (accepted once), then a new secret, signed with
    ``secret_key`` and bound to the user and their session version. Nothing is stored: the
    new secret takes effect only with :func:`confirm_totp_change`.

    Raises:
        AuthError: the user has no second factor (400, field ``totp``); the password is wrong
            (400) or the account locked (423), field ``current_password``; the code is
            missing, malformed, wrong or replayed (401/400, field ``totp``).
    """
    if not user.totp_secret:
        raise AuthError(f"role {user.role} signs in with a password only: there is no second "
                        "factor to re-enrol", status=400, field="totp")
    check_password(session, security, user, current_password)
    check_totp(session, security, user, code)
    secret = pyotp.random_base32()
    pending = _totp_serializer(secret_key).dumps(
        {"uid": user.id, "ver": user.session_version, "secret": secret})
    return PendingTotp(secret, totp_uri(secret, user.username, issuer), pending)


def confirm_totp_change(session: Session, security: SecurityConfig, user: User, pending: str,
                        code: str, *, secret_key: str,
                        max_age: int = TOTP_ENROLMENT_SECONDS) -> None:
    """Re-enrol the second factor, step 2: ``pending`` (from :func:`start_totp_change`, at
    most ``max_age`` seconds old, of this user and session version) and a code of its new
    secret make that secret the user's factor (committed); every other session ends, and
    the same ``pending`` cannot be used again (the session version moved on).

    Raises:
        AuthError: ``pending`` expired, altered, of another user or an ended session (400,
            field ``pending``); the code is malformed or wrong for the new secret (400/401,
            field ``totp``): nothing is changed.
    """
    try:
        doc = _totp_serializer(secret_key).loads(pending, max_age=max_age)
    except SignatureExpired:
        raise AuthError(f"the enrolment expired ({max_age // 60} minutes): start again",
                        status=400, field="pending") from None
    except BadSignature:
        raise AuthError("the enrolment form was altered: start again", status=400,
                        field="pending") from None
    if not isinstance(doc, dict) or doc.get("uid") != user.id or \
            doc.get("ver") != user.session_version:
        raise AuthError("this enrolment belongs to another user or an ended session: start "
                        "again", status=400, field="pending")
    replace_totp(session, security, user, str(doc.get("secret", "")), code)
