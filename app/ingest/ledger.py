"""From feed data to ledger transactions: the ``RecordVulnerability`` argument of a merged
vulnerability, the ``RecordVulnerabilities`` calls that record many in one transaction, and
the writer that submits batches of transactions through the Gateway client.

The writer pipelines a batch: every proposal is built first (so its transaction id is known
and can be recorded before anything is sent), then endorsed and submitted by a few worker
threads, and the commits are awaited together, so one batch shares a few blocks instead of
costing a block cut each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from patchledger.app.fabric.contract import Contract
from patchledger.app.fabric.errors import FabricError
from patchledger.app.feeds.merge import Vulnerability as FeedVulnerability
from patchledger.app.feeds.priority import best_cvss, severity_class
from patchledger.chaincode.lifecycle.errors import LifecycleError
from patchledger.chaincode.lifecycle.vulnerability import Vulnerability

_ID = re.compile(r"^[\x21-\x2e\x30-\x7e]{1,256}$")  # the contract's identifier rule


@dataclass(frozen=True)
class Call:
    """One transaction to submit: the function, its string arguments, and the record it is
    about (for the submission log)."""

    function: str
    arguments: tuple[str, ...]
    record_type: str
    record_id: str


@dataclass(frozen=True)
class Outcome:
    """What happened to one submitted call: ``status`` is ``COMMITTED`` (valid),
    ``INVALID`` (committed with a validation failure), ``REFUSED`` (endorsement refused, e.g.
    by the chaincode) or ``FAILED`` (not known to be ordered: submit or commit-status error);
    ``detail`` says why."""

    call: Call
    transaction_id: str
    status: str
    detail: str = ""
    block_number: int | None = None
    #: the chaincode function's endorsed return value (JSON), when the writer has it
    result: bytes = b""


class LedgerWriter(Protocol):
    """Submits batches of calls (implemented over the Gateway client; tests may use the
    real network or an in-process fake peer)."""

    def submit_batch(
        self, calls: Sequence[Call], before_send: Callable[[list[tuple[str, Call]]], None]
    ) -> list[Outcome]:
        """Build every call's proposal, pass ``(tx_id, call)`` of all of them to
        ``before_send`` (which records them durably), then submit and wait for commits.
        Never raises for one call's failure: it is in that call's outcome."""
        ...


class GatewayLedgerWriter:
    """A :class:`LedgerWriter` over a :class:`patchledger.app.fabric.Contract`.

    Args:
        contract: the chaincode contract, on a gateway of the identity that may submit (a
            ``feed`` identity for ``RecordVulnerability``, an ``operator`` for
            ``UpdateInventoryDigest``).
        workers: proposals endorsed and submitted at once.
        commit_timeout: seconds to wait for each commit status.
    """

    def __init__(self, contract: Contract, *, workers: int = 8,
                 commit_timeout: float = 60.0) -> None:
        self._contract = contract
        self._workers = max(1, workers)
        self._commit_timeout = commit_timeout

    def submit_batch(
        self, calls: Sequence[Call], before_send: Callable[[list[tuple[str, Call]]], None]
    ) -> list[Outcome]:
        """See :meth:`LedgerWriter.submit_batch`."""
        proposals = [(self._contract.new_proposal(c.function, list(c.arguments)), c)
                     for c in calls]
        before_send([(p.transaction_id, c) for p, c in proposals])
        with ThreadPoolExecutor(self._workers) as pool:
            return list(pool.map(lambda pc: self._one(*pc), proposals))

    def _one(self, proposal: Any, call: Call) -> Outcome:
        tx_id = proposal.transaction_id
        try:
            transaction = proposal.endorse()
        except FabricError as exc:
            return Outcome(call, tx_id, "REFUSED", str(exc))
        try:
            submitted = transaction.submit()
            status = submitted.get_status(timeout=self._commit_timeout)
        except FabricError as exc:
            return Outcome(call, tx_id, "FAILED", str(exc))
        if status.successful:
            return Outcome(call, tx_id, "COMMITTED", "", status.block_number,
                           transaction.result)
        return Outcome(call, tx_id, "INVALID", status.code_name, status.block_number)


def ledger_id(value: str) -> bool:
    """True when ``value`` is a valid ledger identifier."""
    return bool(_ID.match(value))


def ledger_severity(vuln: FeedVulnerability, unscored: str = "medium") -> str:
    """The ledger severity class of a merged vulnerability: ``critical`` when CISA KEV lists
    it (known exploited), else the CVSS class of its best base score, else ``unscored``."""
    if vuln.kev is not None:
        return "critical"
    best = best_cvss(vuln)
    cls = severity_class(best[0] if best else None)
    return unscored if cls == "none" else cls


def vulnerability_argument(
    vuln: FeedVulnerability, *, unscored: str = "medium"
) -> dict[str, Any] | None:
    """The ``RecordVulnerability`` argument of a merged vulnerability (aliases and sources
    sorted, as the contract's merge keeps them, so re-recording is recognised as no change),
    or ``None`` when its id cannot be a ledger id."""
    if not ledger_id(vuln.id):
        return None
    best = best_cvss(vuln)
    kev = vuln.kev
    sources = sorted({(a.source.source, a.id) for a in vuln.advisories
                      if ledger_id(a.source.source) and a.id})
    data: dict[str, Any] = {
        "vuln_id": vuln.id,
        "severity": ledger_severity(vuln, unscored),
        "title": vuln.summary.strip()[:1024],
        "cvss_score": f"{best[0]:.1f}" if best else "",
        "aliases": sorted({a for a in vuln.aliases if ledger_id(a)}),
        "known_exploited": kev is not None,
        "kev_due_date": kev.due_date.isoformat() if kev else "",
        "sources": [{"name": n, "reference": r[:4096]} for n, r in sources],
    }
    return data


def record_of(data: dict[str, Any]) -> Vulnerability | None:
    """The lifecycle core's view of a ``RecordVulnerability`` argument (``None`` when the
    core would refuse it)."""
    try:
        return Vulnerability.from_dict({**data, "status": "OPEN"})
    except LifecycleError:
        return None


def call_of(data: dict[str, Any]) -> Call:
    """The ``RecordVulnerability`` call of an argument."""
    return Call("RecordVulnerability", (json.dumps(data, sort_keys=True),), "Vulnerability",
                data["vuln_id"])


def batch_call_of(batch: Sequence[dict[str, Any]]) -> Call:
    """The ``RecordVulnerabilities`` call of up to 200 arguments (one transaction); its
    ``record_id`` names the first and last for the submission log."""
    ids = [d["vuln_id"] for d in batch]
    return Call("RecordVulnerabilities", (json.dumps(list(batch), sort_keys=True),),
                "Vulnerability", f"{len(ids)}:{ids[0]}..{ids[-1]}")


def vulnerability_calls(arguments: Sequence[dict[str, Any]], per_transaction: int) -> list[Call]:
    """The calls that record ``arguments``: ``RecordVulnerabilities`` of ``per_transaction``
    each (the last one shorter), or one ``RecordVulnerability`` each when
    ``per_transaction`` is 1 (a chaincode without the batch function)."""
    if per_transaction <= 1:
        return [call_of(d) for d in arguments]
    return [batch_call_of(arguments[i:i + per_transaction])
            for i in range(0, len(arguments), per_transaction)]


def call_payloads(function: str, payload_json: str) -> list[dict[str, Any]]:
    """The vulnerability arguments a logged call carries (``payload_json`` as the
    submission log holds it): one for ``RecordVulnerability``, the list of a
    ``RecordVulnerabilities`` batch; none for other functions or unreadable text."""
    try:
        payload = json.loads(payload_json)
    except ValueError:
        return []
    if function == "RecordVulnerabilities" and isinstance(payload, list):
        return [d for d in payload if isinstance(d, dict)]
    if function == "RecordVulnerability" and isinstance(payload, dict):
        return [payload]
    return []
