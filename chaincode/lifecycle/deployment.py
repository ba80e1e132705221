"""Deployment records: one host's part in one rollout.

State machine (``status``), driven by signed host reports::

    SCHEDULED ──> DISPATCHED, APPLIED, VERIFIED, FAILED, ROLLED_BACK
    DISPATCHED ──> APPLIED, VERIFIED, FAILED, ROLLED_BACK
    APPLIED ──> VERIFIED, FAILED, ROLLED_BACK
    VERIFIED ──> ROLLED_BACK       rolled back on order (the rollout was halted)
    FAILED ──> ROLLED_BACK
    ROLLED_BACK                    terminal

A report may skip intermediate success steps (an agent that applied and verified in one run
reports VERIFIED directly), but never goes backwards and never leaves ROLLED_BACK. ROLLED_BACK
from SCHEDULED or DISPATCHED records a host that applied the patch while its rollout was being
halted (its VERIFIED report was refused, as a stopped rollout takes only ROLLED_BACK reports)
and then undid it on order. VERIFIED,
FAILED and ROLLED_BACK are *settled* states for the rollout's wave gates.

Self-certifying status: a reported state carries the host's signature over the report that set
it. ``status``, ``report_sequence``, ``inventory_sha256``, ``detail`` and ``reported_at`` are
that report's outcome, sequence, digest, detail and time, and ``report_signature`` its base64
DER signature, so :meth:`Deployment.signed_report` rebuilds the exact signed bytes and anyone
holding the host's certificate (its Host record) can check every recorded status
(:mod:`~chaincode.lifecycle.deployment_proof`). A SCHEDULED deployment (created by
``AdvanceRollout``) has no report: sequence 0, no signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.fields import identifier, integer, sha256_hex, text
from patchledger.chaincode.lifecycle.host import EMPTY_INVENTORY
from patchledger.chaincode.lifecycle.host_report import HostReport, SignedReport
from patchledger.chaincode.lifecycle.record import SCHEMA_VERSION, Record
from patchledger.chaincode.lifecycle.statemachine import StateMachine, machine

MACHINE = machine(
    "Deployment",
    "SCHEDULED",
    {
        "SCHEDULED": {"DISPATCHED", "APPLIED", "VERIFIED", "FAILED", "ROLLED_BACK"},
        "DISPATCHED": {"APPLIED", "VERIFIED", "FAILED", "ROLLED_BACK"},
        "APPLIED": {"VERIFIED", "FAILED", "ROLLED_BACK"},
        "VERIFIED": {"ROLLED_BACK"},
        "FAILED": {"ROLLED_BACK"},
    },
)
SETTLED = frozenset({"VERIFIED", "FAILED", "ROLLED_BACK"})
#: The Deployment fields a host report sets, with the HostReport field each comes from (the
#: others of the report are the deployment's key and patch).
FROM_REPORT = {
    "status": "outcome",
    "report_sequence": "sequence",
    "inventory_sha256": "inventory_sha256",
    "detail": "detail",
    "reported_at": "reported_at",
}


@dataclass(frozen=True, kw_only=True)
class Deployment(Record):
    """One host's deployment in a rollout."""

    RECORD_TYPE = "Deployment"
    KEY_FIELDS = ("rollout_id", "host_id")
    MACHINE: ClassVar[StateMachine] = MACHINE
    rollout_id: str
    host_id: str
    patch_id: str
    owner_msp: str
    wave: int
    status: str = "SCHEDULED"
    report_sequence: int = 0
    inventory_sha256: str = EMPTY_INVENTORY
    detail: str = ""
    reported_at: int = 0
    report_signature: str = ""

    def validate(self) -> None:
        """Check fields.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("rollout_id", self.rollout_id)
        identifier("host_id", self.host_id)
        identifier("patch_id", self.patch_id)
        identifier("owner_msp", self.owner_msp)
        integer("wave", self.wave)
        MACHINE.validate_state("status", self.status)
        integer("report_sequence", self.report_sequence)
        sha256_hex("inventory_sha256", self.inventory_sha256)
        text("detail", self.detail, optional=True)
        integer("reported_at", self.reported_at)
        text("report_signature", self.report_signature, optional=True)

    @property
    def state(self) -> str:
        """The ``status``."""
        return self.status

    def signed_report(self) -> SignedReport | None:
        """The host's signed report this record's status comes from, rebuilt from the record
        (None when no report set it: no signature recorded).

        Raises:
            ValidationError: the recorded fields do not make a valid report (a record no
                honest contract wrote: a SCHEDULED status with a signature, say).
        """
        if not self.report_signature:
            return None
        report = HostReport(
            host_id=self.host_id,
            rollout_id=self.rollout_id,
            patch_id=self.patch_id,
            **{theirs: getattr(self, ours) for ours, theirs in FROM_REPORT.items()},
        )
        return SignedReport(report, self.report_signature)

    def reported(self, signed: SignedReport) -> Deployment:
        """This deployment as ``signed`` (a report on it) sets it, signature kept.

        Raises:
            ValidationError: the report's signed bytes cannot be rebuilt from the record
                (unknown members or another schema version in the report): the recorded status
                would not be checkable, so such a report is not recorded.
        """
        report = signed.report
        # signed_report() rebuilds every field of a HostReport but unknown members, with this
        # code's schema version; a report with either could not be checked from the record
        if report.extra or report.schema_version != SCHEMA_VERSION:
            raise ValidationError(
                "report",
                "has unknown members or another schema version, which the Deployment record "
                "cannot keep; its signed bytes could not be rebuilt to check the recorded status",
            )
        return self.evolve(
            report_signature=signed.signature,
            **{ours: getattr(report, theirs) for ours, theirs in FROM_REPORT.items()},
        )
