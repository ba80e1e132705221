"""Pure query functions over the read model, for the API, the CLI and the dispatcher.

Every list is keyset-paged: a page carries ``next_cursor`` (opaque text, ``None`` after the
last page); passing it back continues exactly after the last item even while rows are added.
Sorting is by an indexed column, ties broken by the record id (blocks and transactions by
their position), ascending or descending. Bad filters, sort keys, limits or cursors raise
:class:`QueryError` naming the parameter; nothing here writes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Float,
    Integer,
    RowMapping,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.sql.elements import literal

from patchledger.app.errors import UserError
from patchledger.app.readmodel.tables import (
    RECORD_TABLES,
    SPECS,
    blocks,
    other_records,
    record_versions,
    transactions,
)

T = TypeVar("T")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
#: Filters and sort keys every record type has.
COMMON_FIELDS = ("record_id", "state", "updated_at", "updated_by", "block_number")


class QueryError(UserError):
    """A query parameter is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid {field!r}: {message}")
        self.field = field
        self.reason = message


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items and the cursor of the next page (``None``: last)."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class RecordRow:
    """A record's current version, as the read model holds it."""

    record_type: str
    record_id: str
    state: str
    record: dict[str, Any]
    updated_at: int
    updated_by: str
    versions: int
    tx_id: str
    block_number: int
    tx_time: str

    @property
    def etag(self) -> str:
        """A strong validator of this version (changes with every write to the record)."""
        return f'"{self.record_type}/{self.record_id}/{self.versions}/{self.tx_id[:16]}"'


@dataclass(frozen=True)
class VersionRow:
    """One version of a record: what was written, by which transaction, when and by whom."""

    record_type: str
    record_id: str
    version: int
    block_number: int
    tx_index: int
    tx_id: str
    tx_time: str
    creator_msp: str
    creator_subject: str
    is_delete: bool
    state: str
    record: dict[str, Any] | None


@dataclass(frozen=True)
class BlockRow:
    """A projected block."""

    number: int
    header_hash: str
    previous_hash: str
    data_hash: str
    tx_count: int
    valid_count: int
    write_count: int
    first_tx_time: str


@dataclass(frozen=True)
class TransactionRow:
    """A projected transaction (valid or not)."""

    block_number: int
    tx_index: int
    tx_id: str
    header_type: str
    tx_time: str
    creator_msp: str
    creator_subject: str
    validation_code: int
    validation_code_name: str
    chaincode: str
    function: str
    write_count: int
    event_name: str
    event_payload: str

    @property
    def valid(self) -> bool:
        """True when committed VALID."""
        return self.validation_code == 0


def record_types() -> dict[str, tuple[str, ...]]:
    """Every record type with the fields it can be filtered and sorted on."""
    return {
        t: (*COMMON_FIELDS, *(c.name for c in spec.columns if c.name not in COMMON_FIELDS))
        for t, spec in SPECS.items()
    }


def check_limit(limit: int) -> int:
    """``limit`` when it is an integer from 1 to :data:`MAX_LIMIT`.

    Raises:
        QueryError: naming ``limit``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return limit


def encode_cursor(values: Sequence[Any]) -> str:
    """The opaque cursor of a position (URL-safe base64 of JSON)."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """The position of ``cursor``; each value must be of its kind (int, float, str, bool).

    Raises:
        QueryError: not a cursor of this list.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise QueryError("cursor", "is not a cursor returned by this list") from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise QueryError("cursor", "is not a cursor returned by this list")
    for value, kind in zip(values, kinds, strict=True):
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise QueryError("cursor", "is not a cursor returned by this list")
    return values


def _after(
    columns: Sequence[ColumnElement[Any]], values: Sequence[Any], descending: bool
) -> ColumnElement[bool]:
    """The keyset condition "strictly after ``values``" in the order of ``columns``."""
    terms = []
    for i, column in enumerate(columns):
        equal = [columns[j] == literal(values[j]) for j in range(i)]
        value = literal(values[i])
        beyond = column < value if descending else column > value
        terms.append(and_(*equal, beyond))
    return or_(*terms)


def _record_table(record_type: str) -> Any:
    table = RECORD_TABLES.get(record_type)
    if table is None:
        raise QueryError("record_type", f"unknown record type; one of {', '.join(SPECS)}")
    return table


def _sort_expr(column: Any) -> tuple[ColumnElement[Any], type]:
    """The column with NULLs mapped to a value of its kind (so keyset paging can compare); a
    column that cannot be NULL is used as it is, so that its index serves the order."""
    kind = (bool if isinstance(column.type, Boolean) else float if isinstance(
        column.type, Float) else int if isinstance(column.type, Integer) else str)
    if not column.nullable:
        return column, kind
    if isinstance(column.type, Boolean):
        return func.coalesce(column, literal(False)), bool
    if isinstance(column.type, Float):
        return func.coalesce(column, literal(-1.0)), float
    if isinstance(column.type, Integer):
        return func.coalesce(column, literal(-1)), int
    return func.coalesce(column, literal("")), str


def _coerce(field: str, column: Any, value: Any) -> Any:
    kind = _sort_expr(column)[1]
    if kind is bool:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise QueryError(field, "must be true or false")
    if kind is int or kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise QueryError(field, "must be a number") from None
    if not isinstance(value, str):
        raise QueryError(field, "must be a string")
    return value


def _row_to_record(record_type: str, row: RowMapping) -> RecordRow:
    return RecordRow(
        record_type=record_type,
        record_id=row["record_id"],
        state=row["state"],
        record=_load(row["json"]) or {},
        updated_at=int(row["updated_at"]),
        updated_by=row["updated_by"],
        versions=int(row["versions"]),
        tx_id=row["tx_id"],
        block_number=int(row["block_number"]),
        tx_time=row["tx_time"],
    )


def _load(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return doc if isinstance(doc, dict) else {"_raw": doc}


def list_records(
    conn: Connection,
    record_type: str,
    *,
    filters: Mapping[str, Any] | None = None,
    sort: str = "record_id",
    descending: bool = False,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[RecordRow]:
    """One page of ``record_type``'s current records.

    ``filters`` maps a field of :func:`record_types` to a value (equality; a list or tuple
    value matches any of its items); strings ``"true"``/``"false"`` and digits are accepted
    for boolean and numeric fields (query-string values).

    Raises:
        QueryError: unknown record type, filter or sort field; a value of the wrong kind; a
            limit outside 1..500; a cursor not from this list.
    """
    table = _record_table(record_type)
    allowed = record_types()[record_type]
    limit = check_limit(limit)
    query = select(table)
    for field, value in (filters or {}).items():
        if field not in allowed:
            raise QueryError(
                field, f"is not a filter of {record_type}; one of {', '.join(allowed)}"
            )
        column = table.c[field]
        if isinstance(value, list | tuple):
            query = query.where(column.in_([_coerce(field, column, v) for v in value]))
        else:
            query = query.where(column == _coerce(field, column, value))
    if sort not in allowed:
        raise QueryError("sort", f"{sort!r} is not a field of {record_type}; one of "
                                 f"{', '.join(allowed)}")
    sort_expr, kind = _sort_expr(table.c[sort])
    keys: list[ColumnElement[Any]] = [sort_expr, table.c.record_id]
    if sort == "record_id":
        keys = [table.c.record_id]
    if cursor is not None:
        kinds = [str] if sort == "record_id" else [kind, str]
        query = query.where(_after(keys, decode_cursor(cursor, kinds), descending))
    order = [k.desc() if descending else k.asc() for k in keys]
    rows = conn.execute(query.order_by(*order).limit(limit + 1)).mappings().all()
    items = [_row_to_record(record_type, r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        values = [last["record_id"]] if sort == "record_id" else [
            _cursor_value(last[sort], kind), last["record_id"]]
        next_cursor = encode_cursor(values)
    return Page(items, next_cursor)


def _cursor_value(value: Any, kind: type) -> Any:
    if value is None:
        return {bool: False, float: -1.0, int: -1, str: ""}[kind]
    return kind(value)


def count_records(
    conn: Connection, record_type: str, *, filters: Mapping[str, Any] | None = None
) -> int:
    """How many current records of ``record_type`` match ``filters`` (as in
    :func:`list_records`).

    Raises:
        QueryError: as :func:`list_records`.
    """
    table = _record_table(record_type)
    allowed = record_types()[record_type]
    query = select(func.count()).select_from(table)
    for field, value in (filters or {}).items():
        if field not in allowed:
            raise QueryError(field, f"is not a filter of {record_type}")
        column = table.c[field]
        values = value if isinstance(value, list | tuple) else [value]
        query = query.where(column.in_([_coerce(field, column, v) for v in values]))
    return int(conn.execute(query).scalar_one())


def get_record(conn: Connection, record_type: str, record_id: str) -> RecordRow | None:
    """The current version of a record, or ``None`` when the read model has none (never
    written, deleted, or not projected yet).

    Raises:
        QueryError: unknown record type.
    """
    table = _record_table(record_type)
    row = conn.execute(select(table).where(table.c.record_id == record_id)).mappings().first()
    return None if row is None else _row_to_record(record_type, row)


def get_other_record(conn: Connection, record_type: str, record_id: str) -> RecordRow | None:
    """A record of a type this code does not know (``other_records``), or ``None``."""
    t = other_records
    row = conn.execute(
        select(t).where(t.c.record_type == record_type, t.c.record_id == record_id)
    ).mappings().first()
    return None if row is None else _row_to_record(record_type, row)


def _version(row: RowMapping) -> VersionRow:
    return VersionRow(
        record_type=row["record_type"],
        record_id=row["record_id"],
        version=int(row["version"]),
        block_number=int(row["block_number"]),
        tx_index=int(row["tx_index"]),
        tx_id=row["tx_id"],
        tx_time=row["tx_time"],
        creator_msp=row["creator_msp"],
        creator_subject=row["creator_subject"],
        is_delete=bool(row["is_delete"]),
        state=row["state"],
        record=_load(row["json"]),
    )


def record_history(conn: Connection, record_type: str, record_id: str) -> list[VersionRow]:
    """Every version of a record, oldest first (empty when it was never written)."""
    v = record_versions.c
    query = (
        select(record_versions)
        .where(v.record_type == record_type, v.record_id == record_id)
        .order_by(v.version)
    )
    return [_version(r) for r in conn.execute(query).mappings()]


def transaction_writes(conn: Connection, tx_id: str) -> list[VersionRow]:
    """The record versions written by transaction ``tx_id``, in write order."""
    v = record_versions.c
    query = select(record_versions).where(v.tx_id == tx_id).order_by(
        v.block_number, v.tx_index, v.write_index)
    return [_version(r) for r in conn.execute(query).mappings()]


def _block(row: RowMapping) -> BlockRow:
    return BlockRow(**{f: row[f] for f in BlockRow.__dataclass_fields__})


def _transaction(row: RowMapping) -> TransactionRow:
    return TransactionRow(**{f: row[f] for f in TransactionRow.__dataclass_fields__})


def list_blocks(
    conn: Connection,
    *,
    descending: bool = True,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[BlockRow]:
    """One page of projected blocks (newest first by default).

    Raises:
        QueryError: a bad limit or cursor.
    """
    limit = check_limit(limit)
    query = select(blocks)
    if cursor is not None:
        (after,) = decode_cursor(cursor, [int])
        query = query.where(blocks.c.number < after if descending else blocks.c.number > after)
    order = blocks.c.number.desc() if descending else blocks.c.number.asc()
    rows = conn.execute(query.order_by(order).limit(limit + 1)).mappings().all()
    next_cursor = encode_cursor([rows[limit - 1]["number"]]) if len(rows) > limit else None
    return Page([_block(r) for r in rows[:limit]], next_cursor)


def get_block(conn: Connection, number: int) -> BlockRow | None:
    """A projected block, or ``None``."""
    row = conn.execute(select(blocks).where(blocks.c.number == number)).mappings().first()
    return None if row is None else _block(row)


def list_transactions(
    conn: Connection,
    *,
    block_number: int | None = None,
    function: str | None = None,
    creator_msp: str | None = None,
    valid: bool | None = None,
    descending: bool = True,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[TransactionRow]:
    """One page of projected transactions (newest first by default), filtered by block,
    function, creator organization or validity.

    Raises:
        QueryError: a bad limit or cursor.
    """
    limit = check_limit(limit)
    t = transactions.c
    query = select(transactions)
    if block_number is not None:
        query = query.where(t.block_number == block_number)
    if function is not None:
        query = query.where(t.function == function)
    if creator_msp is not None:
        query = query.where(t.creator_msp == creator_msp)
    if valid is not None:
        query = query.where(t.validation_code == 0 if valid else t.validation_code != 0)
    keys = [t.block_number, t.tx_index]
    if cursor is not None:
        query = query.where(_after(keys, decode_cursor(cursor, [int, int]), descending))
    order = [k.desc() if descending else k.asc() for k in keys]
    rows = conn.execute(query.order_by(*order).limit(limit + 1)).mappings().all()
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last["block_number"], last["tx_index"]])
    return Page([_transaction(r) for r in rows[:limit]], next_cursor)


def get_transaction(conn: Connection, tx_id: str) -> TransactionRow | None:
    """The transaction ``tx_id`` (its VALID occurrence when a replay made it appear twice),
    or ``None``."""
    t = transactions.c
    query = (
        select(transactions)
        .where(t.tx_id == tx_id)
        .order_by((t.validation_code != 0).asc(), t.block_number, t.tx_index)
        .limit(1)
    )
    row = conn.execute(query).mappings().first()
    return None if row is None else _transaction(row)


def projected_height(conn: Connection) -> int:
    """How many blocks the read model holds (the next block number to project)."""
    value = conn.execute(select(func.max(blocks.c.number))).scalar()
    return 0 if value is None else int(value) + 1
