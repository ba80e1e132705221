"""The app's own tables: users, their API tokens (SQLAlchemy 2 ORM, in the app database that
app.db opens: SQLite by default, PostgreSQL by URL).

The read model (ledger records, blocks) has its tables of its own; these are the few rows that
are authoritative in the app (who may log in), never ledger state.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from patchledger.app.db import metadata, upgrade


class Role(enum.StrEnum):
    """The app's roles; the ledger-acting ones match the chaincode's ``role`` attribute."""

    ADMIN = "admin"
    APPROVER = "approver"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    FEED = "feed"


#: Roles that must log in with a second factor.
TOTP_ROLES = frozenset({Role.ADMIN, Role.APPROVER})


def utcnow() -> datetime:
    """Now, timezone-aware (UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the app's own tables, on app.db's one ``MetaData`` (its naming
    convention, its Alembic history: migration 0005 creates these tables)."""

    metadata = metadata


class User(Base):
    """A person or automation account of this organization's app.

    ``totp_last_step`` is the last TOTP time step accepted: a code of that step or an older one
    is refused (replay). ``session_version`` is bumped to revoke every browser session.
    ``enrollment_id`` is the user's Fabric CA identity (its key in the app's wallet), set once
    the app registered and enrolled it.
    """

    __tablename__ = "app_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    enrollment_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """An API token: only the SHA-256 of its secret is stored; ``revoked_at`` ends it."""

    __tablename__ = "app_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_users.id"))
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EnrollmentToken(Base):
    """A one-time token with which a host's agent gets its CA registration (hashed at rest).

    ``used_at`` is set when the agent redeemed it; a used or expired token is refused.
    """

    __tablename__ = "app_enrollment_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[str] = mapped_column(String(256))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    enrollment_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


def create_schema(engine: Engine) -> None:
    """Bring the app database to the newest schema with app.db's Alembic migrations only
    (read model, ingestion, and since revision 0005 these users, tokens and enrollment
    tokens tables).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database refused a migration.
    """
    upgrade(engine)


def session_factory(engine: Engine) -> sessionmaker:  # type: ignore[type-arg]
    """Sessions that keep loaded attributes after commit."""
    return sessionmaker(engine, expire_on_commit=False)
