"""Patch records: one artifact (by SHA-256) proposed to fix vulnerabilities.

State machine (``status``)::

    PROPOSED ──> PROPOSED               failing test evidence attached
    PROPOSED ──> TESTED                 passing test evidence attached
    TESTED ──> TESTED                   more evidence attached (passing or not)
    TESTED ──> APPROVED                 the policy's quorum of organizations approved
    TESTED ──> REJECTED                 the policy's rejection rule triggered (terminal)
    APPROVED ──> RELEASED               the first rollout of the patch started
    RELEASED ──> SUPERSEDED             a patch naming it in ``supersedes`` was released
    APPROVED ──> SUPERSEDED
    PROPOSED, TESTED, APPROVED, RELEASED, SUPERSEDED ──> REVOKED   by quorum (terminal)

Approvals are only accepted in TESTED: nobody approves an untested artifact. Rollouts are only
created and advanced for APPROVED or RELEASED patches. The artifact (digest, size, URI) never
changes after the proposal: a new build is a new patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.fields import (
    choice,
    id_tuple,
    identifier,
    integer,
    sha256_hex,
    text,
)
from patchledger.chaincode.lifecycle.record import Nested, Record
from patchledger.chaincode.lifecycle.severity import SEVERITIES
from patchledger.chaincode.lifecycle.statemachine import StateMachine, machine

MACHINE = machine(
    "Patch",
    "PROPOSED",
    {
        "PROPOSED": {"PROPOSED", "TESTED", "REVOKED"},
        "TESTED": {"TESTED", "APPROVED", "REJECTED", "REVOKED"},
        "APPROVED": {"RELEASED", "SUPERSEDED", "REVOKED"},
        "RELEASED": {"SUPERSEDED", "REVOKED"},
        "SUPERSEDED": {"REVOKED"},
    },
)
DEPLOYABLE = frozenset({"APPROVED", "RELEASED"})
MAX_ARTIFACT_SIZE = 1 << 40


@dataclass(frozen=True)
class TestEvidence(Nested):
    """A test run's result: digest of the off-ledger report, where it is, and the verdict."""

    __test__ = False  # not a pytest test class

    report_sha256: str
    uri: str
    summary: str
    passed: bool
    msp_id: str
    recorded_at: int


def _evidence(value: Any) -> tuple[TestEvidence, ...]:
    if not isinstance(value, list | tuple):
        raise ValidationError("test_evidence", "must be a list")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, TestEvidence):
            if not isinstance(item, dict):
                raise ValidationError(f"test_evidence[{i}]", "must be an object")
            try:
                item = TestEvidence(**item)
            except TypeError as exc:
                raise ValidationError(f"test_evidence[{i}]", str(exc)) from exc
        check_evidence(f"test_evidence[{i}]", item)
        out.append(item)
    return tuple(out)


def check_evidence(name: str, ev: TestEvidence) -> None:
    """Validate one evidence entry.

    Raises:
        ValidationError: naming the offending field.
    """
    sha256_hex(f"{name}.report_sha256", ev.report_sha256)
    text(f"{name}.uri", ev.uri, limit=2048)
    text(f"{name}.summary", ev.summary, optional=True)
    if not isinstance(ev.passed, bool):
        raise ValidationError(f"{name}.passed", "must be a boolean")
    identifier(f"{name}.msp_id", ev.msp_id)
    integer(f"{name}.recorded_at", ev.recorded_at)


@dataclass(frozen=True, kw_only=True)
class Patch(Record):
    """A proposed patch and where it stands."""

    RECORD_TYPE = "Patch"
    KEY_FIELDS = ("patch_id",)
    MACHINE: ClassVar[StateMachine] = MACHINE
    patch_id: str
    title: str
    vendor: str
    artifact_sha256: str
    artifact_size: int
    artifact_uri: str
    fixes: tuple[str, ...]
    targets: tuple[str, ...]
    severity: str
    proposed_by: str
    status: str = "PROPOSED"
    supersedes: str = ""
    test_evidence: tuple[TestEvidence, ...] = ()

    @classmethod
    def decode_field(cls, name: str, value: Any) -> Any:
        """Decode nested evidence; lists become tuples."""
        if name == "test_evidence":
            return _evidence(value)
        return super().decode_field(name, value)

    def validate(self) -> None:
        """Check fields.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("patch_id", self.patch_id)
        text("title", self.title, limit=1024)
        text("vendor", self.vendor, limit=256)
        sha256_hex("artifact_sha256", self.artifact_sha256)
        integer("artifact_size", self.artifact_size, minimum=1, maximum=MAX_ARTIFACT_SIZE)
        text("artifact_uri", self.artifact_uri, limit=2048)
        id_tuple("fixes", self.fixes, non_empty=True)
        text_targets = [text(f"targets[{i}]", t, limit=1024) for i, t in enumerate(self.targets)]
        if not text_targets:
            raise ValidationError("targets", "must not be empty")
        choice("severity", self.severity, SEVERITIES)
        identifier("proposed_by", self.proposed_by)
        MACHINE.validate_state("status", self.status)
        if self.supersedes:
            identifier("supersedes", self.supersedes)
            if self.supersedes == self.patch_id:
                raise ValidationError("supersedes", "a patch cannot supersede itself")
        _evidence(self.test_evidence)


    @property
    def state(self) -> str:
        """The ``status``."""
        return self.status
