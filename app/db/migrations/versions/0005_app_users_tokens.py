"""the app's own tables (app.web.db): users, API tokens, host enrollment tokens

Until this revision they were made by ``create_all`` after the migrations. A database where
that already happened keeps its tables (they are adopted as they are: same columns; their
constraints keep the names the backend gave them); a new database gets them here, so
``patchledger app init`` and every upgrade go through Alembic only.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = ("app_users", "app_api_tokens", "app_enrollment_tokens")


def _existing() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    existing = _existing()
    if "app_users" not in existing:
        op.create_table(
            "app_users",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("username", sa.String(length=64), nullable=False),
            sa.Column("role", sa.String(length=16), nullable=False),
            sa.Column("password_hash", sa.String(length=256), nullable=False),
            sa.Column("totp_secret", sa.String(length=64), nullable=True),
            sa.Column("totp_last_step", sa.Integer(), nullable=False),
            sa.Column("failed_logins", sa.Integer(), nullable=False),
            sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
            sa.Column("session_version", sa.Integer(), nullable=False),
            sa.Column("disabled", sa.Boolean(), nullable=False),
            sa.Column("enrollment_id", sa.String(length=128), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_app_users")),
            sa.UniqueConstraint("username", name=op.f("uq_app_users_username")),
        )
    if "app_api_tokens" not in existing:
        op.create_table(
            "app_api_tokens",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("prefix", sa.String(length=16), nullable=False),
            sa.Column("secret_sha256", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(["user_id"], ["app_users.id"],
                                    name=op.f("fk_app_api_tokens_user_id_app_users")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_app_api_tokens")),
            sa.UniqueConstraint("secret_sha256", name=op.f("uq_app_api_tokens_secret_sha256")),
        )
    if "app_enrollment_tokens" not in existing:
        op.create_table(
            "app_enrollment_tokens",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("host_id", sa.String(length=256), nullable=False),
            sa.Column("secret_sha256", sa.String(length=64), nullable=False),
            sa.Column("created_by", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("enrollment_id", sa.String(length=128), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_app_enrollment_tokens")),
            sa.UniqueConstraint("secret_sha256",
                                name=op.f("uq_app_enrollment_tokens_secret_sha256")),
        )


def downgrade() -> None:
    existing = _existing()
    for name in reversed(_TABLES):
        if name in existing:
            op.drop_table(name)
