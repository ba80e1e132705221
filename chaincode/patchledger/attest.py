"""The attestation queries: ``AttestDeployment`` and ``AttestChannelRoots``.

Both are read-only: an app has them *endorsed* (Gateway Endorse, never submitted) by the peers
of several organizations and hands the endorsed answer to a host agent, which checks it offline
(see :mod:`chaincode.lifecycle.attestation` for the answers, docs/security.md for the design).
Time comes from the transaction timestamp.
"""

from __future__ import annotations

from typing import Any

from patchledger.chaincode.lifecycle import LifecycleError, OrgTrust
from patchledger.chaincode.lifecycle.attestation import attest_channel_roots, attest_deployment
from patchledger.chaincode.patchledger.execution import read, refusal, tx_time
from patchledger.chaincode.runtime import Context
from patchledger.chaincode.runtime.contract import TxFunc

__all__ = ["AttestDeployment", "evaluate_functions"]


async def AttestDeployment(
    ctx: Context, host_id: str, rollout_id: str, nonce: str
) -> dict[str, Any]:
    """The current ledger state of host ``host_id``'s deployment in rollout ``rollout_id``:
    patch, supersession, policy and quorum, approvals, rollout, host and deployment, with the
    caller's ``nonce`` (400 for a malformed argument, 404 for an unknown host, rollout or
    deployment)."""
    now = tx_time(ctx.stub)
    return await read(
        ctx, lambda store: attest_deployment(store, host_id, rollout_id, nonce, now=now)
    )


def evaluate_functions(trust: OrgTrust) -> tuple[TxFunc, ...]:
    """The attestation functions, ``AttestChannelRoots`` answering with ``trust``'s roots."""

    async def AttestChannelRoots(ctx: Context, nonce: str) -> dict[str, Any]:
        """The organization root certificates this chaincode server was given, with their
        SHA-256 fingerprints and the caller's ``nonce`` (400 for a malformed nonce)."""
        try:
            return attest_channel_roots(trust, nonce, now=tx_time(ctx.stub))
        except LifecycleError as exc:
            raise refusal(exc) from exc

    return (AttestDeployment, AttestChannelRoots)
