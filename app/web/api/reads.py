"""Read endpoints served from the read model (app.readmodel, fed only by committed blocks),
the audit views (history, blocks, transactions, ledger verification against the peer), the
read-model lag, the feeds' imports and the artifact store.

Lists page with an opaque ``cursor`` (keyset paging of app.readmodel.queries) and filter on any
indexed field of the record type (``?state=OPEN&severity=critical``); details carry the
version's ETag and answer 304 to a matching ``If-None-Match``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from typing import Any

from flask import Response, current_app, request
from sqlalchemy import desc, select

from patchledger.app.artifacts import (
    ArtifactError,
    ArtifactNotFound,
    ArtifactTooLarge,
    FilesystemStore,
    InvalidDigest,
    RangeNotSatisfiable,
    parse_range_header,
)
from patchledger.app.db import for_writes
from patchledger.app.fabric import FabricError, TrustAnchors, verify_chain
from patchledger.app.feeds.errors import InventoryError as FeedInventoryError
from patchledger.app.feeds.inventory import parse_dpkg, parse_rpm, parse_sbom
from patchledger.app.ingest import candidates as cand
from patchledger.app.ingest.inventories import InventoryError, store_inventory
from patchledger.app.ingest.pipeline import (
    IngestionSettings,
    acquire_lease,
    default_holder,
    release_lease,
)
from patchledger.app.ingest.tables import feed_imports
from patchledger.app.readmodel import queries
from patchledger.app.readmodel.projector import lag
from patchledger.app.readmodel.tables import SPECS
from patchledger.app.ui import data
from patchledger.app.web.api import schemas as s
from patchledger.app.web.api.routes import _actor, _doc, _etagged, _record_id, _submit, api
from patchledger.app.web.errors import RequestError
from patchledger.app.web.factory import current_user, state
from patchledger.app.web.ingestion import ingest_once
from patchledger.app.web.ledger import LedgerError
from patchledger.app.web.rbac import requires

#: URL segment -> record type of the read model.
RESOURCES = {
    "vulnerabilities": "Vulnerability",
    "patches": "Patch",
    "approvals": "Approval",
    "policies": "Policy",
    "policy-changes": "PolicyChange",
    "hosts": "Host",
    "rollouts": "Rollout",
    "deployments": "Deployment",
    "exceptions": "RiskAcceptance",
    "revocations": "Revocation",
}
_PAGING = {"limit", "cursor", "sort", "descending"}
#: Most blocks one verification request reads from the peer.
MAX_VERIFY_BLOCKS = 2000


def _query_error(exc: queries.QueryError) -> RequestError:
    return RequestError(str(exc), status=400, field=exc.field)


def _row(row: queries.RecordRow) -> dict[str, Any]:
    return {"record_type": row.record_type, "record_id": row.record_id, "state": row.state,
            "record": row.record, "updated_at": row.updated_at, "updated_by": row.updated_by,
            "versions": row.versions, "tx_id": row.tx_id, "block_number": row.block_number,
            "tx_time": row.tx_time}


def _projected() -> int:
    with state().engine.connect() as conn:
        return queries.projected_height(conn)


def list_records(record_type: str, query: dict[str, Any]) -> Response:
    """One page of ``record_type`` from the read model; extra query arguments are filters.

    The page is answered as JSON directly: its rows have the shape of ``RecordPageOut``
    already, which documents it, and marshmallow's field-by-field dump of up to 500 rows
    cost more than the query (about half of a 500-row page's server time).

    Raises:
        RequestError: a bad filter, sort field or cursor (400, naming it).
    """
    filters = {k: v for k, v in request.args.items() if k not in _PAGING and v != ""}
    try:
        with state().engine.connect() as conn:
            page = queries.list_records(conn, record_type, filters=filters, sort=query["sort"],
                                        descending=query["descending"], limit=query["limit"],
                                        cursor=query["cursor"] or None)
    except queries.QueryError as exc:
        raise _query_error(exc) from exc
    body = current_app.json.dumps(
        {"items": [_row(r) for r in page.items], "next_cursor": page.next_cursor or ""},
        separators=(",", ":"))
    return Response(body + "\n", mimetype="application/json")


def get_record(record_type: str, record_id: str) -> Response | dict[str, Any]:
    """One record of the read model with its version's ETag.

    Raises:
        RequestError: not in the read model (404, naming the record and the projected height).
    """
    with state().engine.connect() as conn:
        row = queries.get_record(conn, record_type, record_id)
        height = queries.projected_height(conn)
    if row is None:
        raise RequestError(f"{record_type} {record_id!r} is not in the read model (blocks 0 to "
                        f"{height - 1} projected)", status=404, field="record_id")
    return _etagged(_row(row), tag=row.etag.strip('"'))


def _make_reads(path: str, record_type: str) -> None:
    def list_view(query: dict[str, Any]) -> Response:
        return list_records(record_type, query)

    def detail_view(record_id: str) -> Response | dict[str, Any]:
        return get_record(record_type, record_id)

    list_view.__name__ = f"list_{path.replace('-', '_')}"
    detail_view.__name__ = f"get_{path.replace('-', '_')}"
    fields = ", ".join(queries.record_types()[record_type])
    api.get(f"/{path}")(api.input(s.ListQuery, location="query", arg_name="query")(
        api.output(s.RecordPageOut)(api.doc(
            summary=f"{record_type} records from the read model, a page at a time",
            description=f"Filters: any of {fields} as a query argument.",
            **_doc(400, 401))(requires("records.read")(list_view)))))
    # a record of a type with a key of several parts has an id with slashes
    # (``ro-1/host-7``): its detail route takes the rest of the path
    converter = "path:" if len(SPECS[record_type].key_parts) > 1 else ""
    api.get(f"/{path}/<{converter}record_id>")(api.output(s.RecordDetailOut)(api.doc(
        summary=f"One {record_type} record (ETag)", **_doc(401, 404))(
        requires("records.read")(detail_view))))


for _path, _type in RESOURCES.items():
    _make_reads(_path, _type)


@api.get("/vulnerabilities/<vuln_id>/findings")
@api.input(s.CursorQuery, location="query", arg_name="query")
@api.output(s.PageOut)
@api.doc(summary="The organization's hosts affected by a vulnerability (off-ledger findings "
                 "of the last feed import), highest priority first, with the explained "
                 "priority and the remediation deadline", **_doc(400, 401))
@requires("records.read")
def vulnerability_findings(vuln_id: str, query: dict[str, Any]) -> dict[str, Any]:
    cursor = query["cursor"]
    if cursor and not cursor.isdigit():
        raise RequestError("cursor must come from a previous page", status=400, field="cursor")
    with state().engine.connect() as conn:
        rows = data.finding_rows(conn, vuln_id, limit=query["limit"] + 1,
                                 offset=int(cursor[:9] or 0))
    more = len(rows) > query["limit"]
    items = []
    for row in rows[:query["limit"]]:
        doc = dict(row)
        doc["priority"] = json.loads(doc.pop("priority_json") or "{}")
        for key in ("first_seen", "last_seen"):
            doc[key] = doc[key].isoformat() if hasattr(doc[key], "isoformat") else doc[key]
        items.append(doc)
    offset = int(cursor or 0) + len(items)
    return {"items": items, "next_cursor": str(offset) if more else ""}


@api.get("/rollouts/<rollout_id>/progress")
@api.output(s.ProgressOut)
@api.doc(summary="A rollout's deployments counted per wave and state", **_doc(401, 404))
@requires("records.read")
def rollout_progress(rollout_id: str) -> Response | dict[str, Any]:
    with state().engine.connect() as conn:
        rollout = queries.get_record(conn, "Rollout", rollout_id)
        if rollout is None:
            raise RequestError(f"Rollout {rollout_id!r} is not in the read model", status=404,
                               field="rollout_id")
        progress = data.wave_progress(conn, rollout)
    return _etagged({"rollout_id": rollout_id, "state": rollout.state,
                     "current_wave": rollout.record.get("current_wave"),
                     "waves": [{"wave": p.wave, "deployments": p.states} for p in progress
                               if p.states]})


# ---------------------------------------------------------------------------- patch candidates


def candidate_page(vuln_id: str | None, *, status: str | None = "PENDING",
                   limit: int = queries.MAX_LIMIT, cursor: str = "") -> queries.Page[
                       cand.Candidate]:
    """One page of patch candidates (app.ingest.candidates), by id; ``vuln_id``: those whose
    most severe vulnerability it is; ``status=None``: every status. The API's and the UI's
    one path.

    Raises:
        RequestError: the vulnerability is not in the read model (404, field ``vuln_id``); a
            bad status, limit or cursor (400, naming it).
    """
    try:
        with state().engine.connect() as conn:
            if vuln_id is not None and queries.get_record(conn, "Vulnerability",
                                                          vuln_id) is None:
                raise RequestError(f"Vulnerability {vuln_id!r} is not in the read model "
                                   f"(blocks 0 to {queries.projected_height(conn) - 1} "
                                   "projected)", status=404, field="vuln_id")
            return cand.list_candidates(conn, status=status, vuln_id=vuln_id, limit=limit,
                                        cursor=cursor or None)
    except queries.QueryError as exc:
        raise _query_error(exc) from exc


def find_candidate(candidate_id: str) -> cand.Candidate:
    """The patch candidate ``candidate_id``.

    Raises:
        RequestError: no such candidate (404, field ``candidate_id``).
    """
    with state().engine.connect() as conn:
        candidate = cand.get_candidate(conn, candidate_id)
    if candidate is None:
        raise RequestError(f"patch candidate {candidate_id!r} does not exist", status=404,
                           field="candidate_id")
    return candidate


def pending_candidate(candidate_id: str) -> cand.Candidate:
    """The patch candidate ``candidate_id`` while it is still PENDING.

    Raises:
        RequestError: no such candidate (404) or decided already (409, naming its status and
            patch), field ``candidate_id``.
    """
    candidate = find_candidate(candidate_id)
    if candidate.status != "PENDING":
        raise RequestError(f"patch candidate {candidate_id} is {candidate.status}"
                           f"{' as ' + candidate.patch_id if candidate.patch_id else ''}",
                           status=409, field="candidate_id")
    return candidate


def dismiss_candidate(candidate_id: str) -> cand.Candidate:
    """Dismiss a pending patch candidate as the caller (nothing on the ledger).

    Raises:
        RequestError: no such candidate (404) or decided already, also by a concurrent
            request (409), field ``candidate_id``.
    """
    pending_candidate(candidate_id)
    try:
        with state().engine.begin() as conn:
            return cand.decide_candidate(conn, candidate_id, "DISMISSED",
                                         by=current_user().username)
    except cand.CandidateError as exc:
        raise RequestError(str(exc), status=409, field="candidate_id") from exc


def propose_from_candidate(candidate_id: str, *, patch_id: str, vendor: str, title: str,
                           artifact_sha256: str, artifact_uri: str = "") -> tuple[
                               Any, cand.Candidate]:
    """Propose a patch for a pending candidate (``ProposePatch`` as the caller, built by
    app.ingest.candidates.proposal_argument: what it fixes and targets come from the
    candidate) with an artifact already in this app's store, then mark the candidate
    CONFIRMED with the patch id. The API's and the UI's one path. Returns the submit result
    and the decided candidate.

    Raises:
        RequestError: no such candidate (404) or decided already (409), field
            ``candidate_id``; a bad patch id (400); the artifact is not in the store (404,
            field ``artifact_sha256``).
        LedgerError: the ledger refused (e.g. the patch id is taken: 409) or is down.
    """
    candidate = pending_candidate(candidate_id)
    patch_id = _record_id(patch_id, "patch_id")
    try:
        size = store().stat(artifact_sha256).size
    except ArtifactNotFound as exc:
        raise RequestError(f"artifact {artifact_sha256} is not in "
                           f"{state().config.organization}'s artifact store: upload it "
                           "first (POST /api/v1/artifacts)", status=404,
                           field="artifact_sha256") from exc
    except ArtifactError as exc:
        raise RequestError(str(exc), status=400, field="artifact_sha256") from exc
    uri = artifact_uri or f"/api/v1/artifacts/{artifact_sha256}"
    argument = cand.proposal_argument(candidate, patch_id=patch_id,
                                      artifact_sha256=artifact_sha256, artifact_size=size,
                                      artifact_uri=uri[:2048], vendor=vendor, title=title)
    result = _submit("ProposePatch", argument)["result"]
    try:
        with state().engine.begin() as conn:
            decided = cand.decide_candidate(conn, candidate_id, "CONFIRMED",
                                            by=current_user().username, patch_id=patch_id)
    except cand.CandidateError as exc:  # decided concurrently; the patch stands proposed
        raise RequestError(f"patch {patch_id} was proposed, but {exc}", status=409,
                           field="candidate_id") from exc
    return result, decided


def _candidate_out(candidate: cand.Candidate) -> dict[str, Any]:
    return dataclasses.asdict(candidate)


def _candidates_out(page: queries.Page[cand.Candidate]) -> Response | dict[str, Any]:
    return _etagged({"items": [_candidate_out(c) for c in page.items],
                     "next_cursor": page.next_cursor or ""})


_CANDIDATES = ("Patch candidates: an advisory's fixed version matched against this "
               "organization's inventories by the feed import, for a patch proposer to "
               "confirm (propose as a patch) or dismiss; off the ledger, in the app's database")


@api.get("/patch-candidates")
@api.input(s.CandidatesQuery, location="query", arg_name="query")
@api.output(s.CandidatePageOut)
@api.doc(summary="Patch candidates prepared by ingestion, by id, a page at a time (ETag)",
         description=_CANDIDATES, **_doc(400, 401, 403, 404))
@requires("patch.propose")
def list_patch_candidates(query: dict[str, Any]) -> Response | dict[str, Any]:
    status = None if query["status"] == "ANY" else query["status"]
    return _candidates_out(candidate_page(query.get("vuln_id"), status=status,
                                          limit=query["limit"], cursor=query["cursor"]))


@api.get("/vulnerabilities/<vuln_id>/patch-candidates")
@api.input(s.CandidateQuery, location="query", arg_name="query")
@api.output(s.CandidatePageOut)
@api.doc(summary="A vulnerability's patch candidates (pending by default), a page at a time "
                 "(ETag)", description=_CANDIDATES, **_doc(400, 401, 403, 404))
@requires("patch.propose")
def vulnerability_patch_candidates(vuln_id: str,
                                   query: dict[str, Any]) -> Response | dict[str, Any]:
    status = None if query["status"] == "ANY" else query["status"]
    return _candidates_out(candidate_page(vuln_id, status=status, limit=query["limit"],
                                          cursor=query["cursor"]))


@api.get("/patch-candidates/<candidate_id>")
@api.output(s.CandidateDetailOut)
@api.doc(summary="One patch candidate (ETag)", description=_CANDIDATES,
         **_doc(401, 403, 404))
@requires("patch.propose")
def get_patch_candidate(candidate_id: str) -> Response | dict[str, Any]:
    return _etagged(_candidate_out(find_candidate(candidate_id)))


@api.post("/patch-candidates/<candidate_id>/propose")
@api.input(s.CandidateProposalIn, arg_name="body")
@api.output(s.CandidateProposalOut, status_code=201)
@api.doc(summary="Propose a patch for a pending candidate with an artifact uploaded to this "
                 "app (POST /artifacts) before; the candidate becomes CONFIRMED with the "
                 "patch id", description=_CANDIDATES, **_doc(400, 401, 403, 404, 409, 503))
@requires("patch.propose")
def propose_patch_candidate(candidate_id: str, body: dict[str, Any]) -> dict[str, Any]:
    result, decided = propose_from_candidate(
        candidate_id, patch_id=body["patch_id"], vendor=body["vendor"], title=body["title"],
        artifact_sha256=body["artifact_sha256"], artifact_uri=body["artifact_uri"])
    return {"result": result, "candidate": _candidate_out(decided)}


@api.post("/patch-candidates/<candidate_id>/dismiss")
@api.output(s.CandidateDetailOut)
@api.doc(summary="Dismiss a pending patch candidate (no patch will be proposed from it)",
         description=_CANDIDATES, **_doc(401, 403, 404, 409))
@requires("patch.propose")
def dismiss_patch_candidate(candidate_id: str) -> dict[str, Any]:
    return _candidate_out(dismiss_candidate(candidate_id))


# ---------------------------------------------------------------------------- audit


@api.get("/audit/history/<record_type>/<path:record_id>")
@api.output(s.HistoryOut)
@api.doc(summary="Every version of a record: transaction, block, time, organization and "
                 "certificate subject of its writer", **_doc(400, 401, 403, 404))
@requires("audit.read")
def record_history(record_type: str, record_id: str) -> Response | dict[str, Any]:
    if record_type not in queries.record_types():
        raise RequestError(f"record_type {record_type!r} is not one of "
                        f"{', '.join(queries.record_types())}", status=400, field="record_type")
    with state().engine.connect() as conn:
        versions = queries.record_history(conn, record_type, record_id)
    if not versions:
        raise RequestError(f"{record_type} {record_id!r} has no version in the read model",
                        status=404, field="record_id")
    return _etagged({"items": [dataclasses.asdict(v) for v in versions]})


def _block_out(block: queries.BlockRow) -> dict[str, Any]:
    return dataclasses.asdict(block)


def _tx_out(tx: queries.TransactionRow) -> dict[str, Any]:
    return {**dataclasses.asdict(tx), "valid": tx.valid}


@api.get("/audit/blocks")
@api.input(s.CursorQuery, location="query", arg_name="query")
@api.output(s.PageOut)
@api.doc(summary="Projected blocks, newest first", **_doc(400, 401, 403))
@requires("audit.read")
def list_blocks(query: dict[str, Any]) -> dict[str, Any]:
    try:
        with state().engine.connect() as conn:
            page = queries.list_blocks(conn, limit=query["limit"],
                                       cursor=query["cursor"] or None)
    except queries.QueryError as exc:
        raise _query_error(exc) from exc
    return {"items": [_block_out(b) for b in page.items], "next_cursor": page.next_cursor or ""}


@api.get("/audit/blocks/<int:number>")
@api.output(s.BlockOut)
@api.doc(summary="One block and its transactions", **_doc(401, 403, 404))
@requires("audit.read")
def get_block(number: int) -> Response | dict[str, Any]:
    with state().engine.connect() as conn:
        block = queries.get_block(conn, number) if number < 2**62 else None
        if block is None:
            raise RequestError(f"block {number} is not in the read model (blocks 0 to "
                            f"{queries.projected_height(conn) - 1} projected)", status=404,
                            field="number")
        txs = queries.list_transactions(conn, block_number=number, descending=False,
                                        limit=queries.MAX_LIMIT)
    return _etagged({"block": _block_out(block), "transactions": [_tx_out(t) for t in txs.items]})


@api.get("/audit/transactions")
@api.input(s.TransactionQuery, location="query", arg_name="query")
@api.output(s.PageOut)
@api.doc(summary="Projected transactions, newest first (filters: function, creator_msp, "
                 "valid, block_number)", **_doc(400, 401, 403))
@requires("audit.read")
def list_transactions(query: dict[str, Any]) -> dict[str, Any]:
    try:
        with state().engine.connect() as conn:
            page = queries.list_transactions(
                conn, block_number=query.get("block_number"), function=query.get("function"),
                creator_msp=query.get("creator_msp"), valid=query.get("valid"),
                limit=query["limit"], cursor=query["cursor"] or None)
    except queries.QueryError as exc:
        raise _query_error(exc) from exc
    return {"items": [_tx_out(t) for t in page.items], "next_cursor": page.next_cursor or ""}


@api.get("/audit/transactions/<tx_id>")
@api.output(s.TransactionOut)
@api.doc(summary="One transaction and the record versions it wrote", **_doc(401, 403, 404))
@requires("audit.read")
def get_transaction(tx_id: str) -> Response | dict[str, Any]:
    with state().engine.connect() as conn:
        tx = queries.get_transaction(conn, tx_id)
        writes = queries.transaction_writes(conn, tx_id) if tx else []
    if tx is None:
        raise RequestError(f"transaction {tx_id!r} is not in the read model", status=404,
                        field="tx_id")
    return _etagged({"transaction": _tx_out(tx),
                     "writes": [dataclasses.asdict(w) for w in writes]})


@api.post("/audit/verify")
@api.input(s.VerifyIn, arg_name="body")
@api.output(s.VerifyOut)
@api.doc(summary="Verify the peer's blocks (hash chain, data hashes, orderer and creator "
                 "signatures, endorsements) against the organizations' CAs",
         **_doc(400, 401, 403, 503))
@requires("audit.read")
def verify_ledger(body: dict[str, Any]) -> dict[str, Any]:
    st = state()
    config = st.config
    if not config.trust_msp_dirs or not config.orderer_msp_ids:
        raise LedgerError(503, f"{config.organization}'s app has no trust anchors configured "
                          "(trust, orderer_msp): ledger verification is unavailable")
    height = st.ledger.height()
    start = body["start"]
    stop = min(height - 1, start + MAX_VERIFY_BLOCKS - 1) if body["stop"] is None \
        else body["stop"]
    if start >= height or stop < start or stop >= height:
        raise RequestError(f"blocks {start} to {stop} are not all on the ledger (height {height})",
                        status=400, field="stop" if start < height else "start")
    if stop - start + 1 > MAX_VERIFY_BLOCKS:
        raise RequestError(f"at most {MAX_VERIFY_BLOCKS} blocks per request", status=400,
                        field="stop")
    try:
        anchors = TrustAnchors.from_msp_dirs(dict(config.trust_msp_dirs),
                                             config.orderer_msp_ids)
    except FabricError as exc:
        raise LedgerError(503, f"the trust anchors cannot be loaded: {exc}") from exc
    previous: bytes | None = None
    if start > 0:
        from patchledger.app.fabric.blockhash import block_header_hash

        (before,) = list(st.ledger.raw_blocks(start - 1, start - 1))
        previous = block_header_hash(before.header)
    report = verify_chain(st.ledger.raw_blocks(start, stop), anchors, previous_hash=previous,
                          expected_number=start)
    found = report.inconsistency
    return {"ok": report.ok, "start": start, "stop": stop, "height": height,
            "blocks_checked": report.blocks_checked,
            "transactions_checked": report.transactions_checked,
            "last_block_hash": report.last_block_hash.hex(),
            "inconsistency": None if found is None else {
                "block_number": found.block_number, "check": found.check,
                "message": found.message}}


# ---------------------------------------------------------------------------- status, feeds


@api.get("/readmodel/status")
@api.output(s.LagOut)
@api.doc(summary="How many blocks the read model is behind the peer (peer_height is null "
                 "when the peer cannot be asked)", **_doc(401))
@requires("records.read")
def readmodel_status() -> dict[str, Any]:
    st = state()
    try:
        height: int | None = st.ledger.height()
    except LedgerError:
        height = None
    current = lag(st.engine, height)
    if current.behind is not None:
        st.metrics.readmodel_lag.set(current.behind)
    return dataclasses.asdict(current)


def _import_out(row: Any) -> dict[str, Any]:
    doc = dict(row)
    doc["sources"] = json.loads(doc.pop("sources_json") or "[]")
    doc["errors"] = json.loads(doc.pop("errors_json") or "[]")
    for key in ("started_at", "finished_at"):
        doc[key] = doc[key].isoformat() if hasattr(doc[key], "isoformat") else str(doc[key])
    return doc


@api.get("/feeds")
@api.output(s.FeedsOut)
@api.doc(summary="The configured feed sources and the last import", **_doc(401, 403))
@requires("feeds.read")
def feeds() -> dict[str, Any]:
    with state().engine.connect() as conn:
        last = conn.execute(select(feed_imports).order_by(desc(feed_imports.c.id)).limit(1)
                            ).mappings().first()
    return {"sources": list(state().config.feed_sources),
            "last_import": _import_out(last) if last else None}


@api.get("/feeds/imports")
@api.input(s.CursorQuery, location="query", arg_name="query")
@api.output(s.PageOut)
@api.doc(summary="Feed imports, newest first, with their errors", **_doc(400, 401, 403))
@requires("feeds.read")
def feed_import_list(query: dict[str, Any]) -> dict[str, Any]:
    cursor = query["cursor"]
    if cursor and not cursor.isdigit():
        raise RequestError("cursor must come from a previous page", status=400, field="cursor")
    stmt = select(feed_imports).order_by(desc(feed_imports.c.id)).limit(query["limit"] + 1)
    if cursor:
        stmt = stmt.where(feed_imports.c.id < int(cursor[:18]))
    with state().engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    more = len(rows) > query["limit"]
    rows = rows[:query["limit"]]
    return {"items": [_import_out(r) for r in rows],
            "next_cursor": str(rows[-1]["id"]) if more else ""}


@api.post("/feeds/import")
@api.output(s.ImportOut)
@api.doc(summary="Import the configured feeds now: match the organization's inventories and "
                 "record new or changed vulnerabilities on the ledger as the calling feed "
                 "user (importing the same feeds again writes nothing)",
         **_doc(401, 403, 409, 503))
@requires("feeds.import")
def import_feeds() -> dict[str, Any]:
    st = state()
    if not st.config.feed_sources:
        raise RequestError(f"{st.config.organization}'s app has no feed sources configured "
                        "(feeds)", status=409, field="feeds")
    settings = IngestionSettings(sources=st.config.feed_sources)
    actor = _actor()
    # the scheduler lease: never two imports at once (another request, a scheduler loop)
    holder = f"{default_holder()}:api:{threading.get_ident()}"
    if not acquire_lease(st.engine, holder, ttl=600):
        raise RequestError("a feed import is running already or the scheduler runs (the "
                           "scheduler lease is held); try again later", status=409,
                           field="feeds")
    try:
        report = ingest_once(st, actor, settings)
    finally:
        release_lease(st.engine, holder)
    return {"report": dataclasses.asdict(report)}


@api.put("/hosts/<host_id>/packages")
@api.input(s.PackagesIn, arg_name="body")
@api.output(s.StoredInventoryOut)
@api.doc(summary="Store a host's full package inventory off the ledger (dpkg or rpm query "
                 "text, or an SBOM); feed imports match it", **_doc(400, 401, 403))
@requires("host.manage")
def put_packages(host_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return store_packages(host_id, body)


def store_packages(host_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Parse and store a host's inventory (``format`` dpkg|rpm|sbom, ``content``,
    ``release``, ``criticality``) off the ledger.

    Raises:
        RequestError: content that does not parse (400, field ``content``).
    """
    content = body["content"]
    try:
        if body["format"] == "sbom":
            if not isinstance(content, dict):
                raise RequestError("an SBOM must be a JSON object", status=400, field="content")
            inventory = parse_sbom(content, host=host_id, origin="api")
        elif not isinstance(content, str):
            raise RequestError(f"{body['format']} content must be the query's text", status=400,
                            field="content")
        elif body["format"] == "dpkg":
            inventory = parse_dpkg(content, host=host_id, release=body["release"])
        else:
            inventory = parse_rpm(content, host=host_id, distro=body["release"])
        with for_writes(state().engine).begin() as conn:
            stored = store_inventory(conn, dataclasses.replace(
                inventory, criticality=body["criticality"]), origin=f"api:{body['format']}")
    except (FeedInventoryError, InventoryError) as exc:
        raise RequestError(str(exc), status=400, field="content") from exc
    return {"host_id": stored.host_id, "inventory_sha256": stored.inventory_sha256,
            "package_count": stored.package_count, "criticality": stored.criticality}


# ---------------------------------------------------------------------------- artifacts


def store() -> FilesystemStore:
    """The app's content-addressed artifact store."""
    config = state().config
    return FilesystemStore(config.artifact_dir, max_size=config.max_upload_bytes)


def _artifact_error(exc: ArtifactError) -> RequestError:
    if isinstance(exc, ArtifactNotFound):
        return RequestError(str(exc), status=404, field="sha256")
    if isinstance(exc, ArtifactTooLarge):
        return RequestError(str(exc), status=413, field="body")
    if isinstance(exc, RangeNotSatisfiable):
        return RequestError(str(exc), status=416, field="Range")
    if isinstance(exc, InvalidDigest):
        return RequestError(str(exc), status=400, field="sha256")
    return RequestError(str(exc), status=400, field="body")


@api.post("/artifacts")
@api.output(s.ArtifactOut, status_code=201)
@api.doc(summary="Upload an artifact (the raw request body, streamed; optional "
                 "X-Artifact-SHA256 and Content-Length are checked)",
         **_doc(400, 401, 403))
@requires("artifact.upload")
def upload_artifact() -> dict[str, Any]:
    expected = request.headers.get("X-Artifact-SHA256") or None
    if expected is not None and not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise RequestError("X-Artifact-SHA256 must be 64 lower-case hex digits", status=400,
                        field="X-Artifact-SHA256")
    try:
        stored = store().put(request.stream, expected_sha256=expected,
                              expected_size=request.content_length)
    except ArtifactError as exc:
        raise _artifact_error(exc) from exc
    return {"sha256": stored.sha256, "size": stored.size, "created": stored.created}


@api.get("/artifacts/<sha256>")
@api.doc(summary="Download an artifact (Range requests: 206, 416)",
         responses={200: {"description": "the artifact's bytes",
                          "content": {"application/octet-stream": {}}},
                    206: {"description": "the requested range",
                          "content": {"application/octet-stream": {}}},
                    **_doc(400, 401, 404)["responses"]})
@requires("records.read")
def download_artifact(sha256: str) -> Response:
    return artifact_response(sha256)


def artifact_response(sha256: str) -> Response:
    """The stored artifact ``sha256``, whole (200) or the request's ``Range`` (206).

    Raises:
        RequestError: unknown (404), malformed digest (400), unsatisfiable range (416).
    """
    artifacts = store()
    try:
        size = artifacts.stat(sha256).size
        header = request.headers.get("Range")
        byte_range = parse_range_header(header, size) if header else None
        chunks = artifacts.read(sha256, byte_range)
    except ArtifactError as exc:
        raise _artifact_error(exc) from exc
    response = Response(chunks, mimetype="application/octet-stream",
                        status=206 if byte_range else 200, direct_passthrough=True)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Content-Length"] = str(byte_range.length if byte_range else size)
    response.set_etag(sha256)
    if byte_range:
        response.headers["Content-Range"] = byte_range.content_range(size)
    return response
