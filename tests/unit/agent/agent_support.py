"""Test helpers for the agent: patch records, approval bundles signed by real P-256 approver
identities issued by the per-organization test CAs of ``lifecycle_support``, and the policy
record the agent is given."""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import Any

from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.policy import Policy
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    DAY,
    NOW,
    SECOPS,
    Identity,
    policy_data,
    statement,
    who,
)


def make_policy(**overrides: Any) -> Policy:
    """The default policy record (version 1) the agent reads from the ledger."""
    return Policy.from_dict({"policy_id": "default", "version": 1, **policy_data(**overrides)})


def make_tar(files: dict[str, bytes]) -> bytes:
    """A tar.gz of regular files (directories created as needed)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = NOW
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sha256(data: bytes) -> str:
    """Lowercase hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def patch_record(
    artifact: bytes,
    *,
    patch_id: str = "P-1",
    status: str = "APPROVED",
    severity: str = "critical",
) -> dict[str, Any]:
    """A patch record as GetApprovalBundle returns it, for ``artifact``."""
    digest = sha256(artifact)
    return Patch(
        patch_id=patch_id,
        title="xz-utils security update",
        vendor="Debian",
        artifact_sha256=digest,
        artifact_size=len(artifact),
        artifact_uri=f"cas://{digest}",
        fixes=("CVE-2024-3094",),
        targets=("pkg:deb/debian/xz-utils",),
        severity=severity,
        proposed_by=SECOPS,
        status=status,
        updated_at=NOW - DAY,
        updated_by=COMPLIANCE,
    ).to_dict()


def entry(
    signer: Identity,
    patch: dict[str, Any],
    *,
    cert_pem: bytes | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """One bundle entry: a statement signed by ``signer`` on ``patch`` (fields overridable)."""
    overrides.setdefault("artifact", patch["artifact_sha256"])
    signed = statement(signer, overrides.pop("patch_id", patch["patch_id"]), **overrides)
    return {
        "statement": signed,
        "signer_cert_pem": (cert_pem or signer.cert_pem).decode("ascii"),
    }


def bundle(patch: dict[str, Any], *entries: dict[str, Any]) -> dict[str, Any]:
    """``{patch, approvals}`` as GetApprovalBundle returns it."""
    return {"patch": patch, "approvals": list(entries)}


def approver(msp: str) -> Identity:
    """The standard approver of ``msp``."""
    return who(msp, "approver")
