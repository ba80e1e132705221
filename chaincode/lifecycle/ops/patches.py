"""ProposePatch, AttachTestEvidence, and the release of a patch when its rollout starts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchledger.chaincode.lifecycle.authz import authorize
from patchledger.chaincode.lifecycle.errors import AlreadyExistsError
from patchledger.chaincode.lifecycle.fields import id_tuple, sha256_hex, text
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger
from patchledger.chaincode.lifecycle.patch import MACHINE, Patch, TestEvidence, check_evidence
from patchledger.chaincode.lifecycle.severity import highest
from patchledger.chaincode.lifecycle.vulnerability import Vulnerability


def propose_patch(tx: TxLedger, data: Mapping[str, Any]) -> list[Change]:
    """Record a new patch proposal in PROPOSED.

    The severity is the highest of the fixed vulnerabilities' severities at proposal time;
    ``status``, ``severity``, ``proposed_by`` and ``test_evidence`` given by the caller are
    ignored.

    Raises:
        AuthorizationError: the caller is not a feed or operator.
        ValidationError: malformed patch data.
        NotFoundError: a fixed vulnerability or the superseded patch is not recorded.
        AlreadyExistsError: the patch id is taken.
    """
    authorize(tx.caller, "propose_patch")
    fixes = id_tuple("fixes", data.get("fixes"), non_empty=True)
    vulns = [tx.load(Vulnerability, v) for v in fixes]
    patch = Patch.from_dict(
        {
            **data,
            "status": "PROPOSED",
            "severity": highest([v.severity for v in vulns]),
            "proposed_by": tx.caller.msp_id,
            "test_evidence": [],
        }
    )
    if tx.find(Patch, patch.patch_id) is not None:
        raise AlreadyExistsError("Patch", patch.patch_id)
    if patch.supersedes:
        tx.load(Patch, patch.supersedes)
    tx.save(patch)
    return tx.changes


def attach_test_evidence(
    tx: TxLedger, patch_id: str, *, report_sha256: str, uri: str, summary: str, passed: bool
) -> list[Change]:
    """Attach a test run's evidence; passing evidence moves PROPOSED to TESTED.

    Raises:
        AuthorizationError: the caller is not an operator.
        ValidationError: malformed evidence.
        NotFoundError: unknown patch.
        TransitionError: the patch is past testing (approved, rejected, revoked...).
    """
    authorize(tx.caller, "attach_test_evidence")
    sha256_hex("report_sha256", report_sha256)
    text("uri", uri)
    patch = tx.load(Patch, patch_id)
    evidence = TestEvidence(report_sha256, uri, summary, passed, tx.caller.msp_id, tx.now)
    check_evidence("evidence", evidence)
    target = "TESTED" if passed or patch.status == "TESTED" else "PROPOSED"
    tx.save(patch.evolve(status=target, test_evidence=(*patch.test_evidence, evidence)))
    return tx.changes


def release(tx: TxLedger, patch: Patch) -> None:
    """Move an APPROVED patch to RELEASED and the patch it supersedes to SUPERSEDED.

    A RELEASED patch is left as it is. A superseded patch that cannot move (already revoked or
    superseded) is left as it is.
    """
    if patch.status != "APPROVED":
        return
    tx.save(patch.evolve(status="RELEASED"))
    if patch.supersedes:
        old = tx.find(Patch, patch.supersedes)
        if old is not None and MACHINE.allows(old.status, "SUPERSEDED"):
            tx.save(old.evolve(status="SUPERSEDED"))
