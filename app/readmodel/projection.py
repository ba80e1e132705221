"""Projecting decoded blocks into the read model's tables, with the checkpoint written in the
same database transaction as the rows.

:func:`apply_blocks` is the whole projection: it checks that the blocks continue the
checkpoint (next number, previous hash = the last projected header hash), inserts blocks,
transactions and record versions, upserts the current records, and moves the checkpoint, all
on the caller's connection inside the caller's transaction. A crash before the commit leaves
neither rows nor checkpoint; a block delivered again (at-least-once delivery after a restart)
is below the checkpoint and skipped, so nothing is projected twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    ARRAY,
    Connection,
    String,
    Table,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from patchledger.app.errors import UserError
from patchledger.app.readmodel.decode import DecodedBlock, iso_time
from patchledger.app.readmodel.tables import (
    RECORD_TABLES,
    SPECS,
    RecordSpec,
    blocks,
    checkpoints,
    other_records,
    record_versions,
    transactions,
)

if TYPE_CHECKING:
    import psycopg

#: The checkpoint row of the read model's projector.
DEFAULT_CHECKPOINT = "readmodel"
_CHUNK = 400


class ProjectionError(UserError):
    """The blocks do not continue the read model (a gap, another ledger, another channel or
    chaincode): nothing was written."""


@dataclass(frozen=True)
class CheckpointState:
    """Where the projector resumes: the next block to project, the last projected header
    hash ("" before the genesis block), and the channel and chaincode it follows."""

    name: str
    channel: str
    chaincode: str
    block_number: int
    last_header_hash: str
    transaction_id: str = ""
    transaction_index: int | None = None
    updated_at: str = ""


@dataclass(frozen=True)
class ApplyResult:
    """What one :func:`apply_blocks` call did."""

    blocks: int
    transactions: int
    writes: int
    skipped_blocks: int
    next_block: int


def read_checkpoint(conn: Connection, name: str = DEFAULT_CHECKPOINT) -> CheckpointState | None:
    """The checkpoint ``name``, or ``None`` before anything was projected."""
    row = conn.execute(select(checkpoints).where(checkpoints.c.name == name)).mappings().first()
    if row is None:
        return None
    return CheckpointState(
        name=row["name"],
        channel=row["channel"],
        chaincode=row["chaincode"],
        block_number=int(row["block_number"]),
        last_header_hash=row["last_header_hash"],
        transaction_id=row["transaction_id"],
        transaction_index=row["transaction_index"],
        updated_at=row["updated_at"],
    )


def _now() -> str:
    return iso_time(dt.datetime.now(dt.UTC))


def _column_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "str":
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if kind == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "bool":
        return value if isinstance(value, bool) else None
    try:
        return float(value) if value != "" else None
    except (TypeError, ValueError):
        return None


def indexed_values(spec: RecordSpec | None, document: Mapping[str, Any] | None) -> dict[str, Any]:
    """The indexed columns of a record type, copied from the record's JSON object (``None``
    for a field that is absent or of the wrong type: the JSON is still stored whole)."""
    if spec is None:
        return {}
    doc = document or {}
    return {c.name: _column_value(c.kind, doc.get(c.source)) for c in spec.columns}


def _parse(value: bytes) -> tuple[str, dict[str, Any] | None]:
    text = value.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text, None
    return text, doc if isinstance(doc, dict) else None


@dataclass
class _Current:
    spec: RecordSpec | None
    record_type: str
    record_id: str
    row: dict[str, Any] | None  # None: deleted


def apply_blocks(
    conn: Connection,
    decoded: Iterable[DecodedBlock],
    *,
    channel: str,
    chaincode: str,
    checkpoint: str = DEFAULT_CHECKPOINT,
) -> ApplyResult:
    """Project ``decoded`` (consecutive blocks, oldest first) on ``conn``, in the caller's
    transaction, and move checkpoint ``checkpoint`` after the last one.

    Blocks below the checkpoint are skipped (already projected).

    Raises:
        ProjectionError: a block does not follow the checkpoint (gap, or its previous hash is
            not the last projected header hash), or the checkpoint follows another channel or
            chaincode. The caller must roll back (nothing of the call is then kept).
    """
    state = read_checkpoint(conn, checkpoint)
    if state is not None and (state.channel, state.chaincode) != (channel, chaincode):
        raise ProjectionError(
            f"read model checkpoint {checkpoint!r} follows chaincode {state.chaincode!r} on "
            f"channel {state.channel!r}, not {chaincode!r} on {channel!r}: rebuild it"
        )
    next_block = state.block_number if state else 0
    last_hash = state.last_header_hash if state else ""
    block_rows: list[dict[str, Any]] = []
    tx_rows: list[dict[str, Any]] = []
    pending: list[tuple[DecodedBlock, int, Any]] = []  # (block, tx index, write)
    tx_meta: dict[tuple[int, int], tuple[str, str, str, str]] = {}
    skipped = 0
    now = _now()
    for block in decoded:
        if block.number < next_block:
            skipped += 1
            continue
        if block.number != next_block:
            raise ProjectionError(
                f"block {block.number} does not follow the read model: expected block "
                f"{next_block} next (checkpoint {checkpoint!r})"
            )
        if last_hash and block.previous_hash != last_hash:
            raise ProjectionError(
                f"block {block.number}'s previous hash {block.previous_hash[:16]}... is not "
                f"the hash of projected block {block.number - 1} ({last_hash[:16]}...): the "
                "peer serves another ledger; rebuild the read model"
            )
        valid = 0
        first_time = ""
        for dtx in block.transactions:
            tx = dtx.tx
            valid += tx.valid
            first_time = first_time or dtx.time
            event_name = tx.event.event_name if tx.event else ""
            event_payload = tx.event.payload.decode("utf-8", "replace") if tx.event else ""
            tx_rows.append(
                {
                    "block_number": block.number,
                    "tx_index": tx.index,
                    "tx_id": tx.transaction_id,
                    "header_type": tx.header_type,
                    "channel_id": tx.channel_id,
                    "tx_time": dtx.time,
                    "creator_msp": tx.creator_msp_id,
                    "creator_subject": dtx.creator_subject,
                    "validation_code": tx.validation_code,
                    "validation_code_name": tx.validation_code_name,
                    "chaincode": tx.chaincode_name,
                    "function": tx.function,
                    "write_count": len(dtx.writes),
                    "event_name": event_name,
                    "event_payload": event_payload,
                    "parse_error": tx.error,
                }
            )
            tx_meta[(block.number, tx.index)] = (
                tx.transaction_id,
                dtx.time,
                tx.creator_msp_id,
                dtx.creator_subject,
            )
            pending.extend((block, tx.index, w) for w in dtx.writes)
        block_rows.append(
            {
                "number": block.number,
                "header_hash": block.header_hash,
                "previous_hash": block.previous_hash,
                "data_hash": block.data_hash,
                "tx_count": len(block.transactions),
                "valid_count": valid,
                "write_count": block.write_count,
                "first_tx_time": first_time,
                "projected_at": now,
            }
        )
        next_block, last_hash = block.number + 1, block.header_hash
    if not block_rows:
        return ApplyResult(0, 0, 0, skipped, next_block)

    keys = list(dict.fromkeys((w.record_type, w.record_id) for _, _, w in pending))
    versions = _max_versions(conn, keys)
    current: dict[tuple[str, str], _Current] = {}
    version_rows: list[dict[str, Any]] = []
    for block, tx_index, w in pending:
        key = (w.record_type, w.record_id)
        version = versions.get(key, 0) + 1
        versions[key] = version
        tx_id, tx_time, creator_msp, subject = tx_meta[(block.number, tx_index)]
        spec = SPECS.get(w.record_type)
        if w.value is None:
            text, doc, state_value = None, None, ""
        else:
            text, doc = _parse(w.value)
            state_field = spec.state_field if spec else "status"
            raw_state = (doc or {}).get(state_field, "") if state_field else ""
            state_value = raw_state if isinstance(raw_state, str) else ""
        version_rows.append(
            {
                "record_type": w.record_type,
                "record_id": w.record_id,
                "version": version,
                "block_number": block.number,
                "tx_index": tx_index,
                "write_index": w.write_index,
                "tx_id": tx_id,
                "tx_time": tx_time,
                "creator_msp": creator_msp,
                "creator_subject": subject,
                "is_delete": w.value is None,
                "state": state_value,
                "json": text,
            }
        )
        entry = current.get(key) or _Current(spec, *key, None)
        if text is None:
            entry.row = None
        else:
            updated_at = (doc or {}).get("updated_at", 0)
            updated_by = (doc or {}).get("updated_by", "")
            entry.row = {
                "record_id": w.record_id,
                "state": state_value,
                "json": text,
                "updated_at": updated_at if isinstance(updated_at, int) else 0,
                "updated_by": updated_by if isinstance(updated_by, str) else "",
                "versions": version,
                "tx_id": tx_id,
                "block_number": block.number,
                "tx_time": tx_time,
                **indexed_values(spec, doc),
            }
        current[key] = entry

    _insert_rows(conn, blocks, block_rows)
    _insert_rows(conn, transactions, tx_rows)
    _insert_rows(conn, record_versions, version_rows)
    _write_current(conn, current.values())
    _save_checkpoint(conn, checkpoint, channel, chaincode, next_block, last_hash, now)
    return ApplyResult(len(block_rows), len(tx_rows), len(version_rows), skipped, next_block)


def _table_of(record_type: str) -> Table:
    return RECORD_TABLES.get(record_type, other_records)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _max_versions(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The latest version number of each key, per record type with ``record_id IN (...)`` (an
    index condition on both backends; a row-value ``(type, id) IN`` becomes a filter evaluated
    on every row of the type on PostgreSQL)."""
    by_type: dict[str, list[str]] = {}
    for record_type, record_id in keys:
        by_type.setdefault(record_type, []).append(record_id)
    out: dict[tuple[str, str], int] = {}
    v = record_versions.c
    if conn.dialect.name == "postgresql":
        # one statement per type, the ids as one array parameter (no IN list to chunk)
        for record_type, ids in by_type.items():
            query = (
                select(v.record_id, func.max(v.version))
                .where(v.record_type == record_type,
                       v.record_id == any_(bindparam("ids", ids, type_=ARRAY(String))))
                .group_by(v.record_id)
            )
            for record_id, version in conn.execute(query):
                out[(record_type, record_id)] = int(version)
        return out
    for record_type, ids in by_type.items():
        for chunk in _chunks(ids):
            query = (
                select(v.record_id, func.max(v.version))
                .where(v.record_type == record_type, v.record_id.in_(list(chunk)))
                .group_by(v.record_id)
            )
            for record_id, version in conn.execute(query):
                out[(record_type, record_id)] = int(version)
    return out


def _psycopg(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under ``conn`` (in ``conn``'s transaction)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    return cast("psycopg.Connection[Any]", raw)


def _copy_rows(conn: Connection, table_name: str, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: ``COPY table (columns of rows[0]) FROM STDIN`` on the connection's own
    psycopg connection, so inside the caller's transaction (with the checkpoint). One round
    trip and no statement per row: ``executemany`` costs a bound statement per row on the
    client and the server (about half of a batch's time, the profile in docs/readmodel.md)."""
    from psycopg import sql as pg_sql

    columns = list(rows[0])
    statement = pg_sql.SQL("COPY {} ({}) FROM STDIN").format(
        pg_sql.Identifier(table_name), pg_sql.SQL(", ").join(map(pg_sql.Identifier, columns)))
    with _psycopg(conn).cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``: ``COPY`` on PostgreSQL; one ``executemany`` on SQLite (one compiled
    statement, cached)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table.name, rows)
    else:
        conn.execute(insert(table), rows)


def _upsert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert or replace the current records ``rows``: ``INSERT ... ON CONFLICT (key) DO
    UPDATE``, which SQLite and PostgreSQL both have; on SQLite one ``executemany``, on
    PostgreSQL one ``INSERT ... SELECT`` from a session-local staging table that ``COPY``
    filled (emptied again at once; rows of one batch have distinct keys)."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    if conn.dialect.name == "postgresql":
        _upsert_by_copy(conn, table, keys, rows)
        return
    statement = sqlite_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in rows[0] if name not in keys},
    )
    conn.execute(statement, rows)


def _upsert_by_copy(conn: Connection, table: Table, keys: list[str],
                    rows: list[dict[str, Any]]) -> None:
    from psycopg import sql as pg_sql

    stage = f"readmodel_stage_{table.name}"
    columns = list(rows[0])
    names = pg_sql.SQL(", ").join(map(pg_sql.Identifier, columns))
    updates = pg_sql.SQL(", ").join(
        pg_sql.SQL("{0} = EXCLUDED.{0}").format(pg_sql.Identifier(c))
        for c in columns if c not in keys)
    with _psycopg(conn).cursor() as cursor:
        cursor.execute(pg_sql.SQL(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
                pg_sql.Identifier(stage), pg_sql.Identifier(table.name)))
    _copy_rows(conn, stage, rows)
    with _psycopg(conn).cursor() as cursor:
        cursor.execute(pg_sql.SQL(
            "INSERT INTO {table} ({names}) SELECT {names} FROM {stage} "
            "ON CONFLICT ({keys}) DO UPDATE SET {updates}").format(
                table=pg_sql.Identifier(table.name), names=names,
                stage=pg_sql.Identifier(stage),
                keys=pg_sql.SQL(", ").join(map(pg_sql.Identifier, keys)), updates=updates))
        cursor.execute(pg_sql.SQL("TRUNCATE {}").format(pg_sql.Identifier(stage)))


def _write_current(conn: Connection, entries: Iterable[_Current]) -> None:
    upserts: dict[str, list[dict[str, Any]]] = {}
    deletes: dict[str, list[str]] = {}
    for e in entries:
        if e.row is None:
            deletes.setdefault(e.record_type, []).append(e.record_id)
            continue
        row = dict(e.row)
        if e.spec is None:
            row["record_type"] = e.record_type
        upserts.setdefault(e.record_type, []).append(row)
    for record_type, rows in upserts.items():
        _upsert_rows(conn, _table_of(record_type), rows)
    for record_type, ids in deletes.items():
        table = _table_of(record_type)
        for chunk in _chunks(ids):
            removal = delete(table).where(table.c.record_id.in_(list(chunk)))
            if table is other_records:
                removal = removal.where(table.c.record_type == record_type)
            conn.execute(removal)


def _save_checkpoint(
    conn: Connection,
    name: str,
    channel: str,
    chaincode: str,
    block_number: int,
    header_hash: str,
    now: str,
) -> None:
    values = {
        "channel": channel,
        "chaincode": chaincode,
        "block_number": block_number,
        "transaction_id": "",
        "transaction_index": None,
        "last_header_hash": header_hash,
        "updated_at": now,
    }
    done = conn.execute(update(checkpoints).where(checkpoints.c.name == name).values(values))
    if done.rowcount == 0:
        conn.execute(insert(checkpoints).values(name=name, **values))


def clear(conn: Connection, checkpoint: str = DEFAULT_CHECKPOINT) -> None:
    """Delete every read-model row and the checkpoint (the rebuild's first step), in the
    caller's transaction. Off-ledger tables (ingestion's) are not touched."""
    for table in (*RECORD_TABLES.values(), other_records, record_versions, transactions, blocks):
        conn.execute(delete(table))
    conn.execute(delete(checkpoints).where(checkpoints.c.name == checkpoint))
