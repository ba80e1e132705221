"""Ingestion's off-ledger tables in the app database.

- ``inventories``: the organization's host inventories (the packages, as JSON), with the
  SHA-256 of their canonical form; that digest is what goes on the ledger
  (``UpdateInventoryDigest``).
- ``findings``: vulnerable packages per host from the last import, with the explained
  priority and deadline (off the ledger: bulk data).
- ``patch_candidates``: patch proposals prepared from advisories' fixed versions, waiting for
  an operator to confirm (``PENDING`` -> ``CONFIRMED`` / ``DISMISSED``).
- ``feed_imports``: one row per ingestion run (sources, counts, errors).
- ``ledger_submissions``: every transaction ingestion submitted, until the read model shows
  it committed; a crash between submit and commit is reconciled from the ledger, never
  resubmitted blindly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from patchledger.app.db.metadata import metadata
from patchledger.app.readmodel.tables import HEX, ID, TIME

inventories = Table(
    "inventories",
    metadata,
    Column("host_id", ID, primary_key=True),
    Column("inventory_sha256", String(64), nullable=False),
    Column("origin", Text, nullable=False),
    Column("distro", String(128), nullable=False),
    Column("package_count", Integer, nullable=False),
    Column("packages_json", Text, nullable=False),
    Column("criticality", String(16), nullable=False),
    Column("updated_at", TIME, nullable=False),
    Column("ledger_digest", String(64), nullable=False),
)

findings = Table(
    "findings",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("host_id", ID, nullable=False),
    Column("vuln_id", ID, nullable=False),
    Column("package", Text, nullable=False),
    Column("installed_version", Text, nullable=False),
    Column("fixed_version", Text, nullable=True),
    Column("advisory_id", Text, nullable=False),
    Column("source", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("priority_score", Float, nullable=False),
    Column("priority_json", Text, nullable=False),
    Column("deadline", String(10), nullable=True),
    Column("first_seen", TIME, nullable=False),
    Column("last_seen", TIME, nullable=False),
    Column("import_id", BigInteger, nullable=False),
    UniqueConstraint("host_id", "vuln_id", "package", name="uq_findings_host_vuln_package"),
    Index("ix_findings_vuln_id", "vuln_id", "host_id"),
    Index("ix_findings_priority", "priority_score", "id"),
)

patch_candidates = Table(
    "patch_candidates",
    metadata,
    Column("candidate_id", String(64), primary_key=True),
    Column("vuln_id", ID, nullable=False),
    Column("package", Text, nullable=False),
    Column("fixed_version", Text, nullable=False),
    Column("advisory_ids", Text, nullable=False),
    Column("host_ids", Text, nullable=False),
    Column("host_count", Integer, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("updated_at", TIME, nullable=False),
    Column("decided_by", Text, nullable=False),
    Column("patch_id", ID, nullable=False),
    # every vulnerability the package update fixes (JSON list; migration 0002)
    Column("vuln_ids", Text, nullable=True),
    Index("ix_patch_candidates_status", "status", "candidate_id"),
    Index("ix_patch_candidates_vuln_id", "vuln_id"),
)

feed_imports = Table(
    "feed_imports",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("started_at", TIME, nullable=False),
    Column("finished_at", TIME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("sources_json", Text, nullable=False),
    Column("records", Integer, nullable=False),
    Column("advisories", Integer, nullable=False),
    Column("vulnerabilities", Integer, nullable=False),
    Column("findings", Integer, nullable=False),
    Column("submitted", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("candidates", Integer, nullable=False),
    Column("errors_json", Text, nullable=False),
)

ledger_submissions = Table(
    "ledger_submissions",
    metadata,
    Column("tx_id", HEX, primary_key=True),
    Column("function", String(64), nullable=False),
    Column("record_type", String(64), nullable=False),
    Column("record_id", ID, nullable=False),
    Column("payload_json", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("submitted_at", TIME, nullable=False),
    Column("resolved_at", TIME, nullable=False),
    Index("ix_ledger_submissions_status", "status", "record_type", "record_id"),
)

#: Who runs the ingestion scheduler: one holder per deployment, renewed every run
#: (migration 0002).
scheduler_leases = Table(
    "scheduler_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("expires_at", Float, nullable=False),
)
