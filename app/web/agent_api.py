"""The org app's side of the agent protocol (docs/agent.md, "The protocol between the agent
and its organization's app"), under ``/api/v1/agent``.

- ``GET /enrollment-bundle`` and ``POST /enroll`` (permission :data:`PUBLIC`): the channel
  organizations' roots with the peers' ``AttestChannelRoots`` attestation; the one-time token
  + CSR exchanged for a certificate issued by the organization's CA (``role=host``,
  ``host_id``), the host recorded with ``EnrollHost``.
- every other endpoint (permission :data:`HOST`): authenticated by the host's certificate,
  which the TLS-terminating proxy in front of the app verified in the mutual-TLS handshake and
  passes in the header ``AppConfig.agent_cert_header``; the app checks it again (directly
  issued by its organization's root, valid now, ``role=host``, a ``host_id``). A host acts only
  as itself: its id comes from the certificate, never from the request.

Every request carries ``X-Patchledger-Nonce`` (32 hex digits, refused when seen within
:data:`NONCE_WINDOW` seconds: 409 ``replay``; remembered in the app database, so by every
app process and across restarts: :mod:`patchledger.app.web.agent_store`) and
``X-Patchledger-Time`` (within :data:`MAX_SKEW` s: 400 ``clock``); every answer echoes the
nonce. Reports are stored once per (host, sequence): a resent batch is acknowledged again and
not stored twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from apiflask import APIBlueprint
from cryptography import x509
from cryptography.x509.oid import NameOID
from flask import Response, current_app, g, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from patchledger.app.artifacts.store import ArtifactError
from patchledger.app.db import for_writes
from patchledger.app.dispatch.board import Board, BoardError
from patchledger.app.dispatch.relay import AgentRelay, ArtifactDirectory
from patchledger.app.fabric import FabricError
from patchledger.app.fabric.attest import attest_channel_roots
from patchledger.app.web import agent_store, auth
from patchledger.app.web.agent_store import claim_nonce
from patchledger.app.web.api import reads, routes
from patchledger.app.web.config import AppConfig
from patchledger.app.web.db import User
from patchledger.app.web.errors import RequestError
from patchledger.app.web.factory import refuse_undecodable_json, state
from patchledger.app.web.ledger import LedgerError
from patchledger.app.web.rbac import HOST, PUBLIC, requires
from patchledger.chaincode.lifecycle.errors import LifecycleError
from patchledger.chaincode.lifecycle.identity import certificate_attributes
from patchledger.chaincode.lifecycle.trust import OrgTrust

log = logging.getLogger("patchledger.app.web.agent")

api = APIBlueprint("agent", __name__, url_prefix="/api/v1/agent", tag="Agent")

#: Seconds a nonce is remembered; a request time further than MAX_SKEW away is refused, so
#: a nonce older than the window cannot come back either.
NONCE_WINDOW = 600
MAX_SKEW = 300
#: Largest agent request body (an inventory or SBOM is the largest; the app-wide cap is the
#: artifact upload's, 512 MiB by default, far too much JSON to decode for one agent request).
MAX_BODY = 32 * 1024 * 1024
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_HOST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


_BOARDS = "patchledger.agent.boards"
_BOARDS_LOCK = threading.Lock()


def _board(directory: Path) -> Board:
    """The app's one :class:`Board` of ``directory``: it remembers every host's last poll
    (``seen.json`` is rewritten from that memory at most once a second) and the parsed
    orders. A board per request (as before) rewrote, and fsynced, ``seen.json`` on every
    poll with only the polling host in it, so the dispatcher saw one host online at a time."""
    from flask import current_app

    with _BOARDS_LOCK:
        boards: dict[Path, Board] = current_app.extensions.setdefault(_BOARDS, {})
        board = boards.get(directory)
        if board is None:
            board = boards[directory] = Board(directory)
        return board


def _protocol_error(status: int, code: str, message: str, field: str) -> RequestError:
    return RequestError(f"{code}: {message}", status=status, field=field)


@api.before_request
def _protocol() -> None:
    """Nonce and time (every agent request), then the host certificate (HOST endpoints)."""
    nonce = request.headers.get("X-Patchledger-Nonce", "")
    if not _NONCE.match(nonce):
        raise _protocol_error(400, "nonce", "X-Patchledger-Nonce must be 32 lower-case hex "
                              "digits", "X-Patchledger-Nonce")
    g.agent_nonce = nonce
    try:
        sent = int(request.headers.get("X-Patchledger-Time", ""))
    except ValueError:
        raise _protocol_error(400, "clock", "X-Patchledger-Time must be seconds since the "
                              "epoch", "X-Patchledger-Time") from None
    now = time.time()
    # integer arithmetic: a time of hundreds of digits made ``now - sent`` (a float) raise
    # OverflowError, a 500 (found by tests/reliability/test_agent_protocol_fuzzing.py)
    if abs(int(now) - sent) > MAX_SKEW:
        raise _protocol_error(400, "clock", f"request time off by more than {MAX_SKEW} s",
                              "X-Patchledger-Time")
    with for_writes(state().engine).begin() as conn:  # shared by every app process
        fresh = claim_nonce(conn, nonce, now=now, window=NONCE_WINDOW)
    if not fresh:
        log.warning("agent request replayed", extra={"nonce": nonce, "path": request.path,
                                                     "source": request.remote_addr})
        raise _protocol_error(409, "replay", f"nonce {nonce} was already used",
                              "X-Patchledger-Nonce")
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "_permission", None) == HOST:
        config = state().config
        g.host_id = host_of_certificate(config, request.headers.get(
            config.agent_cert_header, "") if config.agent_cert_header else "")
    if (request.content_length or 0) > MAX_BODY:
        raise RequestError(f"an agent request body is at most {MAX_BODY} bytes, not "
                           f"{request.content_length}", status=413, field="body")
    refuse_undecodable_json()


@api.after_request
def _echo(response: Response) -> Response:
    nonce = g.get("agent_nonce")
    if nonce:
        response.headers["X-Patchledger-Nonce"] = nonce
    return response


def peer_organizations(config: AppConfig) -> list[str]:
    """The channel's organizations with peers: ``trust_msp_dirs`` but the orderers'."""
    return [m for m, _ in config.trust_msp_dirs if m not in config.orderer_msp_ids]


def org_roots(config: AppConfig) -> dict[str, list[str]]:
    """Every peer organization's root certificates (PEM) from ``trust_msp_dirs``
    (``<msp dir>/cacerts/*.pem``); the orderers' are not the agents' business."""
    roots: dict[str, list[str]] = {}
    for msp_id, directory in config.trust_msp_dirs:
        if msp_id in config.orderer_msp_ids:
            continue
        pems = [p.read_text() for p in sorted((directory / "cacerts").glob("*.pem"))]
        if pems:
            roots[msp_id] = pems
    return roots


_TRUST_CACHE: dict[tuple[tuple[str, Path], ...], tuple[tuple[object, ...], OrgTrust]] = {}
_TRUST_LOCK = threading.Lock()


def _host_trust(config: AppConfig) -> OrgTrust:
    """The organizations' roots as an :class:`OrgTrust`, read and parsed again only when a
    ``cacerts`` file changed (name, size or modification time): every agent request checks a
    host certificate against them, and reading and parsing the PEM files each time cost
    about a millisecond per request (bench/bench_agent_poll.py)."""
    stamp: list[object] = []
    for msp_id, directory in config.trust_msp_dirs:
        for pem in sorted((directory / "cacerts").glob("*.pem")):
            try:
                st = pem.stat()
            except OSError:
                continue
            stamp.append((msp_id, str(pem), st.st_size, st.st_mtime_ns))
    key = config.trust_msp_dirs
    with _TRUST_LOCK:
        cached = _TRUST_CACHE.get(key)
        if cached is not None and cached[0] == tuple(stamp):
            return cached[1]
    trust = OrgTrust.from_pem({m: "".join(p) for m, p in org_roots(config).items()})
    with _TRUST_LOCK:
        _TRUST_CACHE[key] = (tuple(stamp), trust)
    return trust


def host_of_certificate(config: AppConfig, raw: str) -> str:
    """The host id of the client certificate the proxy passed (``raw``: the header's value,
    URL-encoded PEM), after checking it.

    Raises:
        RequestError: no header configured (503), none sent or not a certificate (401), not
            issued by this organization's root, not valid now, or not a host's (403).
    """
    if not config.agent_cert_header:
        raise RequestError("this app takes no host certificates: configure "
                           "agent_cert_header behind a TLS-terminating proxy (docs/agent.md)",
                           status=503, field="agent_cert_header")
    if not raw:
        raise RequestError("a host certificate is needed (mutual TLS)", status=401,
                           field=config.agent_cert_header)
    try:
        cert = x509.load_pem_x509_certificate(unquote(raw).encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise RequestError(f"the client certificate is not a PEM certificate: {exc}",
                           status=401, field=config.agent_cert_header) from exc
    trust = _host_trust(config)
    try:
        trust.check_issued(cert, config.msp_id, now=int(time.time()),
                           argument=config.agent_cert_header, what="host certificate")
    except LifecycleError as exc:
        raise RequestError(f"host certificate refused: {exc}", status=403,
                           field=config.agent_cert_header) from exc
    attrs = certificate_attributes(cert)
    host_id = attrs.get("host_id", "")
    if attrs.get("role") != "host" or not _HOST_ID.match(host_id):
        raise RequestError(f"the certificate is not a host's (role={attrs.get('role')!r}, "
                           f"host_id={host_id!r})", status=403,
                           field=config.agent_cert_header)
    return host_id


def _relay() -> AgentRelay:
    st = state()
    if st.config.dispatch_dir is None:
        raise RequestError("no dispatcher board is configured for this app "
                           "(dispatch_dir): assignments and reports are unavailable",
                           status=503, field="dispatch_dir")
    try:
        contract = st.ledger.network().get_contract(st.config.chaincode)
    except LedgerError:
        contract = None  # poll/report need no peer; attest raises below
    # One relay per request (its attestation batcher would batch nothing and only add its
    # linger, so each agent's request is its own AttestDeployment here; a process-wide
    # batcher for the web workers is not built; docs/dispatch.md), over the app's one board.
    return AgentRelay(_board(st.config.dispatch_dir), contract,  # type: ignore[arg-type]
                      ArtifactDirectory(st.config.artifact_dir),
                      peer_organizations(st.config), attest_linger=0.0, attest_batch=1)


def _json(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc, sort_keys=True), status=status,
                    mimetype="application/json")


def _body() -> dict[str, Any]:
    doc = request.get_json(silent=True)
    if not isinstance(doc, dict):
        raise RequestError("the request body must be a JSON object", status=400, field="body")
    return doc


def _string(doc: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None
            ) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value or (pattern and not pattern.match(value)):
        raise RequestError(f"{name} is missing or malformed", status=400, field=name)
    return value


# ---------------------------------------------------------------------------- enrollment


@api.get("/enrollment-bundle")
@api.doc(summary="The channel organizations' roots and their peers' AttestChannelRoots(nonce)",
         responses={200: "{msp_id, roots, attestation}", 400: "bad nonce"})
@requires(PUBLIC)
def enrollment_bundle() -> Response:
    st = state()
    nonce = request.args.get("nonce", "")
    if not _HEX64.match(nonce):
        raise RequestError("nonce must be 64 lower-case hex digits", status=400, field="nonce")
    attestation = None
    try:
        contract = st.ledger.network().get_contract(st.config.chaincode)
        attestation = attest_channel_roots(
            contract, nonce, endorsing_organizations=peer_organizations(st.config))
    except (LedgerError, FabricError, ValueError) as exc:
        log.warning("no AttestChannelRoots for an enrollment bundle: %s", exc,
                    extra={"error": str(exc)})
    return _json({"msp_id": st.config.msp_id, "roots": org_roots(st.config),
                  "attestation": attestation})


@api.post("/enroll")
@api.doc(summary="A host's one-time token and CSR for a certificate of the organization's CA "
                 "(role=host, host_id); the host is recorded with EnrollHost",
         responses={200: "{host_id, msp_id, certificate_pem, poll_interval}",
                    400: "bad input", 401: "token refused", 403: "token of another host",
                    409: "token used concurrently", 503: "CA or peer unavailable"})
@requires(PUBLIC)
def enroll() -> Response:
    st = state()
    doc = _body()
    token_secret = _string(doc, "token")
    host_id = _string(doc, "host_id", _HOST_ID)
    csr_text = _string(doc, "csr_pem")
    db = st.db()
    try:
        token = auth.check_enrollment_token(db, token_secret)
    except RequestError:
        log.warning("agent enrollment refused", extra={"host_id": host_id,
                                                       "source": request.remote_addr})
        raise
    if token.host_id != host_id:
        log.warning("agent enrollment for another host", extra={
            "host_id": host_id, "token_host": token.host_id, "source": request.remote_addr})
        raise RequestError(f"the token is for host {token.host_id!r}, not {host_id!r}",
                           status=403, field="host_id")
    try:
        csr = x509.load_pem_x509_csr(csr_text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise RequestError(f"csr_pem is not a PEM CSR: {exc}", status=400,
                           field="csr_pem") from exc
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not csr.is_signature_valid or not names or names[0].value != host_id:
        raise RequestError("csr_pem must be signed by its key and have CN = host_id",
                           status=400, field="csr_pem")
    auth.mark_enrollment_token_used(db, token, host_id)  # atomic: a second redeemer gets 409
    cert_pem = st.ledger.enroll_host_csr(host_id, csr_text.encode("ascii"))
    creator = db.scalar(select(User).where(User.username == token.created_by))
    if creator is None or creator.disabled:
        raise RequestError(f"the token's creator {token.created_by!r} is gone or disabled: "
                           "EnrollHost cannot be recorded", status=409, field="token")
    st.ledger.submit(routes.actor_of(creator), "EnrollHost",
                     {"host_id": host_id, "cert_pem": cert_pem.decode(), "groups": []})
    log.info("host enrolled", extra={"host_id": host_id, "by": token.created_by})
    return _json({"host_id": host_id, "msp_id": st.config.msp_id,
                  "certificate_pem": cert_pem.decode(),
                  "poll_interval": st.config.agent_poll_interval})


# ---------------------------------------------------------------------------- host endpoints


def _desired(host_id: str) -> dict[str, Any]:
    relay = _relay()
    try:
        order = relay.poll(host_id)
    except BoardError as exc:
        raise RequestError(f"the dispatcher's orders are unreadable: {exc}", status=503,
                           field="dispatch_dir") from exc
    assignments = []
    if order is not None and order.action == "apply":
        try:
            size = reads.store().stat(order.artifact_sha256).size
        except ArtifactError:
            size = 0  # not in the store: the agent's download is refused (404), logged there
        assignments.append({"rollout_id": order.rollout_id, "patch_id": order.patch_id,
                            "artifact": {"sha256": order.artifact_sha256, "size": size}})
    return {"assignments": assignments}


def _etag(desired: Mapping[str, Any]) -> str:
    body = json.dumps(desired, sort_keys=True, separators=(",", ":")).encode()
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@api.get("/poll")
@api.doc(summary="Anything for me? The desired state's ETag and the poll interval")
@requires(HOST)
def poll() -> Response:
    desired = _desired(g.host_id)
    return _json({"etag": _etag(desired), "poll_interval": state().config.agent_poll_interval,
                  "inventory_wanted": False})


@api.get("/desired-state")
@api.doc(summary="The host's assignments (304 with If-None-Match of the same ETag)")
@requires(HOST)
def desired_state() -> Response:
    desired = _desired(g.host_id)
    etag = _etag(desired)
    if request.headers.get("If-None-Match") == etag:
        response = Response(status=304)
    else:
        response = _json(desired)
    response.headers["ETag"] = etag
    return response


@api.get("/artifacts/<sha256>")
@api.doc(summary="An artifact of the app's store (Range: 206, 416)")
@requires(HOST)
def artifact(sha256: str) -> Response:
    return reads.artifact_response(sha256)


@api.post("/attestations/deployment")
@api.doc(summary="AttestDeployment(host_id of the certificate, rollout_id, nonce), endorsed "
                 "by the organizations' peers")
@requires(HOST)
def attest() -> Response:
    doc = _body()
    rollout_id = _string(doc, "rollout_id")
    nonce = _string(doc, "nonce", _HEX64)
    relay = _relay()
    if relay.contract is None:
        raise RequestError("no peer is configured: attestations are unavailable",
                           status=503, field="peer")
    try:
        return _json(dict(relay.attest(g.host_id, rollout_id, nonce)))
    except (FabricError, ValueError) as exc:
        raise RequestError(f"the peers did not attest: {exc}", status=502,
                           field="rollout_id") from exc


@api.post("/reports")
@api.doc(summary="Signed deployment reports, stored durably for the dispatcher, once per "
         "(host, sequence)",
         responses={200: "{acknowledged: [sequence, ...]}; a report received before is "
                         "acknowledged again and not stored twice",
                    409: "a sequence received before with another report"})
@requires(HOST)
def reports() -> Response:
    doc = _body()
    batch = doc.get("reports")
    if not isinstance(batch, list):
        raise RequestError("reports must be a list", status=400, field="reports")
    sequences = []
    for index, item in enumerate(batch):
        report = item.get("report") if isinstance(item, dict) else None
        if (not isinstance(report, dict) or not isinstance(item.get("signature"), str)
                or not isinstance(report.get("sequence"), int)):
            raise RequestError(f"reports[{index}] must be {{report: {{..., sequence}}, "
                               "signature}", status=400, field=f"reports[{index}]")
        if report.get("host_id") != g.host_id:
            log.warning("report for another host", extra={
                "host_id": g.host_id, "claimed": report.get("host_id")})
            raise RequestError(f"reports[{index}] is for host {report.get('host_id')!r}, "
                               f"not {g.host_id!r}", status=403, field=f"reports[{index}]")
        sequences.append(report["sequence"])
    _store_once(g.host_id, batch)
    return _json({"acknowledged": sequences})


def _store_once(host_id: str, batch: list[dict[str, Any]]) -> None:
    """The reports of ``batch`` not received before, into the dispatcher's inbox, and their
    receipts, in one database transaction: the inbox file is written before the commit, so a
    failed write records nothing (the agent resends); a failed commit after it may store a
    resend twice, which the ledger refuses as a replay (host sequence). Another process storing
    the same resend at the same moment makes the insert fail: the second try leaves it out.

    Raises:
        RequestError: 409 when a sequence was received before with another report.
        OSError: the inbox cannot be written.
    """
    for attempt in (1, 2):
        try:
            with for_writes(state().engine).begin() as conn:  # read, then write
                fresh = agent_store.new_reports(conn, host_id, batch)
                agent_store.record_receipts(conn, host_id, fresh)
                _relay().report(fresh)
            if len(fresh) < len(batch):
                log.info("reports received again", extra={
                    "host_id": host_id, "stored": len(fresh), "received": len(batch)})
            return
        except agent_store.ReportConflictError as exc:
            log.warning("report sequence reused", extra={"host_id": host_id})
            raise RequestError(str(exc), status=409, field="reports") from exc
        except IntegrityError:
            if attempt == 2:
                raise


@api.put("/inventory")
@api.doc(summary="The host's package inventory (stored off the ledger)")
@requires(HOST)
def inventory() -> Response:
    doc = _body()
    sha = _string(doc, "sha256", _HEX64)
    fmt = _string(doc, "format")
    formats = {"dpkg-query": "dpkg", "rpm": "rpm", "cyclonedx": "sbom", "spdx": "sbom"}
    if fmt not in formats:
        raise RequestError(f"format {fmt!r} is not one of {', '.join(formats)}", status=400,
                           field="format")
    content = doc.get("content")
    if formats[fmt] == "sbom" and isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError as exc:
            raise RequestError(f"an SBOM must be JSON: {exc}", status=400,
                               field="content") from exc
    reads.store_packages(g.host_id, {"format": formats[fmt], "content": content,
                                     "release": doc.get("release") or None,
                                     "criticality": "medium"})
    return _json({"sha256": sha})


def register(app: Any) -> None:
    """Mount the agent API on ``app``."""
    app.register_blueprint(api)
