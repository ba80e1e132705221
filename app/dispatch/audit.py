"""Auditing a rollout's deployment statuses against the hosts' signatures.

Deployment records carry no key-level endorsement policy (the chaincode's MAJORITY policy
governs them; docs/security.md, "Host reports"), so a colluding majority of organizations could
commit a status no host reported. Every reported status keeps the host's signature over its
report, and :func:`audit_rollout` checks each deployment of a rollout with
:mod:`patchledger.chaincode.lifecycle.deployment_proof` against the host's certificate (its Host
record) and the rollout's waves (the Rollout record), both of which keep the owner's peer AND a
majority as key-level policy. With ``history`` it also checks every version of each deployment
(``GetHistory``: statuses only move forward, with increasing sequences) and accepts the
certificates the host had over time.

    patchledger dispatch audit --org itops --rollout R-1 [--history]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from patchledger.app.dispatch.ledger import LedgerPort
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.deployment_proof import check_deployment, check_history
from patchledger.chaincode.lifecycle.errors import LifecycleError
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.rollout import Rollout

__all__ = ["AuditReport", "audit_rollout"]


@dataclass
class AuditReport:
    """What :func:`audit_rollout` found: ``problems`` empty means every status is genuine."""

    rollout_id: str
    deployments: int = 0
    versions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the report."""
        return {"rollout_id": self.rollout_id, "ok": self.ok, "deployments": self.deployments,
                "versions": self.versions, "problems": list(self.problems)}


def _parse(cls: Callable[..., Any], data: Any, what: str, problems: list[str]) -> Any:
    try:
        return cls(data)
    except (LifecycleError, TypeError, AttributeError) as exc:
        problems.append(f"{what} is not a valid record: {exc}")
        return None


def audit_rollout(ledger: LedgerPort, rollout_id: str, *, history: bool = False) -> AuditReport:
    """Check every deployment of ``rollout_id`` (rules in the module docstring).

    A forged or unreadable record is a problem in the report, not an error.

    Raises:
        GatewayError: the rollout does not exist (404) or the ledger could not be read.
    """
    report = AuditReport(rollout_id)
    rollout = Rollout.from_dict(ledger.evaluate("GetRecord", "Rollout", rollout_id))
    for data in ledger.records("Deployment"):
        if data.get("rollout_id") != rollout_id:
            continue
        key = f"{rollout_id}/{data.get('host_id')}"
        deployment = _parse(Deployment.from_dict, data, f"deployment {key}", report.problems)
        if deployment is None:
            continue
        report.deployments += 1
        host = Host.from_dict(ledger.evaluate("GetRecord", "Host", deployment.host_id))
        if not history:
            report.problems += check_deployment(deployment, host, rollout)
            continue
        certs = [v["record"]["cert_pem"] for v in
                 ledger.evaluate("GetHistory", "Host", host.host_id) if v.get("record")]
        entries = ledger.evaluate("GetHistory", "Deployment", key)
        versions = []
        for index, entry in enumerate(entries):
            if entry.get("is_delete") or entry.get("record") is None:
                report.problems.append(f"version {index + 1}: deployment {key} was deleted "
                                       f"or is unreadable ({entry.get('unreadable', '')})")
                continue
            version = _parse(Deployment.from_dict, entry["record"],
                             f"version {index + 1} of deployment {key}", report.problems)
            if version is not None:
                versions.append(version)
        report.versions += len(versions)
        report.problems += check_deployment(deployment, host, rollout, host_certs=certs)
        report.problems += check_history(versions, host, rollout, host_certs=certs)
    return report
