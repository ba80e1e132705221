"""Test helpers: real P-256 identities with Fabric CA attributes issued by a test CA per
organization, a small consortium, and shortcuts to run operations the way the contract will
(TxLedger per call, commit on success). :data:`TRUST` holds the three organizations' test CA
roots, as a chaincode server is given them at deployment."""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchledger.chaincode.lifecycle.consent import new_consent
from patchledger.chaincode.lifecycle.host_report import HostReport, SignedReport
from patchledger.chaincode.lifecycle.identity import (
    FABRIC_ATTRS_OID,
    Caller,
    caller_from_certificate,
)
from patchledger.chaincode.lifecycle.ledger import Change, MemoryStore, TxLedger
from patchledger.chaincode.lifecycle.ops import approvals, patches, policies, vulnerabilities
from patchledger.chaincode.lifecycle.ops import hosts as host_ops
from patchledger.chaincode.lifecycle.signatures import sign
from patchledger.chaincode.lifecycle.statement import ApprovalStatement, SignedStatement
from patchledger.chaincode.lifecycle.trust import OrgTrust

T = TypeVar("T")
ORGS = ("SecOpsMSP", "ITOpsMSP", "ComplianceMSP")
SECOPS, ITOPS, COMPLIANCE = ORGS
#: The channel of the unit tests (the fake peer's default channel).
CHANNEL = "testchannel"
NOW = 1_760_000_000
DAY = 86_400
START = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
ARTIFACT = hashlib.sha256(b"patch artifact").hexdigest()
INVENTORY = hashlib.sha256(b"inventory").hexdigest()


@dataclass(frozen=True)
class Identity:
    """A private key, its certificate and the caller built from it."""

    key: ec.EllipticCurvePrivateKey
    cert_pem: bytes
    caller: Caller


@dataclass(frozen=True)
class OrgCA:
    """A test certificate authority: its key and its self-signed root certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        """The root certificate, PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)


def new_ca(
    name: str,
    *,
    not_before: datetime.datetime = START,
    not_after: datetime.datetime = START + datetime.timedelta(days=3650),
) -> OrgCA:
    """A fresh CA with a self-signed root (CA basic constraint, key cert sign usage)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return OrgCA(key, cert)


@functools.cache
def org_ca(msp: str) -> OrgCA:
    """The (cached) test CA of organization ``msp``."""
    return new_ca(f"ca.{msp}")


def make_certificate(
    key: ec.EllipticCurvePrivateKey | Any,
    name: str,
    attrs: dict[str, str],
    *,
    issuer: OrgCA | None = None,
    not_before: datetime.datetime = START,
    not_after: datetime.datetime = START + datetime.timedelta(days=3650),
) -> bytes:
    """A certificate carrying Fabric CA attributes, issued by ``issuer`` (self-signed when
    ``None``)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.UnrecognizedExtension(FABRIC_ATTRS_OID, json.dumps({"attrs": attrs}).encode()),
            critical=False,
        )
    )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


@functools.cache
def identity(msp: str, role: str, name: str = "", host_id: str = "") -> Identity:
    """A cached identity issued by ``msp``'s test CA (keys are generated once per session)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = name or f"{role}-{msp}{'-' + host_id if host_id else ''}"
    attrs = {"hf.EnrollmentID": name, "role": role}
    if host_id:
        attrs["host_id"] = host_id
    pem = make_certificate(key, name, attrs, issuer=org_ca(msp))
    return Identity(key, pem, caller_from_certificate(msp, pem))


#: The three organizations' test CA roots, as each chaincode server is given them.
TRUST = OrgTrust({msp: (org_ca(msp).cert,) for msp in ORGS})


def run(
    store: MemoryStore,
    who: Identity,
    op: Callable[..., T],
    *args: Any,
    now: int = NOW,
    **kwargs: Any,
) -> T:
    """Run one operation as one transaction: refused -> store untouched."""
    tx = TxLedger(store, who.caller, now, "tx")
    result = op(tx, *args, **kwargs)
    tx.commit()
    return result


def policy_data(**overrides: Any) -> dict[str, Any]:
    """A three-organization policy: two approvals for everything but low."""
    data: dict[str, Any] = {
        "organizations": list(ORGS),
        "quorum": {"critical": 2, "high": 2, "medium": 2, "low": 2},
        "rejection": "any",
        "change_quorum": 2,
        "revocation_quorum": 2,
        "exception_quorum": 2,
        "max_statement_validity": 30 * DAY,
        "failure_threshold_pct": 10,
        "soak_seconds": 0,
        "remediation_days": {"critical": 7, "high": 30, "medium": 90, "low": 180},
    }
    data.update(overrides)
    return data


def vuln_data(vuln_id: str = "CVE-2024-3094", severity: str = "critical") -> dict[str, Any]:
    """A vulnerability as a feed records it."""
    return {
        "vuln_id": vuln_id,
        "severity": severity,
        "title": "xz backdoor",
        "cvss_score": "10.0",
        "known_exploited": True,
        "sources": [{"name": "cisa-kev", "reference": vuln_id}],
    }


def patch_data(
    patch_id: str = "P-1", fixes: tuple[str, ...] = ("CVE-2024-3094",)
) -> dict[str, Any]:
    """A patch proposal."""
    return {
        "patch_id": patch_id,
        "title": "xz-utils 5.6.1+really5.4.5",
        "vendor": "Debian",
        "artifact_sha256": ARTIFACT,
        "artifact_size": 1234,
        "artifact_uri": f"cas://{ARTIFACT}",
        "fixes": list(fixes),
        "targets": ["pkg:deb/debian/xz-utils"],
    }


def statement(
    who: Identity,
    patch_id: str = "P-1",
    decision: str = "approve",
    *,
    artifact: str = ARTIFACT,
    expires_at: int = NOW + DAY,
    msp_id: str | None = None,
    approver: str | None = None,
) -> dict[str, Any]:
    """A statement signed by ``who`` (fields overridable to build attacks)."""
    body = ApprovalStatement(
        patch_id=patch_id,
        artifact_sha256=artifact,
        decision=decision,
        msp_id=msp_id or who.caller.msp_id,
        approver=approver or who.caller.name,
        expires_at=expires_at,
        comment="reviewed",
    )
    return SignedStatement.create(body, sign(who.key, body.to_json())).to_dict()


def report(
    host: Identity,
    sequence: int,
    outcome: str = "VERIFIED",
    *,
    rollout_id: str = "R-1",
    patch_id: str = "P-1",
    host_id: str | None = None,
    reported_at: int = NOW,
) -> dict[str, Any]:
    """A host report signed by ``host``."""
    body = HostReport(
        host_id=host_id or host.caller.host_id,
        rollout_id=rollout_id,
        patch_id=patch_id,
        outcome=outcome,
        sequence=sequence,
        inventory_sha256=INVENTORY,
        reported_at=reported_at,
    )
    return SignedReport.create(body, sign(host.key, body.to_json())).to_dict()


def who(msp: str, role: str) -> Identity:
    """Shorthand for the standard identity of ``role`` in ``msp``."""
    return identity(msp, role)


def consents(
    data: dict[str, Any],
    orgs: tuple[str, ...] = (SECOPS, ITOPS),
    *,
    channel: str = CHANNEL,
    expires_at: int = NOW + DAY,
) -> list[dict[str, Any]]:
    """The signed consents of ``orgs``' admins to the first policy ``data`` (a majority of
    the three organizations by default)."""
    out = []
    for msp in orgs:
        admin = who(msp, "admin")
        out.append(new_consent(data, key=admin.key, cert_pem=admin.cert_pem, msp_id=msp,
                               channel_id=channel, expires_at=expires_at))
    return out


def init_args(data: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """The arguments of ``InitLedger``: the policy (default :func:`policy_data`) and the
    consents of SecOps' and ITOps' admins."""
    data = policy_data() if data is None else data
    return data, consents(data)


def bootstrap(
    store: MemoryStore, data: dict[str, Any] | None = None, *, now: int = NOW
) -> list[Change]:
    """Initialise ``store`` with ``data`` (default :func:`policy_data`) as SecOps' admin, with
    the consents of SecOps' and ITOps' admins."""
    data = policy_data() if data is None else data
    return run(store, who(SECOPS, "admin"), policies.bootstrap_policy, data, consents(data),
               now=now, channel_id=CHANNEL, channel_orgs=ORGS, trust=TRUST)


def host_identity(msp: str, host_id: str) -> Identity:
    """The identity of host ``host_id`` owned by ``msp``."""
    return identity(msp, "host", host_id=host_id)


def seeded_store(*, tested: bool = True, **policy: Any) -> MemoryStore:
    """A store with the policy, one critical vulnerability and patch P-1 (TESTED by default)."""
    store = MemoryStore()
    bootstrap(store, policy_data(**policy))
    run(store, who(SECOPS, "feed"), vulnerabilities.record_vulnerability, vuln_data())
    run(store, who(SECOPS, "feed"), patches.propose_patch, patch_data())
    if tested:
        run(
            store,
            who(ITOPS, "operator"),
            patches.attach_test_evidence,
            "P-1",
            report_sha256=INVENTORY,
            uri="https://ci/1",
            summary="ok",
            passed=True,
        )
    return store


def approved_store(hosts: tuple[str, ...] = ("h1", "h2", "h3")) -> MemoryStore:
    """A seeded store where SecOps and Compliance approved P-1 and ITOps enrolled ``hosts``
    (groups: h1 is "canary", the others "web")."""
    store = seeded_store()
    for org in (SECOPS, COMPLIANCE):
        run(store, who(org, "approver"), approvals.approve_patch, statement(who(org, "approver")))
    for h in hosts:
        run(
            store,
            who(ITOPS, "admin"),
            host_ops.enroll_host,
            h,
            host_identity(ITOPS, h).cert_pem.decode(),
            trust=TRUST,
            groups=["canary"] if h == "h1" else ["web"],
        )
    return store
