"""RecordVulnerability, RecordVulnerabilities (a bounded batch) and AssessVulnerability."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from patchledger.chaincode.lifecycle.authz import authorize
from patchledger.chaincode.lifecycle.errors import LifecycleError, ValidationError
from patchledger.chaincode.lifecycle.fields import choice
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger
from patchledger.chaincode.lifecycle.vulnerability import (
    MACHINE,
    Vulnerability,
    merge,
    same_content,
)

ASSESSABLE = ("OPEN", "MITIGATED", "NOT_AFFECTED")


def record_vulnerability(tx: TxLedger, data: Mapping[str, Any]) -> list[Change]:
    """Create the vulnerability or merge a feed's view into it (idempotent).

    The incoming ``status`` is ignored: feeds report facts, not decisions. Re-recording data
    that is already known writes nothing and returns no change.

    Raises:
        AuthorizationError: the caller is not a feed.
        ValidationError: malformed vulnerability data.
    """
    authorize(tx.caller, "record_vulnerability")
    incoming = Vulnerability.from_dict({**data, "status": "OPEN"})
    current = tx.find(Vulnerability, incoming.vuln_id)
    if current is None:
        tx.save(incoming)
        return tx.changes
    merged = merge(current, incoming)
    if not same_content(merged, current):
        tx.save(merged)
    return tx.changes


#: The most vulnerabilities one RecordVulnerabilities transaction takes.
MAX_BATCH = 200


@dataclass(frozen=True)
class RecordResult:
    """The outcome of one vulnerability of a batch: ``recorded`` when accepted (``changed``
    when that wrote a new version; an already known one writes nothing), else the refusal's
    ``error_type`` and ``error``."""

    index: int
    vuln_id: str
    recorded: bool
    changed: bool = False
    error_type: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this result."""
        return {"index": self.index, "vuln_id": self.vuln_id, "recorded": self.recorded,
                "changed": self.changed, "error_type": self.error_type, "error": self.error}


@dataclass
class RecordBatchResult:
    """Changes of the transaction and one result per vulnerability, in batch order."""

    changes: list[Change] = field(default_factory=list)
    results: list[RecordResult] = field(default_factory=list)

    @property
    def recorded(self) -> int:
        """How many vulnerabilities were accepted."""
        return sum(1 for r in self.results if r.recorded)

    @property
    def changed(self) -> int:
        """How many of them wrote a new version."""
        return sum(1 for r in self.results if r.changed)


def record_vulnerabilities(tx: TxLedger, items: Sequence[Any]) -> RecordBatchResult:
    """Record a batch of vulnerabilities, each exactly as :func:`record_vulnerability` would
    (same validation, same merge, idempotent), in batch order (a later entry of the same id
    merges into the earlier one).

    Like ReportDeployments the batch is not all-or-nothing: an entry that is refused
    (malformed) changes nothing and is listed with its reason, the others are recorded.

    Raises:
        AuthorizationError: the caller is not a feed (nothing is recorded).
        ValidationError: ``items`` is not a list, or holds 0 or more than :data:`MAX_BATCH`
            entries (nothing is recorded).
    """
    authorize(tx.caller, "record_vulnerability")
    if not isinstance(items, list | tuple):
        raise ValidationError("vulnerabilities", "must be a list")
    if not 1 <= len(items) <= MAX_BATCH:
        raise ValidationError("vulnerabilities", f"must hold 1 to {MAX_BATCH} vulnerabilities")
    result = RecordBatchResult()
    for index, raw in enumerate(items):
        vuln_id = raw.get("vuln_id") if isinstance(raw, Mapping) else None
        vuln_id = vuln_id if isinstance(vuln_id, str) else ""
        before = len(tx.changes)
        try:
            if not isinstance(raw, Mapping):
                raise ValidationError(f"vulnerabilities[{index}]", "must be an object")
            record_vulnerability(tx, raw)
        except LifecycleError as exc:
            result.results.append(
                RecordResult(index, vuln_id, False, False, type(exc).__name__, str(exc)))
            continue
        result.results.append(RecordResult(index, vuln_id, True, len(tx.changes) > before))
    result.changes = tx.changes
    return result


def assess_vulnerability(tx: TxLedger, vuln_id: str, status: str) -> list[Change]:
    """Record an assessment: MITIGATED, NOT_AFFECTED, or back to OPEN.

    RISK_ACCEPTED is reached only through a granted risk acceptance.

    Raises:
        AuthorizationError: the caller is not a feed or operator.
        ValidationError: ``status`` is not assessable.
        NotFoundError: unknown vulnerability.
        TransitionError: the move is not allowed from the current status.
    """
    authorize(tx.caller, "assess_vulnerability")
    choice("status", status, ASSESSABLE)
    current = tx.load(Vulnerability, vuln_id)
    # an assessment must change the status (the table's self-loops are feed merges)
    MACHINE.check_from(vuln_id, current.status, status, allowed_from=MACHINE.states - {status})
    tx.save(current.evolve(status=status))
    return tx.changes
