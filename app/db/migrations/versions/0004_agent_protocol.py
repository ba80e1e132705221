"""agent protocol memory: request nonces until they expire, receipts of stored reports by
(host, sequence) (app/web/agent_store.py)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_agent_nonces")),
    )
    with op.batch_alter_table("agent_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_agent_nonces_expires_at", ["expires_at"], unique=False)
    op.create_table(
        "agent_report_receipts",
        sa.Column("host_id", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("report_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("host_id", "sequence", name=op.f("pk_agent_report_receipts")),
    )


def downgrade() -> None:
    op.drop_table("agent_report_receipts")
    with op.batch_alter_table("agent_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_nonces_expires_at")
    op.drop_table("agent_nonces")
