"""Signed deployment reports: what the agent tells the ledger, in the exact form
``ReportDeployments`` takes (a list of ``{"report": {...}, "signature": "..."}``).

The report is the core's :class:`~chaincode.lifecycle.host_report.HostReport`, signed over its
canonical JSON with the host's enrollment key (ECDSA P-256/SHA-256, low S) by the core's
:func:`~chaincode.lifecycle.signatures.sign`, so the chaincode's ``verify_report`` checks the
very bytes the agent signed. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.chaincode.lifecycle.host_report import HostReport, SignedReport
from patchledger.chaincode.lifecycle.signatures import sign

__all__ = ["ReportContext", "signed_report"]

#: Longest ``detail`` the agent puts in a report.
MAX_DETAIL = 1000


@dataclass(frozen=True)
class ReportContext:
    """Who reports about which deployment."""

    host_id: str
    rollout_id: str
    patch_id: str


def signed_report(
    key: ec.EllipticCurvePrivateKey,
    context: ReportContext,
    *,
    outcome: str,
    sequence: int,
    inventory_sha256: str,
    reported_at: int,
    detail: str = "",
) -> dict[str, Any]:
    """A signed report, as one element of ``ReportDeployments``' argument.

    Raises:
        ValidationError: a field the core refuses (unknown outcome, sequence below 1, ...).
    """
    report = HostReport(
        host_id=context.host_id,
        rollout_id=context.rollout_id,
        patch_id=context.patch_id,
        outcome=outcome,
        sequence=sequence,
        inventory_sha256=inventory_sha256,
        reported_at=reported_at,
        detail=detail[:MAX_DETAIL],
    )
    return SignedReport.create(report, sign(key, report.to_json())).to_dict()
