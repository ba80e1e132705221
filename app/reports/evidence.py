"""Evidence bundles: what an auditor takes away and verifies offline.

A bundle (JSON, ``format`` :data:`FORMAT`) holds records' full histories from the read
model, the transactions that wrote them, the peer's blocks from genesis up to the last of
those transactions (raw protobuf, base64) and the trust roots (every organization's CA
certificates, the orderer MSPs). :func:`verify_bundle` needs nothing else: it checks the
blocks (hash chain from genesis, data hashes, orderer and creator signatures, endorsements,
with app.fabric's :func:`verify_chain`) against the bundle's trust roots, then that every
record version was written, with exactly that content, by a valid transaction in the block it
names. ``patchledger report verify-evidence BUNDLE`` runs it.

Trust: the trust roots travel in the bundle; an auditor compares their fingerprints (printed
by the verification) with the organizations' published CA certificates.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from sqlalchemy import Connection

from patchledger.app.errors import UserError
from patchledger.app.fabric import TrustAnchors, verify_chain
from patchledger.app.fabric._protos import common_pb2
from patchledger.app.readmodel import queries
from patchledger.app.readmodel.decode import decode_block

FORMAT = "patchledger-evidence/1"
#: Most blocks a bundle carries.
MAX_BLOCKS = 5000


class EvidenceError(UserError):
    """A bundle cannot be made or read (not a verification failure: those are reported)."""


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def build_bundle(conn: Connection, records: Sequence[tuple[str, str]], raw_blocks: Any,
                 anchors: TrustAnchors, *, organization: str, channel: str,
                 chaincode: str) -> dict[str, Any]:
    """The bundle of ``records`` (record type, record id).

    ``raw_blocks(start, stop)`` yields the peer's ``common.Block`` messages (app.web.ledger's
    ``Ledger.raw_blocks``).

    Raises:
        EvidenceError: a record has no version in the read model, or more than
            :data:`MAX_BLOCKS` blocks would be needed.
    """
    histories = []
    tx_ids: dict[str, None] = {}
    last_block = 0
    for record_type, record_id in records:
        versions = queries.record_history(conn, record_type, record_id)
        if not versions:
            raise EvidenceError(f"{record_type} {record_id!r} has no version in the read model")
        histories.append({"record_type": record_type, "record_id": record_id,
                          "versions": [dataclasses.asdict(v) for v in versions]})
        for v in versions:
            tx_ids[v.tx_id] = None
            last_block = max(last_block, v.block_number)
    if last_block + 1 > MAX_BLOCKS:
        raise EvidenceError(f"the records span {last_block + 1} blocks; a bundle carries at "
                            f"most {MAX_BLOCKS}")
    transactions = []
    for tx_id in tx_ids:
        tx = queries.get_transaction(conn, tx_id)
        if tx is not None:
            transactions.append({**dataclasses.asdict(tx), "valid": tx.valid})
    blocks = [base64.b64encode(b.SerializeToString()).decode()
              for b in raw_blocks(0, last_block)]
    return {
        "format": FORMAT, "organization": organization, "channel": channel,
        "chaincode": chaincode, "exported_at": datetime.now(UTC).isoformat(),
        "records": histories, "transactions": transactions, "blocks": blocks,
        "trust": {"msp_cas": {msp: [_pem(c) for c in certs]
                              for msp, certs in sorted(anchors.msp_cas.items())},
                  "orderer_msp_ids": sorted(anchors.orderer_msp_ids),
                  "min_orderer_signatures": anchors.min_orderer_signatures},
    }


@dataclass
class EvidenceReport:
    """What the offline verification found."""

    ok: bool = False
    blocks_checked: int = 0
    versions_checked: int = 0
    last_block_hash: str = ""
    trust_fingerprints: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _anchors(trust: Mapping[str, Any]) -> TrustAnchors:
    try:
        cas = {msp: [x509.load_pem_x509_certificate(p.encode()) for p in pems]
               for msp, pems in trust["msp_cas"].items()}
        return TrustAnchors(cas, frozenset(trust["orderer_msp_ids"]),
                            int(trust.get("min_orderer_signatures", 1)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise EvidenceError(f"the bundle's trust roots are malformed: {exc}") from exc


def load_bundle(text: bytes | str) -> dict[str, Any]:
    """Parse a bundle.

    Raises:
        EvidenceError: not JSON, or not a :data:`FORMAT` bundle.
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise EvidenceError(f"the bundle is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise EvidenceError(f"not a {FORMAT} bundle")
    return doc


def verify_bundle(doc: Mapping[str, Any]) -> EvidenceReport:
    """Verify a bundle offline (see the module docstring); problems are reported, not raised.

    Raises:
        EvidenceError: the bundle is malformed (trust roots, blocks not protobuf).
    """
    report = EvidenceReport()
    anchors = _anchors(doc.get("trust") or {})
    report.trust_fingerprints = {
        msp: [hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in certs]
        for msp, certs in anchors.msp_cas.items()}
    try:
        blocks = [common_pb2.Block.FromString(base64.b64decode(b, validate=True))
                  for b in doc["blocks"]]
    except (KeyError, TypeError, ValueError, DecodeError) as exc:
        raise EvidenceError(f"the bundle's blocks are malformed: {exc}") from exc
    chain = verify_chain(blocks, anchors)
    report.blocks_checked = chain.blocks_checked
    report.last_block_hash = chain.last_block_hash.hex()
    if chain.inconsistency is not None:
        found = chain.inconsistency
        report.problems.append(f"block {found.block_number}: {found.check}: {found.message}")
        return report
    written: dict[str, tuple[int, dict[tuple[str, str], bytes | None]]] = {}
    for block in blocks:
        decoded = decode_block(block, str(doc.get("chaincode", "patchledger")))
        for t in decoded.transactions:
            if t.tx.valid:
                written[t.tx.transaction_id] = (decoded.number, {
                    (w.record_type, w.record_id): w.value for w in t.writes})
    for record in doc.get("records") or []:
        _check_versions(record, written, report)
    report.ok = not report.problems
    return report


def _check_versions(record: Mapping[str, Any],
                    written: Mapping[str, tuple[int, Mapping[tuple[str, str], bytes | None]]],
                    report: EvidenceReport) -> None:
    key = (str(record.get("record_type")), str(record.get("record_id")))
    versions: Iterable[Mapping[str, Any]] = record.get("versions") or []
    for v in versions:
        report.versions_checked += 1
        where = f"{key[0]} {key[1]!r} version {v.get('version')}"
        found = written.get(str(v.get("tx_id")))
        if found is None:
            report.problems.append(f"{where}: transaction {v.get('tx_id')} is not a valid "
                                   "transaction of the bundle's blocks")
            continue
        number, writes = found
        if number != v.get("block_number"):
            report.problems.append(f"{where}: written in block {number}, not "
                                   f"{v.get('block_number')}")
        if key not in writes:
            report.problems.append(f"{where}: transaction {v.get('tx_id')} did not write it")
            continue
        value = writes[key]
        on_ledger = None if value is None else json.loads(value)
        if on_ledger != v.get("record"):
            report.problems.append(f"{where}: the content differs from what transaction "
                                   f"{v.get('tx_id')} wrote")
