"""The attestation queries: ``AttestDeployment``, ``AttestDeployments`` (several hosts of one
rollout in one answer) and ``AttestChannelRoots``.

Both are read-only: an app has them *endorsed* (Gateway Endorse, never submitted) by the peers
of several organizations and hands the endorsed answer to a host agent, which checks it offline
(see :mod:`chaincode.lifecycle.attestation` for the answers, docs/security.md for the design).
Time comes from the transaction timestamp.
"""

from __future__ import annotations

from typing import Any

from patchledger.chaincode.lifecycle import LifecycleError
from patchledger.chaincode.lifecycle.attestation import (
    attest_channel_roots,
    attest_deployment,
    attest_deployments,
    parse_requests,
)
from patchledger.chaincode.patchledger.execution import LedgerContext, read, refusal, tx_time
from patchledger.chaincode.patchledger.prefetch import prefetch_attestations

__all__ = ["EVALUATE", "AttestChannelRoots", "AttestDeployment", "AttestDeployments"]


async def AttestDeployment(
    ctx: LedgerContext, host_id: str, rollout_id: str, nonce: str
) -> dict[str, Any]:
    """The current ledger state of host ``host_id``'s deployment in rollout ``rollout_id``:
    patch, supersession, policy and quorum, approvals, rollout, host and deployment, with the
    caller's ``nonce`` (400 for a malformed argument, 404 for an unknown host, rollout or
    deployment)."""
    now = tx_time(ctx.stub)
    return await read(
        ctx, lambda store: attest_deployment(store, host_id, rollout_id, nonce, now=now)
    )


async def AttestDeployments(
    ctx: LedgerContext, rollout_id: str, requests: str
) -> dict[str, Any]:
    """The current ledger state of several hosts' deployments in rollout ``rollout_id``, one
    answer for all: ``requests`` is a JSON array of ``[host_id, nonce]`` pairs (one per
    agent asking), each echoed with its host's records; the patch, policy, approvals and
    rollout once (400 for a malformed argument, 404 for an unknown rollout)."""
    now = tx_time(ctx.stub)

    def query(store: Any) -> dict[str, Any]:
        try:
            pairs = parse_requests(requests)
        except LifecycleError:
            pairs = []  # refused by the core below, with its message
        prefetch_attestations(store, rollout_id, pairs)
        return attest_deployments(store, rollout_id, requests, now=now)

    return await read(ctx, query)


async def AttestChannelRoots(ctx: LedgerContext, nonce: str) -> dict[str, Any]:
    """The organization root certificates this chaincode server was given (the contract's
    trust), with their SHA-256 fingerprints and the caller's ``nonce`` (400 for a malformed
    nonce)."""
    try:
        return attest_channel_roots(ctx.services.trust, nonce, now=tx_time(ctx.stub))
    except LifecycleError as exc:
        raise refusal(exc) from exc


#: The attestation functions, registered read-only by :mod:`chaincode.patchledger.contract`.
EVALUATE = (AttestDeployment, AttestDeployments, AttestChannelRoots)
