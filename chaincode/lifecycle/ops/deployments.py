"""ReportDeployments: batches of signed host reports.

A batch is NOT all-or-nothing. Each report is checked on its own (shape, the relaying caller,
the host's registered certificate, replay counter, deployment state machine) and either
accepted, with its writes, or refused, with the reason in its :class:`ReportResult`. The
transaction succeeds as long as the batch itself is well formed, so one forged, replayed or
late report cannot hide or block the outcome of hundreds of honest ones; refused reports are
listed in the result for the relay to log and alert on. A report's writes happen only after all
of its checks passed, so a refused report changes nothing.

A report is accepted only while its rollout takes reports: RUNNING or PAUSED (hosts keep
reporting the wave they are in while it is paused); once the rollout is HALTED or ROLLED_BACK
only ROLLED_BACK outcomes are accepted (the hosts undoing the patch); a PLANNED or COMPLETED
rollout takes none. A VERIFIED report for a REVOKED patch is refused (a revocation halts the
patch's rollouts, so this only matters for a batch racing it; reading the patch puts it in the
read set, so a batch endorsed before the revocation fails at commit). Reading the rollout puts
it in the transaction's read set, so a batch endorsed before a concurrent pause, halt or advance
of its rollout is invalidated at commit (MVCC read conflict) and must be re-submitted.

Reports of one host inside a batch are processed in order, so a host may send several steps
(APPLIED then VERIFIED) with increasing sequence numbers in one batch. When the caller is a host
identity, every report must be its own; an operator may relay any of its organization's hosts'
reports, but never forge them, because the signature is checked against the host's certificate.

What a report writes: its Deployment record only, with the report's outcome, sequence,
inventory digest, detail, time and the host's signature (the status is self-certifying: the
signed bytes are rebuilt from the record, :meth:`Deployment.signed_report`, and a report whose
bytes could not be rebuilt, with unknown members say, is refused). The replay counter is the
deployment's ``report_sequence``: a report names its rollout and is signed, so a per-deployment
counter refuses every replay; a report must also be above the Host record's
``last_report_sequence``, the counter of ledgers written before (the Host record is read for
the certificate, not written: docs/benchmarks.md, "Host-report throughput").

Endorsement: Deployment records carry no key-level policy (``AdvanceRollout`` creates them
without one), so the chaincode's endorsement policy (MAJORITY of the channel's organizations)
governs report writes, and the peers evaluate it once per transaction instead of once per
written key. One organization's peer alone cannot commit a report; another organization
cannot write one (honest endorsers' chaincode refuses a caller of another organization); a
colluding majority that writes a status without the host's signature is caught by
:mod:`~chaincode.lifecycle.deployment_proof` (docs/security.md). A deployment created before
this (an older ledger) keeps the owner-AND-majority key-level policy it was created with,
which still governs its writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from patchledger.chaincode.lifecycle.authz import authorize, require_org
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.errors import (
    AuthorizationError,
    LifecycleError,
    PreconditionError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.host_report import SignedReport, verify_report
from patchledger.chaincode.lifecycle.identity import Role
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.rollout import Rollout

MAX_BATCH = 500

#: Rollout states in which a report of any outcome is accepted.
REPORTING = frozenset({"RUNNING", "PAUSED"})
#: Rollout states in which only ROLLED_BACK reports are accepted (the hosts undoing the patch).
ROLLING_BACK = frozenset({"HALTED", "ROLLED_BACK"})


@dataclass(frozen=True)
class ReportResult:
    """The outcome of one report of a batch (``error`` empty when accepted)."""

    index: int
    host_id: str
    sequence: int
    accepted: bool
    error_type: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this result."""
        return {
            "index": self.index,
            "host_id": self.host_id,
            "sequence": self.sequence,
            "accepted": self.accepted,
            "error_type": self.error_type,
            "error": self.error,
        }


@dataclass
class BatchResult:
    """Changes of the transaction and one result per report, in batch order."""

    changes: list[Change] = field(default_factory=list)
    results: list[ReportResult] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """How many reports were accepted."""
        return sum(1 for r in self.results if r.accepted)


def report_deployments(tx: TxLedger, reports: Sequence[Any]) -> BatchResult:
    """Check and record a batch of signed host reports (rules in the module docstring).

    Raises:
        AuthorizationError: the caller is neither an operator nor a host.
        ValidationError: the batch is not a list or holds more than :data:`MAX_BATCH` reports.
    """
    authorize(tx.caller, "report_deployments")
    if not isinstance(reports, list | tuple):
        raise ValidationError("reports", "must be a list")
    if not 1 <= len(reports) <= MAX_BATCH:
        raise ValidationError("reports", f"must hold 1 to {MAX_BATCH} reports")
    result = BatchResult()
    for index, raw in enumerate(reports):
        result.results.append(_one(tx, index, raw))
    result.changes = tx.changes
    return result


def _one(tx: TxLedger, index: int, raw: Any) -> ReportResult:
    host_id, sequence = "", 0
    try:
        if not isinstance(raw, Mapping):
            raise ValidationError(f"reports[{index}]", "must be an object")
        signed = SignedReport.from_dict(raw)
        host_id, sequence = signed.report.host_id, signed.report.sequence
        _accept(tx, signed)
    except LifecycleError as exc:
        return ReportResult(index, host_id, sequence, False, type(exc).__name__, str(exc))
    return ReportResult(index, host_id, sequence, True)


def _accept(tx: TxLedger, signed: SignedReport) -> None:
    report = signed.report
    caller = tx.caller
    if caller.role == Role.HOST and caller.host_id != report.host_id:
        raise AuthorizationError(
            f"host {caller.host_id!r} cannot report for host {report.host_id!r}"
        )
    host = tx.load(Host, report.host_id)
    require_org(caller, host.owner_msp, f"host {host.host_id!r}")
    if host.status != "ENROLLED":
        raise PreconditionError("Host", host.host_id, host.status, "cannot report")
    deployment = tx.load(Deployment, report.rollout_id, report.host_id)
    _require_reporting(tx.load(Rollout, report.rollout_id), report.outcome)
    if deployment.patch_id != report.patch_id:
        raise ValidationError("report.patch_id", f"rollout deploys {deployment.patch_id!r}")
    patch = tx.load(Patch, deployment.patch_id)
    if patch.status == "REVOKED" and report.outcome == "VERIFIED":
        raise PreconditionError(
            "Patch", patch.patch_id, patch.status, "refuses VERIFIED reports (roll back)"
        )
    verify_report(
        signed,
        host.cert_pem.encode("ascii"),
        last_sequence=max(deployment.report_sequence, host.last_report_sequence),
        now=tx.now,
    )
    # The deployment only, without a key-level policy (module docstring, "Endorsement"); the
    # Host record is not written (its counter is the older ledgers' floor).
    tx.save(deployment.reported(signed))


def takes_report(rollout: Rollout, outcome: str) -> bool:
    """Whether ``rollout`` in its state takes a report of ``outcome`` (module docstring)."""
    return rollout.status in REPORTING or (
        rollout.status in ROLLING_BACK and outcome == "ROLLED_BACK"
    )


def _require_reporting(rollout: Rollout, outcome: str) -> None:
    """Refuse a report its rollout's state does not take (rules in the module docstring).

    Raises:
        PreconditionError: naming the rollout, its state and the refused outcome.
    """
    if takes_report(rollout, outcome):
        return
    allowed = "only ROLLED_BACK reports" if rollout.status in ROLLING_BACK else "no reports"
    raise PreconditionError(
        "Rollout",
        rollout.rollout_id,
        rollout.status,
        f"refuses {outcome} reports (it takes {allowed})",
    )
