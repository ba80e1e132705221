"""Attestations of ledger state for host agents: what ``AttestDeployment`` and
``AttestChannelRoots`` answer (pure, read-only).

A host agent does not trust the one organization app that serves it. Before applying a patch it
picks a nonce, has its app relay ``AttestDeployment(host_id, rollout_id, nonce)`` to the peers of
several organizations, and checks their endorsements of the answer (see ``agent/attestation.py``
and docs/security.md). The answer is this module's :func:`attest_deployment`: one JSON object
(the contract serializes it as canonical JSON) holding, as the ledger's current state says,

- ``kind`` (:data:`DEPLOYMENT_KIND`), the agent's ``nonce``, ``host_id``, ``rollout_id`` and
  ``attested_at`` (the transaction timestamp: set by the proposing client, so informative only;
  freshness comes from the nonce);
- ``patch``: the rollout's patch record (status, artifact digest and size, severity, targets,
  ``supersedes``), ``supersedes_chain`` (the ids reached by following ``supersedes``, nearest
  first) and ``superseded_by`` (``{patch_id, status}`` of every patch naming it in
  ``supersedes``);
- ``policy``: the policy record in force, and ``quorum``: its quorum for the patch's severity;
- ``approvals``: every stored signed statement on the patch with its signer's certificate (the
  approval bundle's list, so the agent verifies the signatures itself), and
  ``revoked_identities``: the revocation records of those statements' signers (their
  statements count nowhere);
- ``approving``: the voting organizations whose approval counts now (live, signer not
  revoked) and ``quorum_met``: whether they reach ``quorum``, so a patch whose quorum dropped
  (expired or revoked approvers) is attested as such;
- ``rollout``, ``host`` and ``deployment``: the records (``deployment`` is ``null`` while the
  host's wave has not started), and ``in_current_wave``: whether the host is in the rollout's
  current wave.

States are reported, not judged: a REVOKED patch or a HALTED rollout is attested as such, and the
agent refuses it with the reason. Only malformed arguments and missing records are refused here.

:func:`attest_channel_roots` answers ``AttestChannelRoots(nonce)``: the organization roots the
chaincode server was given (``PATCHLEDGER_ORG_ROOTS_DIR``) as PEM with their SHA-256
fingerprints, for an agent pinning roots at enrollment from several organizations' peers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from patchledger.chaincode.lifecycle.approval import Approval
from patchledger.chaincode.lifecycle.approval_policy import (
    approving_organizations,
    counted_decisions,
)
from patchledger.chaincode.lifecycle.canonical import canonical_json
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.errors import NotFoundError, ValidationError
from patchledger.chaincode.lifecycle.fields import identifier
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.identity_revocation import RevokedIdentity
from patchledger.chaincode.lifecycle.ledger import StateStore
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.policy import DEFAULT_POLICY_ID, Policy
from patchledger.chaincode.lifecycle.queries import approval_bundle
from patchledger.chaincode.lifecycle.record import Key, Record
from patchledger.chaincode.lifecycle.rollout import Rollout
from patchledger.chaincode.lifecycle.trust import OrgTrust

R = TypeVar("R", bound=Record)

__all__ = [
    "DEPLOYMENTS_KIND",
    "DEPLOYMENT_KIND",
    "MAX_ATTEST_BATCH",
    "MAX_CHAIN",
    "MIN_NONCE_LENGTH",
    "ROOTS_KIND",
    "attest_channel_roots",
    "attest_deployment",
    "attest_deployments",
    "check_nonce",
    "parse_requests",
    "roots_fingerprint",
]

#: ``kind`` of an AttestDeployment answer.
DEPLOYMENT_KIND = "patchledger/deployment-attestation/1"
#: ``kind`` of an AttestDeployments answer (several hosts of one rollout).
DEPLOYMENTS_KIND = "patchledger/deployments-attestation/1"
#: Most ``[host_id, nonce]`` pairs in one AttestDeployments.
MAX_ATTEST_BATCH = 256
#: The members of a host record an AttestDeployments answer carries per host.
_BATCH_HOST_FIELDS = frozenset({"host_id", "owner_msp", "status", "groups",
                                "maintenance_window"})
#: ``kind`` of an AttestChannelRoots answer.
ROOTS_KIND = "patchledger/channel-roots-attestation/1"
#: Shortest nonce accepted: 16 characters (e.g. 64 bits as hex; agents send 256 bits).
MIN_NONCE_LENGTH = 16
#: Longest ``supersedes`` chain followed.
MAX_CHAIN = 64


def check_nonce(nonce: Any) -> str:
    """The nonce, if it is 16 to 256 printable ASCII characters without spaces or ``/``.

    Raises:
        ValidationError: naming ``nonce``.
    """
    identifier("nonce", nonce)
    if len(nonce) < MIN_NONCE_LENGTH:
        raise ValidationError("nonce", f"must be at least {MIN_NONCE_LENGTH} characters")
    return str(nonce)


def _load(store: StateStore, cls: type[R], *parts: str) -> R:
    raw = store.get(Key(cls.RECORD_TYPE, parts))
    if raw is None:
        raise NotFoundError(cls.RECORD_TYPE, "/".join(parts))
    return cls.from_json(raw)


def _chain(store: StateStore, patch: Patch) -> list[str]:
    chain: list[str] = []
    current = patch.supersedes
    while current and current not in chain and current != patch.patch_id:
        chain.append(current)
        if len(chain) >= MAX_CHAIN:
            break
        raw = store.get(Key("Patch", (current,)))
        current = Patch.from_json(raw).supersedes if raw is not None else ""
    return chain


def _superseded_by(store: StateStore, patch_id: str) -> list[dict[str, str]]:
    found = []
    for _, raw in store.scan("Patch", ()):
        other = Patch.from_json(raw)
        if other.supersedes == patch_id:
            found.append({"patch_id": other.patch_id, "status": other.status})
    return found


def attest_deployment(
    store: StateStore, host_id: Any, rollout_id: Any, nonce: Any, *, now: int
) -> dict[str, Any]:
    """The attestation of host ``host_id``'s deployment in rollout ``rollout_id`` (module
    docstring).

    Args:
        store: the ledger state.
        host_id: the enrolled host asking.
        rollout_id: the rollout it was assigned.
        nonce: the agent's nonce, echoed.
        now: the transaction time, seconds since the epoch (``attested_at``).

    Raises:
        ValidationError: a malformed host id, rollout id or nonce (naming it).
        NotFoundError: no such host or rollout, or the host is in none of the rollout's waves;
            the rollout's patch or the policy is missing.
    """
    identifier("host_id", host_id)
    identifier("rollout_id", rollout_id)
    check_nonce(nonce)
    host = _load(store, Host, host_id)
    rollout = _load(store, Rollout, rollout_id)
    raw = store.get(Key("Deployment", (rollout_id, host_id)))
    if raw is None and not any(host_id in w.hosts for w in rollout.waves):
        raise NotFoundError("Deployment", f"{rollout_id}/{host_id}")
    deployment = Deployment.from_json(raw).to_dict() if raw is not None else None
    wave = rollout.current_wave
    in_wave = 0 <= wave < len(rollout.waves) and host_id in rollout.waves[wave].hosts
    return {
        "kind": DEPLOYMENT_KIND,
        "nonce": nonce,
        "host_id": host_id,
        "rollout_id": rollout_id,
        "attested_at": now,
        **_patch_state(store, rollout, now),
        "rollout": rollout.to_dict(),
        "host": host.to_dict(),
        "deployment": deployment,
        "in_current_wave": in_wave,
    }


def _patch_state(store: StateStore, rollout: Rollout, now: int) -> dict[str, Any]:
    """The members of a deployment attestation about the rollout's patch (module docstring)."""
    bundle = approval_bundle(store, rollout.patch_id)
    patch = Patch.from_dict(bundle["patch"])
    policy = _load(store, Policy, DEFAULT_POLICY_ID)
    decisions = counted_decisions(
        (Approval.from_json(raw) for _, raw in store.scan("Approval", (patch.patch_id,))),
        (RevokedIdentity.from_dict(r) for r in bundle["revoked_identities"]),
    )
    approving = approving_organizations(policy, decisions, now)
    quorum = policy.quorum.get(patch.severity, 0)
    return {
        "patch": bundle["patch"],
        "supersedes_chain": _chain(store, patch),
        "superseded_by": _superseded_by(store, patch.patch_id),
        "policy": policy.to_dict(),
        "quorum": quorum,
        "approvals": bundle["approvals"],
        "revoked_identities": bundle["revoked_identities"],
        "approving": list(approving),
        "quorum_met": quorum > 0 and len(approving) >= quorum,
    }


def parse_requests(requests: Any) -> list[tuple[str, str]]:
    """The ``(host_id, nonce)`` pairs of an ``AttestDeployments`` request: a JSON array (or a
    list) of ``[host_id, nonce]`` pairs, 1 to :data:`MAX_ATTEST_BATCH`, no host twice.

    Raises:
        ValidationError: naming ``requests`` and what is wrong with it.
    """
    if isinstance(requests, str):
        try:
            requests = json.loads(requests)
        except ValueError as exc:
            raise ValidationError("requests", f"is not JSON: {exc}") from exc
    if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_ATTEST_BATCH:
        raise ValidationError("requests", f"must be a list of 1 to {MAX_ATTEST_BATCH} "
                                          "[host_id, nonce] pairs")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, pair in enumerate(requests):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValidationError(f"requests[{index}]", "must be a [host_id, nonce] pair")
        host_id, nonce = pair
        identifier(f"requests[{index}] host_id", host_id)
        try:
            check_nonce(nonce)
        except ValidationError as exc:
            raise ValidationError(f"requests[{index}] nonce", str(exc)) from exc
        if host_id in seen:
            raise ValidationError(f"requests[{index}]", f"host {host_id!r} is named twice")
        seen.add(host_id)
        pairs.append((str(host_id), str(nonce)))
    return pairs


def _host_entry(store: StateStore, rollout: Rollout, host_id: str, nonce: str,
                current: frozenset[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"host_id": host_id, "nonce": nonce}
    raw_host = store.get(Key("Host", (host_id,)))
    raw = store.get(Key("Deployment", (rollout.rollout_id, host_id)))
    if raw_host is None:
        entry["error"] = f"no Host {host_id!r}"
        return entry
    if raw is None and not any(host_id in w.hosts for w in rollout.waves):
        entry["error"] = f"host {host_id!r} is in no wave of rollout {rollout.rollout_id!r}"
        return entry
    host = Host.from_json(raw_host)
    entry["host"] = {k: v for k, v in host.to_dict().items() if k in _BATCH_HOST_FIELDS}
    entry["deployment"] = Deployment.from_json(raw).to_dict() if raw is not None else None
    entry["in_current_wave"] = host_id in current
    return entry


def attest_deployments(
    store: StateStore, rollout_id: Any, requests: Any, *, now: int
) -> dict[str, Any]:
    """The attestation of several hosts' deployments in one rollout, one answer for all
    (docs/security.md, "Batched attestations"): each host's agent finds its own
    ``[host_id, nonce]`` among the request's pairs, so the answer is as fresh for each of
    them as an ``AttestDeployment`` with its own nonce.

    Returns:
        ``{kind: DEPLOYMENTS_KIND, rollout_id, attested_at, <the patch members of
        attest_deployment>, rollout: <the record without its waves' host lists, with
        wave_sizes>, hosts: [{host_id, nonce, host: {host_id, owner_msp, status, groups,
        maintenance_window}, deployment, in_current_wave} or {host_id, nonce, error}]}``,
        the hosts in request order. A host that is unknown or in no wave of the rollout gets
        an ``error`` entry (its agent refuses), the others are answered.

    Raises:
        ValidationError: a malformed rollout id or request list (naming it).
        NotFoundError: no such rollout, or its patch or the policy is missing.
    """
    identifier("rollout_id", rollout_id)
    pairs = parse_requests(requests)
    rollout = _load(store, Rollout, rollout_id)
    wave = rollout.current_wave
    current = frozenset(rollout.waves[wave].hosts) if 0 <= wave < len(rollout.waves) \
        else frozenset()
    record = rollout.to_dict()
    record["wave_sizes"] = [len(w.hosts) for w in rollout.waves]
    record["waves"] = []
    return {
        "kind": DEPLOYMENTS_KIND,
        "rollout_id": rollout_id,
        "attested_at": now,
        **_patch_state(store, rollout, now),
        "rollout": record,
        "hosts": [_host_entry(store, rollout, h, n, current) for h, n in pairs],
    }


def _der_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def roots_fingerprint(trust: OrgTrust) -> str:
    """One fingerprint of a channel's organization roots: SHA-256 (hex) of the canonical JSON
    ``{msp_id: [SHA-256 of each root's DER, sorted]}``. An administrator computes it from the
    channel configuration (which every organization agreed to) and gives it at enrollment."""
    digests = {msp: sorted(_der_sha256(c) for c in trust.roots[msp])
               for msp in trust.organizations}
    return hashlib.sha256(canonical_json(digests)).hexdigest()


def attest_channel_roots(trust: OrgTrust, nonce: Any, *, now: int) -> dict[str, Any]:
    """The organization roots this chaincode server checks host certificates against.

    Returns:
        ``{kind, nonce, attested_at, roots: {msp_id: [{pem, sha256}]}, fingerprint}`` (see
        :func:`roots_fingerprint`).

    Raises:
        ValidationError: a malformed nonce.
    """
    check_nonce(nonce)
    roots: dict[str, list[dict[str, str]]] = {}
    for msp_id in trust.organizations:
        entries = []
        for cert in trust.roots[msp_id]:
            pem = cert.public_bytes(serialization.Encoding.PEM)
            entries.append({"pem": pem.decode("ascii"), "sha256": _der_sha256(cert)})
        roots[msp_id] = entries
    return {"kind": ROOTS_KIND, "nonce": nonce, "attested_at": now, "roots": roots,
            "fingerprint": roots_fingerprint(trust)}
