"""revoked identities (RevokeIdentity): a read-model table like every record type's

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_INDEXED = ("msp_id", "kind", "value", "revoked_by", "revoked_at", "updated_at")


def upgrade() -> None:
    op.create_table(
        "revoked_identities",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("msp_id", sa.String(length=600), nullable=True),
        sa.Column("kind", sa.String(length=600), nullable=True),
        sa.Column("value", sa.String(length=600), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_revoked_identities")),
    )
    with op.batch_alter_table("revoked_identities", schema=None) as batch_op:
        for name in _INDEXED:
            batch_op.create_index(f"ix_revoked_identities_{name}", [name, "record_id"],
                                  unique=False)


def downgrade() -> None:
    with op.batch_alter_table("revoked_identities", schema=None) as batch_op:
        for name in reversed(_INDEXED):
            batch_op.drop_index(f"ix_revoked_identities_{name}")
    op.drop_table("revoked_identities")
