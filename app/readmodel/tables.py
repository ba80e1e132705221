"""The read model's tables: one per ledger record type, every record version, blocks,
transactions and the projector's checkpoint.

Each record table holds the record's current canonical JSON (``json``) plus the columns the
API filters and sorts on, copied from the JSON by :data:`RECORD_SPECS`; ``record_id`` is the
id of the contract's events (key parts joined by ``/``). ``record_versions`` holds every
write of every record (the ledger's history), with the transaction, block, time, creator
organization and certificate subject. Records of a type this code does not know (written by
a newer chaincode) go to ``other_records``, so nothing on the ledger is missed.

Times are ISO 8601 UTC strings with microseconds (``2026-12-01T08:00:00.123456Z``): the
same text on SQLite and PostgreSQL, sortable as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
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

ID = String(600)  # ids are at most 256 characters; two-part ids join two of them
MSP = String(256)
TIME = String(32)
HEX = String(128)


@dataclass(frozen=True)
class Indexed:
    """A column copied from the record's JSON field ``field`` (``kind``: str, int, bool,
    float; a float column stores a decimal string such as a CVSS score as a number)."""

    name: str
    kind: str = "str"
    field: str = ""

    @property
    def source(self) -> str:
        """The JSON field the column is copied from."""
        return self.field or self.name


@dataclass(frozen=True)
class RecordSpec:
    """How one record type is stored: its table, its key parts (the record id's parts) and
    its indexed columns."""

    record_type: str
    table_name: str
    key_parts: tuple[str, ...]
    columns: tuple[Indexed, ...]

    @property
    def state_field(self) -> str:
        """The JSON field holding the lifecycle state ("" when the type has none)."""
        return "status" if any(c.name == "status" for c in self.columns) else ""


def _s(*names: str) -> tuple[Indexed, ...]:
    return tuple(Indexed(n) for n in names)


#: Every record type the contract writes (chaincode/lifecycle/queries.RECORD_TYPES, and the
#: liveness Ping records), in the contract's key order.
RECORD_SPECS: tuple[RecordSpec, ...] = (
    RecordSpec(
        "Vulnerability",
        "vulnerabilities",
        ("vuln_id",),
        (
            *_s("vuln_id", "status", "severity", "title", "kev_due_date"),
            Indexed("known_exploited", "bool"),
            Indexed("cvss_score", "float"),
        ),
    ),
    RecordSpec(
        "Patch",
        "patches",
        ("patch_id",),
        (
            *_s("patch_id", "status", "severity", "title", "vendor", "artifact_sha256"),
            *_s("proposed_by", "supersedes"),
            Indexed("artifact_size", "int"),
        ),
    ),
    RecordSpec(
        "Approval",
        "approvals",
        ("patch_id", "msp_id"),
        _s("patch_id", "msp_id", "decision", "approver"),
    ),
    RecordSpec("Policy", "policies", ("policy_id",), (Indexed("policy_id"),
                                                      Indexed("version", "int"))),
    RecordSpec(
        "PolicyChange",
        "policy_changes",
        ("proposal_id",),
        (*_s("proposal_id", "policy_id", "status", "proposed_by"),
         Indexed("base_version", "int")),
    ),
    RecordSpec(
        "Host",
        "hosts",
        ("host_id",),
        (
            *_s("host_id", "owner_msp", "status", "inventory_sha256", "maintenance_window"),
            Indexed("last_report_sequence", "int"),
        ),
    ),
    RecordSpec(
        "Rollout",
        "rollouts",
        ("rollout_id",),
        (*_s("rollout_id", "patch_id", "owner_msp", "status"),
         Indexed("current_wave", "int"), Indexed("wave_started_at", "int")),
    ),
    RecordSpec(
        "Deployment",
        "deployments",
        ("rollout_id", "host_id"),
        (*_s("rollout_id", "host_id", "patch_id", "owner_msp", "status"),
         Indexed("wave", "int"), Indexed("report_sequence", "int")),
    ),
    RecordSpec(
        "RiskAcceptance",
        "risk_acceptances",
        ("vuln_id", "exception_id"),
        (*_s("vuln_id", "exception_id", "status", "proposed_by"),
         Indexed("expires_at", "int")),
    ),
    RecordSpec(
        "Revocation",
        "revocations",
        ("patch_id",),
        _s("patch_id", "status", "proposed_by"),
    ),
    RecordSpec(
        "RevokedIdentity",
        "revoked_identities",
        ("msp_id", "kind", "value"),
        (*_s("msp_id", "kind", "value", "revoked_by"), Indexed("revoked_at", "int")),
    ),
    RecordSpec("Ping", "pings", ("msp_id",), (Indexed("msp_id"), Indexed("at", "int"))),
)

SPECS: Mapping[str, RecordSpec] = {spec.record_type: spec for spec in RECORD_SPECS}

_TYPES: Mapping[str, Any] = {
    "str": lambda: Text(),
    "int": lambda: BigInteger(),
    "bool": lambda: Boolean(),
    "float": lambda: Float(),
}


def _common_columns() -> list[Column[Any]]:
    return [
        Column("record_id", ID, primary_key=True),
        Column("state", String(64), nullable=False, default=""),
        Column("json", Text, nullable=False),
        Column("updated_at", BigInteger, nullable=False, default=0),
        Column("updated_by", MSP, nullable=False, default=""),
        Column("versions", Integer, nullable=False),
        Column("tx_id", HEX, nullable=False),
        Column("block_number", BigInteger, nullable=False),
        Column("tx_time", TIME, nullable=False),
    ]


def _record_table(spec: RecordSpec) -> Table:
    columns = _common_columns()
    for c in spec.columns:
        kind = String(600) if c.kind == "str" and c.name in spec.key_parts else _TYPES[c.kind]()
        columns.append(Column(c.name, kind, nullable=True))
    table = Table(spec.table_name, metadata, *columns)
    for c in spec.columns:
        if c.name not in ("title",) and c.kind != "bool":
            Index(f"ix_{spec.table_name}_{c.name}", table.c[c.name], table.c.record_id)
    Index(f"ix_{spec.table_name}_updated_at", table.c.updated_at, table.c.record_id)
    return table


#: record type -> its table.
RECORD_TABLES: Mapping[str, Table] = {spec.record_type: _record_table(spec)
                                      for spec in RECORD_SPECS}

#: Records of types this code does not know.
other_records = Table(
    "other_records",
    metadata,
    Column("record_type", String(256), primary_key=True),
    *_common_columns(),
)

#: Every write to a record, oldest first by (block_number, tx_index, write_index).
record_versions = Table(
    "record_versions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("record_type", String(256), nullable=False),
    Column("record_id", ID, nullable=False),
    Column("version", Integer, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("tx_index", Integer, nullable=False),
    Column("write_index", Integer, nullable=False),
    Column("tx_id", HEX, nullable=False),
    Column("tx_time", TIME, nullable=False),
    Column("creator_msp", MSP, nullable=False),
    Column("creator_subject", Text, nullable=False),
    Column("is_delete", Boolean, nullable=False),
    Column("state", String(64), nullable=False),
    Column("json", Text, nullable=True),
    UniqueConstraint("record_type", "record_id", "version",
                     name="uq_record_versions_record_version"),
    Index("ix_record_versions_tx_id", "tx_id"),
    Index("ix_record_versions_block", "block_number", "tx_index"),
)

blocks = Table(
    "blocks",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("header_hash", HEX, nullable=False),
    Column("previous_hash", HEX, nullable=False),
    Column("data_hash", HEX, nullable=False),
    Column("tx_count", Integer, nullable=False),
    Column("valid_count", Integer, nullable=False),
    Column("write_count", Integer, nullable=False),
    Column("first_tx_time", TIME, nullable=False),
    Column("projected_at", TIME, nullable=False),
)

transactions = Table(
    "transactions",
    metadata,
    Column("block_number", BigInteger, primary_key=True, autoincrement=False),
    Column("tx_index", Integer, primary_key=True, autoincrement=False),
    Column("tx_id", HEX, nullable=False),
    Column("header_type", String(64), nullable=False),
    Column("channel_id", String(256), nullable=False),
    Column("tx_time", TIME, nullable=False),
    Column("creator_msp", MSP, nullable=False),
    Column("creator_subject", Text, nullable=False),
    Column("validation_code", Integer, nullable=False),
    Column("validation_code_name", String(64), nullable=False),
    Column("chaincode", String(256), nullable=False),
    Column("function", String(256), nullable=False),
    Column("write_count", Integer, nullable=False),
    Column("event_name", String(256), nullable=False),
    Column("event_payload", Text, nullable=False),
    Column("parse_error", Text, nullable=False),
    Index("ix_transactions_tx_id", "tx_id"),
    Index("ix_transactions_function", "function", "block_number", "tx_index"),
    Index("ix_transactions_creator_msp", "creator_msp", "block_number", "tx_index"),
)

#: The projector's durable position, written in the same database transaction as the rows.
checkpoints = Table(
    "readmodel_checkpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("channel", String(256), nullable=False),
    Column("chaincode", String(256), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("transaction_id", HEX, nullable=False),
    Column("transaction_index", Integer, nullable=True),
    Column("last_header_hash", HEX, nullable=False),
    Column("updated_at", TIME, nullable=False),
)
