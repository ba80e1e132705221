"""ingestion scheduler lease; patch candidates list every vulnerability they fix

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 08:11:37.156149
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    with op.batch_alter_table("patch_candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vuln_ids", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patch_candidates", schema=None) as batch_op:
        batch_op.drop_column("vuln_ids")
    op.drop_table("scheduler_leases")
