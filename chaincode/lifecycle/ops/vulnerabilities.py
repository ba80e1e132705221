"""RecordVulnerability and AssessVulnerability."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchledger.chaincode.lifecycle.authz import authorize
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
