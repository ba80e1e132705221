"""The queries: any record by id, records by type and status (paginated), any record's history,
and a patch's approval bundle.

Record ids are the ids of the ``patchledger`` event's changes: the record's key parts joined
by ``/`` (``P-1``, ``P-1/SecOpsMSP`` for an Approval, ``R-1/h1`` for a Deployment,
``SecOpsMSP/serial/1f`` for a RevokedIdentity). An id of an n-part key (two: Approval,
Deployment, RiskAcceptance; three: RevokedIdentity) is split at its first n - 1 ``/``.

History: every version of a record carries ``updated_by``, the MSP id of the creator of the
transaction that wrote it (stamped by the core from the transaction's validated creator), and
``updated_at``, that transaction's timestamp. :func:`GetHistory` returns, per version, the
transaction id and time the peer's history database holds, plus ``creator_msp`` read from
that version's ``updated_by``; so the history of any record names the organization behind each
step without reading blocks (auditors can cross-check the blocks' creators with
``patchledger ledger verify``).
"""

from __future__ import annotations

from typing import Any

from patchledger.chaincode.lifecycle import LifecycleError, NotFoundError, ValidationError
from patchledger.chaincode.lifecycle.queries import approval_bundle, get_record, record_class
from patchledger.chaincode.lifecycle.record import Record
from patchledger.chaincode.patchledger.bridge import composite_key, key_of
from patchledger.chaincode.patchledger.execution import LedgerContext, read, refusal
from patchledger.chaincode.runtime import KeyModification

__all__ = ["EVALUATE", "MAX_PAGE_SIZE", "MAX_SCAN", "key_parts"]

#: Largest page ListRecords returns.
MAX_PAGE_SIZE = 200
#: Most entries one ListRecords call examines when filtering by status; when reached, the page
#: is returned short with a bookmark to continue from.
MAX_SCAN = 5000


def key_parts(record_type: str, record_id: str) -> tuple[str, ...]:
    """The key parts of ``record_id`` for ``record_type`` (see the module docstring).

    Raises:
        ValidationError: unknown record type, or an id without the parts the type needs.
    """
    n = len(record_class(record_type).KEY_FIELDS)
    if n == 1:
        return (record_id,)
    parts = tuple(record_id.split("/", n - 1))
    if len(parts) != n or not all(parts):
        count = {2: "two", 3: "three"}.get(n, str(n))
        shape = "/".join("abc"[:n])
        raise ValidationError("record_id", f"a {record_type} id has {count} parts, {shape!r}")
    return parts


async def GetRecord(ctx: LedgerContext, record_type: str, record_id: str) -> dict[str, Any]:
    """Any record by type and id (404 when absent)."""

    def query(store: Any) -> dict[str, Any]:
        return get_record(store, record_type, *key_parts(record_type, record_id)).to_dict()

    return await read(ctx, query)


async def GetApprovalBundle(ctx: LedgerContext, patch_id: str) -> dict[str, Any]:
    """The patch record and every signed statement on it with its signer's certificate: what
    an agent verifies offline before applying the patch."""
    return await read(ctx, lambda store: approval_bundle(store, patch_id))


async def ListRecords(
    ctx: LedgerContext, record_type: str, status: str, page_size: int, bookmark: str
) -> dict[str, Any]:
    """One page of the records of ``record_type`` in key order, only those in ``status``
    (``""``: all), and the bookmark of the next page (``""`` when there is none).

    A page holds at most ``page_size`` records; it may hold fewer while the bookmark is not
    empty, when the status filter examined :data:`MAX_SCAN` entries. A stored value that is
    not a valid record (written by an older version before a rule it breaks) never fails the
    listing: unfiltered, it is listed as ``{"record_id", "unreadable": <why>}``; filtered by
    status, it is skipped.
    """
    try:
        cls = record_class(record_type)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValidationError("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
    except LifecycleError as exc:
        raise refusal(exc) from exc
    records: list[dict[str, Any]] = []
    scanned = 0
    next_bookmark = bookmark
    while True:
        wanted = page_size - len(records)
        page = await ctx.stub.get_state_by_partial_composite_key_with_pagination(
            record_type, [], wanted, next_bookmark
        )
        for kv in page.items:
            scanned += 1
            try:
                record = cls.from_json(kv.value)
            except LifecycleError as exc:
                if not status:
                    records.append({"record_id": str(key_of(kv.key)), "unreadable": str(exc)})
                continue
            if not status or record.state == status:
                records.append(record.to_dict())
        exhausted = len(page.items) < wanted or page.bookmark in ("", next_bookmark)
        next_bookmark = "" if exhausted else page.bookmark
        if exhausted or len(records) >= page_size or scanned >= MAX_SCAN:
            break
    return {"records": records, "bookmark": next_bookmark, "scanned": scanned}


async def GetHistory(ctx: LedgerContext, record_type: str, record_id: str) -> list[dict[str, Any]]:
    """Every committed version of a record, oldest first: ``tx_id``, ``timestamp`` (seconds),
    ``time`` (ISO 8601), ``creator_msp``, ``state`` and the ``record``; 404 when it never
    existed."""
    try:
        cls = record_class(record_type)
        key = composite_key(cls.key_for(*key_parts(record_type, record_id)))
    except LifecycleError as exc:
        raise refusal(exc) from exc
    entries: list[dict[str, Any]] = []
    async with await ctx.stub.get_history_for_key(key) as history:
        async for modification in history:
            entries.append(_history_entry(cls, modification))
    if not entries:
        raise refusal(NotFoundError(record_type, record_id))
    entries.reverse()  # the peer returns the newest first
    return entries


def _history_entry(cls: type[Record], mod: KeyModification) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "tx_id": mod.tx_id,
        "timestamp": int(mod.timestamp.timestamp()) if mod.timestamp else 0,
        "time": mod.timestamp.isoformat() if mod.timestamp else "",
        "is_delete": mod.is_delete,
        "creator_msp": "",
        "state": "",
        "record": None,
    }
    if not mod.is_delete and mod.value:
        try:
            record = cls.from_json(mod.value)
        except LifecycleError as exc:  # an old version breaking a later rule: shown, not fatal
            entry["unreadable"] = str(exc)
            return entry
        entry.update(creator_msp=record.updated_by, state=record.state, record=record.to_dict())
    return entry


#: Every query function, registered read-only by :mod:`chaincode.patchledger.contract`.
EVALUATE = (GetRecord, ListRecords, GetHistory, GetApprovalBundle)
