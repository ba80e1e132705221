"""initial schema: read model and ingestion tables

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-01 08:04:21.465620
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("patch_id", sa.String(length=600), nullable=True),
        sa.Column("msp_id", sa.String(length=600), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("approver", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_approvals")),
    )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.create_index("ix_approvals_approver", ["approver", "record_id"], unique=False)
        batch_op.create_index("ix_approvals_decision", ["decision", "record_id"], unique=False)
        batch_op.create_index("ix_approvals_msp_id", ["msp_id", "record_id"], unique=False)
        batch_op.create_index("ix_approvals_patch_id", ["patch_id", "record_id"], unique=False)
        batch_op.create_index("ix_approvals_updated_at", ["updated_at", "record_id"], unique=False)

    op.create_table(
        "blocks",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("header_hash", sa.String(length=128), nullable=False),
        sa.Column("previous_hash", sa.String(length=128), nullable=False),
        sa.Column("data_hash", sa.String(length=128), nullable=False),
        sa.Column("tx_count", sa.Integer(), nullable=False),
        sa.Column("valid_count", sa.Integer(), nullable=False),
        sa.Column("write_count", sa.Integer(), nullable=False),
        sa.Column("first_tx_time", sa.String(length=32), nullable=False),
        sa.Column("projected_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_blocks")),
    )
    op.create_table(
        "deployments",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("rollout_id", sa.String(length=600), nullable=True),
        sa.Column("host_id", sa.String(length=600), nullable=True),
        sa.Column("patch_id", sa.Text(), nullable=True),
        sa.Column("owner_msp", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("wave", sa.BigInteger(), nullable=True),
        sa.Column("report_sequence", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_deployments")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index("ix_deployments_host_id", ["host_id", "record_id"], unique=False)
        batch_op.create_index("ix_deployments_owner_msp", ["owner_msp", "record_id"], unique=False)
        batch_op.create_index("ix_deployments_patch_id", ["patch_id", "record_id"], unique=False)
        batch_op.create_index(
            "ix_deployments_report_sequence", ["report_sequence", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_deployments_rollout_id", ["rollout_id", "record_id"], unique=False
        )
        batch_op.create_index("ix_deployments_status", ["status", "record_id"], unique=False)
        batch_op.create_index(
            "ix_deployments_updated_at", ["updated_at", "record_id"], unique=False
        )
        batch_op.create_index("ix_deployments_wave", ["wave", "record_id"], unique=False)

    op.create_table(
        "feed_imports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("started_at", sa.String(length=32), nullable=False),
        sa.Column("finished_at", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sources_json", sa.Text(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("advisories", sa.Integer(), nullable=False),
        sa.Column("vulnerabilities", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("submitted", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("errors_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_imports")),
    )
    op.create_table(
        "findings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("host_id", sa.String(length=600), nullable=False),
        sa.Column("vuln_id", sa.String(length=600), nullable=False),
        sa.Column("package", sa.Text(), nullable=False),
        sa.Column("installed_version", sa.Text(), nullable=False),
        sa.Column("fixed_version", sa.Text(), nullable=True),
        sa.Column("advisory_id", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("priority_score", sa.Float(), nullable=False),
        sa.Column("priority_json", sa.Text(), nullable=False),
        sa.Column("deadline", sa.String(length=10), nullable=True),
        sa.Column("first_seen", sa.String(length=32), nullable=False),
        sa.Column("last_seen", sa.String(length=32), nullable=False),
        sa.Column("import_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
        sa.UniqueConstraint("host_id", "vuln_id", "package", name="uq_findings_host_vuln_package"),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index("ix_findings_priority", ["priority_score", "id"], unique=False)
        batch_op.create_index("ix_findings_vuln_id", ["vuln_id", "host_id"], unique=False)

    op.create_table(
        "hosts",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("host_id", sa.String(length=600), nullable=True),
        sa.Column("owner_msp", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("inventory_sha256", sa.Text(), nullable=True),
        sa.Column("maintenance_window", sa.Text(), nullable=True),
        sa.Column("last_report_sequence", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_hosts")),
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.create_index("ix_hosts_host_id", ["host_id", "record_id"], unique=False)
        batch_op.create_index(
            "ix_hosts_inventory_sha256", ["inventory_sha256", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_hosts_last_report_sequence", ["last_report_sequence", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_hosts_maintenance_window", ["maintenance_window", "record_id"], unique=False
        )
        batch_op.create_index("ix_hosts_owner_msp", ["owner_msp", "record_id"], unique=False)
        batch_op.create_index("ix_hosts_status", ["status", "record_id"], unique=False)
        batch_op.create_index("ix_hosts_updated_at", ["updated_at", "record_id"], unique=False)

    op.create_table(
        "inventories",
        sa.Column("host_id", sa.String(length=600), nullable=False),
        sa.Column("inventory_sha256", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("distro", sa.String(length=128), nullable=False),
        sa.Column("package_count", sa.Integer(), nullable=False),
        sa.Column("packages_json", sa.Text(), nullable=False),
        sa.Column("criticality", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.Column("ledger_digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("host_id", name=op.f("pk_inventories")),
    )
    op.create_table(
        "ledger_submissions",
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("function", sa.String(length=64), nullable=False),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.String(length=32), nullable=False),
        sa.Column("resolved_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("tx_id", name=op.f("pk_ledger_submissions")),
    )
    with op.batch_alter_table("ledger_submissions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_submissions_status", ["status", "record_type", "record_id"], unique=False
        )

    op.create_table(
        "other_records",
        sa.Column("record_type", sa.String(length=256), nullable=False),
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("record_type", "record_id", name=op.f("pk_other_records")),
    )
    op.create_table(
        "patch_candidates",
        sa.Column("candidate_id", sa.String(length=64), nullable=False),
        sa.Column("vuln_id", sa.String(length=600), nullable=False),
        sa.Column("package", sa.Text(), nullable=False),
        sa.Column("fixed_version", sa.Text(), nullable=False),
        sa.Column("advisory_ids", sa.Text(), nullable=False),
        sa.Column("host_ids", sa.Text(), nullable=False),
        sa.Column("host_count", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("patch_id", sa.String(length=600), nullable=False),
        sa.PrimaryKeyConstraint("candidate_id", name=op.f("pk_patch_candidates")),
    )
    with op.batch_alter_table("patch_candidates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_patch_candidates_status", ["status", "candidate_id"], unique=False
        )
        batch_op.create_index("ix_patch_candidates_vuln_id", ["vuln_id"], unique=False)

    op.create_table(
        "patches",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("patch_id", sa.String(length=600), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("vendor", sa.Text(), nullable=True),
        sa.Column("artifact_sha256", sa.Text(), nullable=True),
        sa.Column("proposed_by", sa.Text(), nullable=True),
        sa.Column("supersedes", sa.Text(), nullable=True),
        sa.Column("artifact_size", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_patches")),
    )
    with op.batch_alter_table("patches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_patches_artifact_sha256", ["artifact_sha256", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_patches_artifact_size", ["artifact_size", "record_id"], unique=False
        )
        batch_op.create_index("ix_patches_patch_id", ["patch_id", "record_id"], unique=False)
        batch_op.create_index("ix_patches_proposed_by", ["proposed_by", "record_id"], unique=False)
        batch_op.create_index("ix_patches_severity", ["severity", "record_id"], unique=False)
        batch_op.create_index("ix_patches_status", ["status", "record_id"], unique=False)
        batch_op.create_index("ix_patches_supersedes", ["supersedes", "record_id"], unique=False)
        batch_op.create_index("ix_patches_updated_at", ["updated_at", "record_id"], unique=False)
        batch_op.create_index("ix_patches_vendor", ["vendor", "record_id"], unique=False)

    op.create_table(
        "pings",
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
        sa.Column("at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_pings")),
    )
    with op.batch_alter_table("pings", schema=None) as batch_op:
        batch_op.create_index("ix_pings_at", ["at", "record_id"], unique=False)
        batch_op.create_index("ix_pings_msp_id", ["msp_id", "record_id"], unique=False)
        batch_op.create_index("ix_pings_updated_at", ["updated_at", "record_id"], unique=False)

    op.create_table(
        "policies",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("policy_id", sa.String(length=600), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_policies")),
    )
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.create_index("ix_policies_policy_id", ["policy_id", "record_id"], unique=False)
        batch_op.create_index("ix_policies_updated_at", ["updated_at", "record_id"], unique=False)
        batch_op.create_index("ix_policies_version", ["version", "record_id"], unique=False)

    op.create_table(
        "policy_changes",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("proposal_id", sa.String(length=600), nullable=True),
        sa.Column("policy_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("proposed_by", sa.Text(), nullable=True),
        sa.Column("base_version", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_policy_changes")),
    )
    with op.batch_alter_table("policy_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_policy_changes_base_version", ["base_version", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_policy_changes_policy_id", ["policy_id", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_policy_changes_proposal_id", ["proposal_id", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_policy_changes_proposed_by", ["proposed_by", "record_id"], unique=False
        )
        batch_op.create_index("ix_policy_changes_status", ["status", "record_id"], unique=False)
        batch_op.create_index(
            "ix_policy_changes_updated_at", ["updated_at", "record_id"], unique=False
        )

    op.create_table(
        "readmodel_checkpoints",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=256), nullable=False),
        sa.Column("chaincode", sa.String(length=256), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.String(length=128), nullable=False),
        sa.Column("transaction_index", sa.Integer(), nullable=True),
        sa.Column("last_header_hash", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_readmodel_checkpoints")),
    )
    op.create_table(
        "record_versions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("record_type", sa.String(length=256), nullable=False),
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("write_index", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("creator_msp", sa.String(length=256), nullable=False),
        sa.Column("creator_subject", sa.Text(), nullable=False),
        sa.Column("is_delete", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_versions")),
        sa.UniqueConstraint(
            "record_type", "record_id", "version", name="uq_record_versions_record_version"
        ),
    )
    with op.batch_alter_table("record_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_record_versions_block", ["block_number", "tx_index"], unique=False
        )
        batch_op.create_index("ix_record_versions_tx_id", ["tx_id"], unique=False)

    op.create_table(
        "revocations",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("patch_id", sa.String(length=600), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("proposed_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_revocations")),
    )
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.create_index("ix_revocations_patch_id", ["patch_id", "record_id"], unique=False)
        batch_op.create_index(
            "ix_revocations_proposed_by", ["proposed_by", "record_id"], unique=False
        )
        batch_op.create_index("ix_revocations_status", ["status", "record_id"], unique=False)
        batch_op.create_index(
            "ix_revocations_updated_at", ["updated_at", "record_id"], unique=False
        )

    op.create_table(
        "risk_acceptances",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("vuln_id", sa.String(length=600), nullable=True),
        sa.Column("exception_id", sa.String(length=600), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("proposed_by", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_risk_acceptances")),
    )
    with op.batch_alter_table("risk_acceptances", schema=None) as batch_op:
        batch_op.create_index(
            "ix_risk_acceptances_exception_id", ["exception_id", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_risk_acceptances_expires_at", ["expires_at", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_risk_acceptances_proposed_by", ["proposed_by", "record_id"], unique=False
        )
        batch_op.create_index("ix_risk_acceptances_status", ["status", "record_id"], unique=False)
        batch_op.create_index(
            "ix_risk_acceptances_updated_at", ["updated_at", "record_id"], unique=False
        )
        batch_op.create_index("ix_risk_acceptances_vuln_id", ["vuln_id", "record_id"], unique=False)

    op.create_table(
        "rollouts",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("rollout_id", sa.String(length=600), nullable=True),
        sa.Column("patch_id", sa.Text(), nullable=True),
        sa.Column("owner_msp", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("current_wave", sa.BigInteger(), nullable=True),
        sa.Column("wave_started_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_rollouts")),
    )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollouts_current_wave", ["current_wave", "record_id"], unique=False
        )
        batch_op.create_index("ix_rollouts_owner_msp", ["owner_msp", "record_id"], unique=False)
        batch_op.create_index("ix_rollouts_patch_id", ["patch_id", "record_id"], unique=False)
        batch_op.create_index("ix_rollouts_rollout_id", ["rollout_id", "record_id"], unique=False)
        batch_op.create_index("ix_rollouts_status", ["status", "record_id"], unique=False)
        batch_op.create_index("ix_rollouts_updated_at", ["updated_at", "record_id"], unique=False)
        batch_op.create_index(
            "ix_rollouts_wave_started_at", ["wave_started_at", "record_id"], unique=False
        )

    op.create_table(
        "transactions",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tx_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("header_type", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=256), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("creator_msp", sa.String(length=256), nullable=False),
        sa.Column("creator_subject", sa.Text(), nullable=False),
        sa.Column("validation_code", sa.Integer(), nullable=False),
        sa.Column("validation_code_name", sa.String(length=64), nullable=False),
        sa.Column("chaincode", sa.String(length=256), nullable=False),
        sa.Column("function", sa.String(length=256), nullable=False),
        sa.Column("write_count", sa.Integer(), nullable=False),
        sa.Column("event_name", sa.String(length=256), nullable=False),
        sa.Column("event_payload", sa.Text(), nullable=False),
        sa.Column("parse_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "tx_index", name=op.f("pk_transactions")),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transactions_creator_msp", ["creator_msp", "block_number", "tx_index"], unique=False
        )
        batch_op.create_index(
            "ix_transactions_function", ["function", "block_number", "tx_index"], unique=False
        )
        batch_op.create_index("ix_transactions_tx_id", ["tx_id"], unique=False)

    op.create_table(
        "vulnerabilities",
        sa.Column("record_id", sa.String(length=600), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_time", sa.String(length=32), nullable=False),
        sa.Column("vuln_id", sa.String(length=600), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("kev_due_date", sa.Text(), nullable=True),
        sa.Column("known_exploited", sa.Boolean(), nullable=True),
        sa.Column("cvss_score", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_vulnerabilities")),
    )
    with op.batch_alter_table("vulnerabilities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vulnerabilities_cvss_score", ["cvss_score", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_vulnerabilities_kev_due_date", ["kev_due_date", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_vulnerabilities_severity", ["severity", "record_id"], unique=False
        )
        batch_op.create_index("ix_vulnerabilities_status", ["status", "record_id"], unique=False)
        batch_op.create_index(
            "ix_vulnerabilities_updated_at", ["updated_at", "record_id"], unique=False
        )
        batch_op.create_index("ix_vulnerabilities_vuln_id", ["vuln_id", "record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("vulnerabilities", schema=None) as batch_op:
        batch_op.drop_index("ix_vulnerabilities_vuln_id")
        batch_op.drop_index("ix_vulnerabilities_updated_at")
        batch_op.drop_index("ix_vulnerabilities_status")
        batch_op.drop_index("ix_vulnerabilities_severity")
        batch_op.drop_index("ix_vulnerabilities_kev_due_date")
        batch_op.drop_index("ix_vulnerabilities_cvss_score")

    op.drop_table("vulnerabilities")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_tx_id")
        batch_op.drop_index("ix_transactions_function")
        batch_op.drop_index("ix_transactions_creator_msp")

    op.drop_table("transactions")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_index("ix_rollouts_wave_started_at")
        batch_op.drop_index("ix_rollouts_updated_at")
        batch_op.drop_index("ix_rollouts_status")
        batch_op.drop_index("ix_rollouts_rollout_id")
        batch_op.drop_index("ix_rollouts_patch_id")
        batch_op.drop_index("ix_rollouts_owner_msp")
        batch_op.drop_index("ix_rollouts_current_wave")

    op.drop_table("rollouts")
    with op.batch_alter_table("risk_acceptances", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_acceptances_vuln_id")
        batch_op.drop_index("ix_risk_acceptances_updated_at")
        batch_op.drop_index("ix_risk_acceptances_status")
        batch_op.drop_index("ix_risk_acceptances_proposed_by")
        batch_op.drop_index("ix_risk_acceptances_expires_at")
        batch_op.drop_index("ix_risk_acceptances_exception_id")

    op.drop_table("risk_acceptances")
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.drop_index("ix_revocations_updated_at")
        batch_op.drop_index("ix_revocations_status")
        batch_op.drop_index("ix_revocations_proposed_by")
        batch_op.drop_index("ix_revocations_patch_id")

    op.drop_table("revocations")
    with op.batch_alter_table("record_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_record_versions_tx_id")
        batch_op.drop_index("ix_record_versions_block")

    op.drop_table("record_versions")
    op.drop_table("readmodel_checkpoints")
    with op.batch_alter_table("policy_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_changes_updated_at")
        batch_op.drop_index("ix_policy_changes_status")
        batch_op.drop_index("ix_policy_changes_proposed_by")
        batch_op.drop_index("ix_policy_changes_proposal_id")
        batch_op.drop_index("ix_policy_changes_policy_id")
        batch_op.drop_index("ix_policy_changes_base_version")

    op.drop_table("policy_changes")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_index("ix_policies_version")
        batch_op.drop_index("ix_policies_updated_at")
        batch_op.drop_index("ix_policies_policy_id")

    op.drop_table("policies")
    with op.batch_alter_table("pings", schema=None) as batch_op:
        batch_op.drop_index("ix_pings_updated_at")
        batch_op.drop_index("ix_pings_msp_id")
        batch_op.drop_index("ix_pings_at")

    op.drop_table("pings")
    with op.batch_alter_table("patches", schema=None) as batch_op:
        batch_op.drop_index("ix_patches_vendor")
        batch_op.drop_index("ix_patches_updated_at")
        batch_op.drop_index("ix_patches_supersedes")
        batch_op.drop_index("ix_patches_status")
        batch_op.drop_index("ix_patches_severity")
        batch_op.drop_index("ix_patches_proposed_by")
        batch_op.drop_index("ix_patches_patch_id")
        batch_op.drop_index("ix_patches_artifact_size")
        batch_op.drop_index("ix_patches_artifact_sha256")

    op.drop_table("patches")
    with op.batch_alter_table("patch_candidates", schema=None) as batch_op:
        batch_op.drop_index("ix_patch_candidates_vuln_id")
        batch_op.drop_index("ix_patch_candidates_status")

    op.drop_table("patch_candidates")
    op.drop_table("other_records")
    with op.batch_alter_table("ledger_submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_submissions_status")

    op.drop_table("ledger_submissions")
    op.drop_table("inventories")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index("ix_hosts_updated_at")
        batch_op.drop_index("ix_hosts_status")
        batch_op.drop_index("ix_hosts_owner_msp")
        batch_op.drop_index("ix_hosts_maintenance_window")
        batch_op.drop_index("ix_hosts_last_report_sequence")
        batch_op.drop_index("ix_hosts_inventory_sha256")
        batch_op.drop_index("ix_hosts_host_id")

    op.drop_table("hosts")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index("ix_findings_vuln_id")
        batch_op.drop_index("ix_findings_priority")

    op.drop_table("findings")
    op.drop_table("feed_imports")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_wave")
        batch_op.drop_index("ix_deployments_updated_at")
        batch_op.drop_index("ix_deployments_status")
        batch_op.drop_index("ix_deployments_rollout_id")
        batch_op.drop_index("ix_deployments_report_sequence")
        batch_op.drop_index("ix_deployments_patch_id")
        batch_op.drop_index("ix_deployments_owner_msp")
        batch_op.drop_index("ix_deployments_host_id")

    op.drop_table("deployments")
    op.drop_table("blocks")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_index("ix_approvals_updated_at")
        batch_op.drop_index("ix_approvals_patch_id")
        batch_op.drop_index("ix_approvals_msp_id")
        batch_op.drop_index("ix_approvals_decision")
        batch_op.drop_index("ix_approvals_approver")

    op.drop_table("approvals")
