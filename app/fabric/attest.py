"""Endorsed, never submitted: attestations of ledger state for host agents.

An agent does not believe its organization's app. It asks for a read-only function with its own
nonce (``AttestDeployment(host_id, rollout_id, nonce)``, ``AttestChannelRoots(nonce)``); the
app builds that proposal, has it **endorsed** through the Gateway's Endorse call by one peer of
each organization it names (the Gateway's endorsing-organizations option), and relays what the
peers signed, without submitting anything to the orderers. The agent verifies the bundle offline
(``agent/attestation.py``): the app cannot forge another organization's peer signature, so it
can neither alter the answer nor leave out an organization without being caught.

The bundle (JSON; binary fields standard base64), ``kind`` ``patchledger/endorsed-proposal/1``:

- ``proposal``: the ``peer.Proposal`` bytes (header: channel, transaction id, creator; payload:
  the chaincode invocation and its arguments), and ``proposal_signature``, the creator's;
- ``response_payload``: the ``peer.ProposalResponsePayload`` the endorsers signed (the
  proposal hash and the chaincode action: read-write set and the function's answer);
- ``endorsements``: ``{endorser, signature}`` per endorsing peer (``msp.SerializedIdentity``
  bytes and its DER signature over ``response_payload || endorser``).

Built on :meth:`Contract.new_proposal` and :meth:`Proposal.endorse` (the first half of a
submit): the same proposal code, signing and error handling as every other transaction.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import grpc

from patchledger.app.fabric._protos import (
    common_pb2,
    gateway_pb2,
    transaction_pb2,
)
from patchledger.app.fabric.contract import Contract
from patchledger.app.fabric.errors import EndorseError

__all__ = [
    "BUNDLE_KIND",
    "attest_channel_roots",
    "attest_deployment",
    "attest_deployments",
    "endorse_only",
]

#: ``kind`` of the endorsed-proposal bundle.
BUNDLE_KIND = "patchledger/endorsed-proposal/1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _endorsed_action(prepared_bytes: bytes) -> Any:
    """The ``ChaincodeEndorsedAction`` of a prepared transaction."""
    prepared = gateway_pb2.PreparedTransaction.FromString(prepared_bytes)
    payload = common_pb2.Payload.FromString(prepared.envelope.payload)
    transaction = transaction_pb2.Transaction.FromString(payload.data)
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(
        transaction.actions[0].payload
    )
    return action_payload.action


def endorse_only(
    contract: Contract,
    function: str,
    arguments: Sequence[str],
    *,
    endorsing_organizations: Sequence[str],
    timeout: float | None = None,
) -> dict[str, Any]:
    """Have ``function(*arguments)`` endorsed by one peer of each of
    ``endorsing_organizations`` and return the endorsed-proposal bundle (module docstring).
    Nothing is submitted: the ledger does not change.

    Raises:
        ValueError: no endorsing organization named.
        EndorseError: the Endorse call failed (the chaincode refused, e.g. 404 for an unknown
            rollout, or an organization's peer is unreachable); or the gateway's answer holds
            no endorsed action.
        SigningError: the app's identity has no signer.
    """
    if not endorsing_organizations:
        raise ValueError("name the organizations whose peers must endorse the attestation")
    proposal = contract.new_proposal(
        function, list(arguments), endorsing_organizations=list(endorsing_organizations)
    )
    transaction = proposal.endorse(timeout)
    signed = gateway_pb2.ProposedTransaction.FromString(proposal.bytes).proposal
    try:
        action = _endorsed_action(transaction.bytes)
    except Exception as exc:  # protobuf DecodeError, no action
        raise EndorseError(
            f"the gateway's endorsed {function} holds no endorsed action: {exc}",
            code=grpc.StatusCode.INTERNAL,
            transaction_id=proposal.transaction_id,
        ) from exc
    return {
        "kind": BUNDLE_KIND,
        "proposal": _b64(bytes(signed.proposal_bytes)),
        "proposal_signature": _b64(bytes(signed.signature)),
        "response_payload": _b64(bytes(action.proposal_response_payload)),
        "endorsements": [
            {"endorser": _b64(bytes(e.endorser)), "signature": _b64(bytes(e.signature))}
            for e in action.endorsements
        ],
    }


def attest_deployment(
    contract: Contract,
    host_id: str,
    rollout_id: str,
    nonce: str,
    *,
    endorsing_organizations: Sequence[str],
    timeout: float | None = None,
) -> dict[str, Any]:
    """The endorsed ``AttestDeployment(host_id, rollout_id, nonce)``; name at least the
    quorum's number of organizations (an honest app names every voting organization).

    Raises:
        EndorseError, SigningError, ValueError: see :func:`endorse_only`.
    """
    return endorse_only(contract, "AttestDeployment", (host_id, rollout_id, nonce),
                        endorsing_organizations=endorsing_organizations, timeout=timeout)


def attest_deployments(
    contract: Contract,
    rollout_id: str,
    requests: Sequence[tuple[str, str]],
    *,
    endorsing_organizations: Sequence[str],
    timeout: float | None = None,
) -> dict[str, Any]:
    """The endorsed ``AttestDeployments(rollout_id, requests)``: one answer for several
    agents of one rollout, each named by its ``(host_id, nonce)`` pair (docs/security.md,
    "Batched attestations"). Every agent of the batch receives the same bundle.

    Raises:
        EndorseError, SigningError, ValueError: see :func:`endorse_only`.
    """
    argument = json.dumps([[h, n] for h, n in requests], separators=(",", ":"))
    return endorse_only(contract, "AttestDeployments", (rollout_id, argument),
                        endorsing_organizations=endorsing_organizations, timeout=timeout)


def attest_channel_roots(
    contract: Contract,
    nonce: str,
    *,
    endorsing_organizations: Sequence[str],
    timeout: float | None = None,
) -> dict[str, Any]:
    """The endorsed ``AttestChannelRoots(nonce)``, for an agent's enrollment.

    Raises:
        EndorseError, SigningError, ValueError: see :func:`endorse_only`.
    """
    return endorse_only(contract, "AttestChannelRoots", (nonce,),
                        endorsing_organizations=endorsing_organizations, timeout=timeout)

