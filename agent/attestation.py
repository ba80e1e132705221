"""Verifying endorsed attestations of ledger state, offline, before acting (docs/security.md).

The agent does not believe what its organization's app serves. It picks a nonce and asks for
``AttestDeployment(host_id, rollout_id, nonce)``; the app has that read-only proposal endorsed
(never submitted) by peers of several organizations and relays an **endorsed-proposal bundle**,
a JSON object (binary fields standard base64)::

    {"kind": "patchledger/endorsed-proposal/1",
     "proposal": <peer.Proposal bytes>, "proposal_signature": <the creator's signature>,
     "response_payload": <peer.ProposalResponsePayload bytes>,
     "endorsements": [{"endorser": <msp.SerializedIdentity bytes>, "signature": <DER>}]}

:func:`verify_endorsed` checks, without talking to any peer, in this order:

1. the proposal is an endorser transaction on the expected channel for the expected chaincode,
   whose invocation arguments are exactly the function and arguments the agent asked for, its
   nonce included (``AttestationBindingError``: another nonce is a replay);
2. the response payload's ``proposal_hash`` is Fabric's hash of that proposal,
   SHA-256(channel header || signature header || the chaincode proposal payload without its
   transient map), so the endorsed response answers this very proposal; its chaincode action
   is the expected chaincode's, status 200, and its read-write set writes nothing;
3. every endorsement's signature verifies over ``response_payload || endorser`` (what a Fabric
   peer signs) with the endorser certificate's key, low S (``EndorsementError``);
4. every endorser certificate is directly issued by a pinned root of the organization its
   ``mspid`` names, valid now, and is a **peer** (the ``OU=peer`` that the organizations' CAs
   write into peer certificates, NodeOUs) (``EndorsementError``);
5. endorsements are counted per organization: a second endorsement of an organization adds
   nothing (:func:`require_endorsers` then asks for enough distinct organizations).

The chaincode's answer (the response's payload, canonical JSON) is what the agent acts on:
:func:`verify_deployment` applies the rules of the deployment (the attested quorum and the
agent's floor on endorsing organizations, the patch's status, approvals and artifact through
:func:`agent.verify.verify_patch`, statements of revoked signers discounted, the attested
``quorum_met``, the rollout, wave and deployment states, supersession).
:func:`verify_channel_roots` verifies an ``AttestChannelRoots`` bundle at enrollment against the
fingerprint an administrator gives.

Pure: no I/O, the time is passed in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from patchledger.agent._protos import (
    chaincode_pb2,
    common_pb2,
    identities_pb2,
    kv_rwset_pb2,
    proposal_pb2,
    proposal_response_pb2,
    rwset_pb2,
)
from patchledger.agent.errors import (
    AttestationBindingError,
    AttestationFormatError,
    BundleError,
    DeploymentStateError,
    EndorsementError,
    EndorsementQuorumError,
    QuorumNotMetError,
)
from patchledger.agent.signer import issuing_organizations
from patchledger.agent.verify import ArtifactFacts, Verdict, verify_patch
from patchledger.chaincode.lifecycle.attestation import (
    DEPLOYMENT_KIND,
    DEPLOYMENTS_KIND,
    ROOTS_KIND,
    roots_fingerprint,
)
from patchledger.chaincode.lifecycle.deployment import SETTLED
from patchledger.chaincode.lifecycle.errors import LifecycleError
from patchledger.chaincode.lifecycle.policy import Policy
from patchledger.chaincode.lifecycle.signatures import decode_b64, verify
from patchledger.chaincode.lifecycle.trust import OrgTrust

__all__ = [
    "BUNDLE_KIND",
    "DEFAULT_MIN_ENDORSERS",
    "DeploymentAttestation",
    "Endorsed",
    "Question",
    "require_endorsers",
    "verify_channel_roots",
    "verify_deployment",
    "verify_deployment_answer",
    "verify_endorsed",
]

#: ``kind`` of an endorsed-proposal bundle.
BUNDLE_KIND = "patchledger/endorsed-proposal/1"
#: The agent's floor on distinct endorsing organizations.
DEFAULT_MIN_ENDORSERS = 2
_ENDORSER_TRANSACTION = 3  # common.HeaderType.ENDORSER_TRANSACTION
_PEER_OU = "peer"


@dataclass(frozen=True)
class Question:
    """What the agent asked: a function of a chaincode on a channel, with its arguments.

    Attributes:
        channel: the channel name.
        chaincode: the chaincode name.
        function: the transaction function.
        arguments: its arguments, as strings (the nonce among them).
    """

    channel: str
    chaincode: str
    function: str
    arguments: tuple[str, ...]


@dataclass(frozen=True)
class Endorsed:
    """A verified endorsed answer.

    Attributes:
        result: the chaincode's JSON answer.
        endorsing: the distinct organizations whose peers endorsed it, sorted.
        transaction_id: the proposal's transaction id.
        repeated: endorsements not counted (a second one of an organization).
    """

    result: dict[str, Any]
    endorsing: tuple[str, ...]
    transaction_id: str
    repeated: tuple[str, ...] = ()


def _b64(bundle: Mapping[str, Any], name: str) -> bytes:
    value = bundle.get(name)
    if not isinstance(value, str) or not value:
        raise AttestationFormatError(f"the attestation bundle has no {name!r}")
    try:
        return decode_b64(value, name)
    except LifecycleError as exc:
        raise AttestationFormatError(f"the attestation bundle's {name!r}: {exc}") from exc


def _parse(message_class: Any, data: bytes, what: str) -> Any:
    try:
        return message_class.FromString(data)
    except Exception as exc:  # protobuf DecodeError
        raise AttestationFormatError(f"{what} is not a {message_class.__name__}: {exc}") from exc


def proposal_hash(proposal_bytes: bytes) -> bytes:
    """Fabric's proposal hash (``protoutil.GetProposalHash1``): SHA-256 over the channel
    header, the signature header and the chaincode proposal payload without transient data.

    Raises:
        AttestationFormatError: the bytes are not a proposal.
    """
    proposal = _parse(proposal_pb2.Proposal, proposal_bytes, "the proposal")
    header = _parse(common_pb2.Header, proposal.header, "the proposal header")
    payload = _parse(proposal_pb2.ChaincodeProposalPayload, proposal.payload,
                     "the proposal payload")
    stripped = proposal_pb2.ChaincodeProposalPayload(input=payload.input).SerializeToString()
    return hashlib.sha256(header.channel_header + header.signature_header + stripped).digest()


def _check_question(proposal_bytes: bytes, question: Question) -> str:
    """Rule 1; returns the transaction id."""
    proposal = _parse(proposal_pb2.Proposal, proposal_bytes, "the proposal")
    header = _parse(common_pb2.Header, proposal.header, "the proposal header")
    channel_header = _parse(common_pb2.ChannelHeader, header.channel_header,
                            "the channel header")
    if channel_header.type != _ENDORSER_TRANSACTION:
        raise AttestationBindingError(
            f"the proposal has header type {channel_header.type}, not an endorser transaction"
        )
    if channel_header.channel_id != question.channel:
        raise AttestationBindingError(
            f"the proposal is for channel {channel_header.channel_id!r}, not"
            f" {question.channel!r}"
        )
    payload = _parse(proposal_pb2.ChaincodeProposalPayload, proposal.payload,
                     "the proposal payload")
    spec = _parse(chaincode_pb2.ChaincodeInvocationSpec, payload.input,
                  "the proposal's invocation").chaincode_spec
    if spec.chaincode_id.name != question.chaincode:
        raise AttestationBindingError(
            f"the proposal invokes chaincode {spec.chaincode_id.name!r}, not"
            f" {question.chaincode!r}"
        )
    asked = [question.function.encode(), *(a.encode() for a in question.arguments)]
    sent = [bytes(arg) for arg in spec.input.args]
    if sent != asked:
        shown = [a.decode("utf-8", errors="replace")[:80] for a in sent]
        raise AttestationBindingError(
            f"the proposal asks {shown}, not {question.function}{list(question.arguments)}"
            " (another function, host, rollout or nonce: an answer to another question, or a"
            " replay)"
        )
    return str(channel_header.tx_id)


def _check_response(response_payload: bytes, proposal_bytes: bytes,
                    question: Question) -> dict[str, Any]:
    """Rule 2; returns the chaincode's JSON answer."""
    prp = _parse(proposal_response_pb2.ProposalResponsePayload, response_payload,
                 "the response payload")
    if prp.proposal_hash != proposal_hash(proposal_bytes):
        raise AttestationBindingError(
            "the response payload's proposal hash does not match the proposal: the endorsed"
            " answer is not the answer to this proposal"
        )
    action = _parse(proposal_pb2.ChaincodeAction, prp.extension, "the chaincode action")
    if action.chaincode_id.name != question.chaincode:
        raise AttestationBindingError(
            f"the response is chaincode {action.chaincode_id.name!r}'s, not"
            f" {question.chaincode!r}'s"
        )
    if action.response.status != 200:
        raise AttestationBindingError(
            f"the chaincode refused: {action.response.status} {action.response.message}"
        )
    rwset = _parse(rwset_pb2.TxReadWriteSet, action.results, "the read-write set")
    for ns in rwset.ns_rwset:
        kv = _parse(kv_rwset_pb2.KVRWSet, ns.rwset, f"the read-write set of {ns.namespace}")
        if kv.writes or kv.metadata_writes:
            raise AttestationBindingError(
                f"the attested proposal writes to {ns.namespace!r}: not a read-only query"
            )
    try:
        result = json.loads(bytes(action.response.payload))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AttestationFormatError(f"the chaincode's answer is not JSON: {exc}") from exc
    if not isinstance(result, dict):
        raise AttestationFormatError("the chaincode's answer is not a JSON object")
    return result


def _is_peer(cert: x509.Certificate) -> bool:
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return any(str(u.value).lower() == _PEER_OU for u in units)


def _check_endorsement(index: int, entry: Any, response_payload: bytes, roots: OrgTrust,
                       moment: dt.datetime) -> str:
    """Rules 3 and 4; returns the endorser's organization."""
    if not isinstance(entry, Mapping):
        raise AttestationFormatError(f"endorsement {index} is not an object")
    endorser = _b64(entry, "endorser")
    signature = _b64(entry, "signature")
    identity = _parse(identities_pb2.SerializedIdentity, endorser, f"endorser {index}")
    msp_id = str(identity.mspid)
    what = f"endorsement {index} ({msp_id or 'no MSP id'})"
    try:
        cert = x509.load_pem_x509_certificate(bytes(identity.id_bytes))
    except ValueError as exc:
        raise EndorsementError(f"{what}: the endorser is not a PEM certificate") from exc
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    try:
        verify(cert_pem, response_payload + endorser, signature, what)
    except LifecycleError as exc:
        raise EndorsementError(f"{what}: the signature over the response does not verify:"
                               f" {exc}") from exc
    if not roots.roots.get(msp_id):
        raise EndorsementError(f"{what}: no root of {msp_id} is pinned")
    issuers = issuing_organizations(cert, roots, moment)
    if msp_id not in issuers:
        by = f" (issued by {', '.join(issuers)}'s root)" if issuers else ""
        raise EndorsementError(
            f"{what}: the endorser certificate does not chain to a pinned root of {msp_id}"
            f" valid now{by}"
        )
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise EndorsementError(f"{what}: the endorser certificate is not valid now")
    if not _is_peer(cert):
        raise EndorsementError(
            f"{what}: the endorser {cert.subject.rfc4514_string()} is not a peer (no OU=peer):"
            " only peers endorse"
        )
    return msp_id


def verify_endorsed(
    bundle: Mapping[str, Any], question: Question, *, roots: OrgTrust, now: int
) -> Endorsed:
    """Rules 1-5 of the module docstring.

    Raises:
        AttestationFormatError: a malformed bundle.
        AttestationBindingError: the answer is not to ``question`` (rules 1-2).
        EndorsementError: a forged or non-peer endorsement (rules 3-4).
    """
    if not isinstance(bundle, Mapping) or bundle.get("kind") != BUNDLE_KIND:
        raise AttestationFormatError(f"not an endorsed-proposal bundle ({BUNDLE_KIND})")
    proposal_bytes = _b64(bundle, "proposal")
    response_payload = _b64(bundle, "response_payload")
    tx_id = _check_question(proposal_bytes, question)
    result = _check_response(response_payload, proposal_bytes, question)
    entries = bundle.get("endorsements")
    if not isinstance(entries, list | tuple):
        raise AttestationFormatError("the attestation bundle's 'endorsements' is not a list")
    moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    orgs: list[str] = []
    repeated: list[str] = []
    for index, entry in enumerate(entries):
        msp_id = _check_endorsement(index, entry, response_payload, roots, moment)
        if msp_id in orgs:
            repeated.append(f"endorsement {index}: a second one of {msp_id}")
        else:
            orgs.append(msp_id)
    return Endorsed(result, tuple(sorted(orgs)), tx_id, tuple(repeated))


def require_endorsers(endorsed: Endorsed, needed: int, what: str) -> None:
    """Refuse unless at least ``needed`` distinct organizations endorsed.

    Raises:
        EndorsementQuorumError: fewer did (repeated endorsements named in the message).
    """
    if len(endorsed.endorsing) < needed:
        note = f"; not counted: {'; '.join(endorsed.repeated)}" if endorsed.repeated else ""
        raise EndorsementQuorumError(what, endorsed.endorsing, needed, note)


# ---------------------------------------------------------------------------- deployments


@dataclass(frozen=True)
class DeploymentAttestation:
    """An attested deployment the agent may act on.

    Attributes:
        verdict: the patch verification on the attested patch, policy and approvals.
        endorsing: the organizations whose peers attested it.
        state: the whole attested answer (``AttestDeployment``'s JSON).
        maintenance_window: the host record's maintenance window on the ledger ("" if none).
        supersedes_chain: the patches this one supersedes, nearest first.
    """

    verdict: Verdict
    endorsing: tuple[str, ...]
    state: dict[str, Any]
    maintenance_window: str
    supersedes_chain: tuple[str, ...]


def _member(state: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = state.get(name)
    if not isinstance(value, dict):
        raise AttestationFormatError(f"the attestation has no {name!r} record")
    return value


def _check_echo(state: Mapping[str, Any], kind: str, expected: Mapping[str, str]) -> None:
    if state.get("kind") != kind:
        raise AttestationFormatError(f"the attested answer is not a {kind}")
    for name, value in expected.items():
        if state.get(name) != value:
            raise AttestationBindingError(
                f"the attested answer's {name} is {state.get(name)!r}, not {value!r}"
            )


def _check_deployment_state(state: Mapping[str, Any], host_id: str, rollout_id: str,
                            patch_id: str) -> None:
    rollout = _member(state, "rollout")
    host = _member(state, "host")
    where = f"rollout {rollout_id!r}"
    if rollout.get("patch_id") != patch_id:
        raise DeploymentStateError(
            f"{where} deploys patch {rollout.get('patch_id')!r}, not {patch_id!r}"
        )
    if rollout.get("status") != "RUNNING":
        raise DeploymentStateError(f"{where} is {rollout.get('status')} on the ledger, not"
                                   " RUNNING: no wave is open")
    waves = rollout.get("waves")
    current = rollout.get("current_wave")
    if state.get("batched") is True:
        # AttestDeployments carries no host lists: the endorsed per-host in_current_wave
        sizes = rollout.get("wave_sizes")
        in_wave = (isinstance(sizes, list) and isinstance(current, int)
                   and 0 <= current < len(sizes))
    else:
        in_wave = (isinstance(waves, list) and isinstance(current, int)
                   and 0 <= current < len(waves) and isinstance(waves[current], dict)
                   and host_id in waves[current].get("hosts", ()))
    if not in_wave or state.get("in_current_wave") is not True:
        raise DeploymentStateError(
            f"host {host_id!r} is not in the current wave ({current}) of {where}"
        )
    deployment = _member(state, "deployment")
    if deployment.get("patch_id") != patch_id or deployment.get("host_id") != host_id:
        raise DeploymentStateError(f"the attested deployment is not host {host_id!r}'s of"
                                   f" patch {patch_id!r}")
    if host.get("status") != "ENROLLED" or host.get("host_id") != host_id:
        raise DeploymentStateError(f"host {host_id!r} is {host.get('status')} on the ledger")
    if deployment.get("status") in SETTLED:
        raise DeploymentStateError(
            f"the deployment of host {host_id!r} in {where} is already {deployment['status']}"
        )
    released = [s.get("patch_id") for s in state.get("superseded_by", ())
                if isinstance(s, dict) and s.get("status") == "RELEASED"]
    if released:
        raise DeploymentStateError(
            f"patch {patch_id!r} is superseded by the released patch(es) {released}"
        )


def verify_deployment(
    bundle: Mapping[str, Any],
    *,
    channel: str,
    chaincode: str,
    host_id: str,
    rollout_id: str,
    patch_id: str,
    nonce: str,
    artifact: ArtifactFacts,
    roots: OrgTrust,
    now: int,
    min_quorum: int,
    min_endorsers: int = DEFAULT_MIN_ENDORSERS,
) -> DeploymentAttestation:
    """May ``artifact`` be applied as ``patch_id`` in ``rollout_id`` on this host, now?

    The bundle must answer ``AttestDeployment(host_id, rollout_id, nonce)`` (rules of the
    module docstring), endorsed by peers of at least ``max(attested quorum, min_endorsers)``
    distinct organizations. Then, on the attested state: the patch verifies with
    :func:`agent.verify.verify_patch` (artifact digest and size, APPROVED or RELEASED, every
    statement genuine, the quorum of the attested policy for the attested severity met by
    statements whose signers the attested ``revoked_identities`` do not name, and no live
    rejection); the attestation reports ``quorum_met``; the attested quorum is the policy's
    for that severity; the rollout is RUNNING with the host in its current wave, the host
    ENROLLED, its deployment not settled; no patch superseding this one is released.

    Raises:
        AttestationError: a subclass names what failed (format, binding, endorsement,
            endorsement quorum, deployment state).
        VerificationError: :func:`agent.verify.verify_patch`'s refusals.
    """
    endorsed, state = verify_deployment_answer(bundle, channel=channel, chaincode=chaincode,
                                               host_id=host_id, rollout_id=rollout_id,
                                               nonce=nonce, roots=roots, now=now)
    try:
        policy = Policy.from_dict(_member(state, "policy"))
    except LifecycleError as exc:
        raise BundleError(f"the attested policy is malformed: {exc}") from exc
    patch = _member(state, "patch")
    quorum = state.get("quorum")
    severity = patch.get("severity")
    if (not isinstance(severity, str) or not isinstance(quorum, int)
            or quorum != policy.quorum.get(severity)):
        raise BundleError(f"the attested quorum {quorum!r} is not the policy's for severity"
                          f" {severity!r}")
    require_endorsers(endorsed, max(quorum, min_endorsers),
                      f"the attestation of host {host_id!r} in rollout {rollout_id!r}")
    revoked = state.get("revoked_identities")
    if not isinstance(revoked, list):
        raise AttestationFormatError("the attestation's revoked_identities is not a list")
    verdict = verify_patch(
        patch_id=patch_id,
        bundle={"patch": patch, "approvals": state.get("approvals"),
                "revoked_identities": revoked},
        artifact=artifact,
        policy=policy,
        roots=roots,
        now=now,
        min_quorum=min_quorum,
    )
    if state.get("quorum_met") is not True:
        attested = state.get("approving")
        orgs = tuple(str(o) for o in attested) if isinstance(attested, list) else ()
        raise QuorumNotMetError(patch_id, orgs, quorum,
                                ("the attestation reports the patch's quorum as not met",))
    _check_deployment_state(state, host_id, rollout_id, patch_id)
    chain = state.get("supersedes_chain", [])
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        raise AttestationFormatError("the attestation's supersedes_chain is not a list of ids")
    window = _member(state, "host").get("maintenance_window", "")
    return DeploymentAttestation(verdict, endorsed.endorsing, state,
                                 window if isinstance(window, str) else "", tuple(chain))


def verify_deployment_answer(
    bundle: Mapping[str, Any], *, channel: str, chaincode: str, host_id: str, rollout_id: str,
    nonce: str, roots: OrgTrust, now: int,
) -> tuple[Endorsed, dict[str, Any]]:
    """Rules 1-5 for the answer to this host's deployment question, in either form: its own
    ``AttestDeployment(host_id, rollout_id, nonce)``, or an ``AttestDeployments`` batch
    holding its ``[host_id, nonce]`` (then the state is this host's view of the batch: the
    shared members and its own entry, marked ``batched``). The state echoes ``nonce``,
    ``host_id`` and ``rollout_id``; nothing else of it is judged here.

    Raises:
        AttestationError: a subclass names what failed (a batch entry the ledger answered
            with an ``error``: ``DeploymentStateError``).
    """
    if _asked_function(bundle) == "AttestDeployments":
        return _verify_batched(bundle, channel, chaincode, host_id, rollout_id, nonce, roots,
                               now)
    question = Question(channel, chaincode, "AttestDeployment", (host_id, rollout_id, nonce))
    endorsed = verify_endorsed(bundle, question, roots=roots, now=now)
    _check_echo(endorsed.result, DEPLOYMENT_KIND,
                {"nonce": nonce, "host_id": host_id, "rollout_id": rollout_id})
    return endorsed, endorsed.result


def _asked_function(bundle: Mapping[str, Any]) -> str:
    """The function the bundle's proposal invokes, unverified ("" when unreadable): only
    chooses which question to verify the bundle against."""
    try:
        proposal = proposal_pb2.Proposal.FromString(_b64(bundle, "proposal"))
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
        spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input).chaincode_spec
        return bytes(spec.input.args[0]).decode() if spec.input.args else ""
    except Exception:  # malformed: the full verification names what is wrong
        return ""


def _batch_argument(bundle: Mapping[str, Any], rollout_id: str, host_id: str,
                    nonce: str) -> str:
    """The proposal's request list, if it names this rollout and holds ``[host_id, nonce]``;
    the exact string, so that the question verified is exactly what the proposal asked."""
    proposal = _parse(proposal_pb2.Proposal, _b64(bundle, "proposal"), "the proposal")
    payload = _parse(proposal_pb2.ChaincodeProposalPayload, proposal.payload,
                     "the proposal payload")
    args = _parse(chaincode_pb2.ChaincodeInvocationSpec, payload.input,
                  "the proposal's invocation").chaincode_spec.input.args
    if len(args) != 3:
        raise AttestationBindingError("the AttestDeployments proposal does not have 2 arguments")
    if bytes(args[1]).decode("utf-8", errors="replace") != rollout_id:
        raise AttestationBindingError(
            f"the proposal asks about rollout {bytes(args[1])[:80]!r}, not {rollout_id!r}")
    text = bytes(args[2]).decode("utf-8", errors="replace")
    try:
        pairs = json.loads(text)
    except ValueError as exc:
        raise AttestationFormatError(f"the proposal's request list is not JSON: {exc}") from exc
    mine = [p for p in pairs if isinstance(p, list) and p and p[0] == host_id] \
        if isinstance(pairs, list) else []
    if mine != [[host_id, nonce]]:
        raise AttestationBindingError(
            f"the proposal's requests do not hold this host's nonce exactly once ({host_id!r}):"
            " an answer to another question, or a replay")
    return text


def _verify_batched(bundle: Mapping[str, Any], channel: str, chaincode: str, host_id: str,
                    rollout_id: str, nonce: str, roots: OrgTrust, now: int
                    ) -> tuple[Endorsed, dict[str, Any]]:
    """An ``AttestDeployments`` bundle: the endorsed answer to a question holding this
    host's ``[host_id, nonce]``, and this host's view of it (the shared members, and its own
    entry's host, deployment and ``in_current_wave``), marked ``batched``."""
    argument = _batch_argument(bundle, rollout_id, host_id, nonce)
    question = Question(channel, chaincode, "AttestDeployments", (rollout_id, argument))
    endorsed = verify_endorsed(bundle, question, roots=roots, now=now)
    result = endorsed.result
    _check_echo(result, DEPLOYMENTS_KIND, {"rollout_id": rollout_id})
    entries = result.get("hosts")
    if not isinstance(entries, list):
        raise AttestationFormatError("the batched attestation has no host list")
    mine = [e for e in entries if isinstance(e, dict) and e.get("host_id") == host_id]
    if len(mine) != 1 or mine[0].get("nonce") != nonce:
        raise AttestationBindingError(
            f"the batched attestation does not answer host {host_id!r} with its nonce once")
    entry = mine[0]
    if "error" in entry:
        raise DeploymentStateError(f"the ledger answers for host {host_id!r}: {entry['error']}")
    state = {k: v for k, v in result.items() if k != "hosts"}
    state.update(kind=DEPLOYMENT_KIND, nonce=nonce, host_id=host_id, batched=True,
                 host=entry.get("host"), deployment=entry.get("deployment"),
                 in_current_wave=entry.get("in_current_wave"))
    return endorsed, state


# ---------------------------------------------------------------------------- enrollment


def verify_channel_roots(
    bundle: Mapping[str, Any],
    *,
    channel: str,
    chaincode: str,
    nonce: str,
    fingerprint: str,
    now: int,
    min_endorsers: int = DEFAULT_MIN_ENDORSERS,
) -> OrgTrust:
    """The organization roots to pin at enrollment, from an ``AttestChannelRoots(nonce)``
    bundle, checked against the ``fingerprint`` an administrator gives (the
    :func:`~chaincode.lifecycle.attestation.roots_fingerprint` of the channel's roots, read
    from the channel configuration that every organization agreed to).

    The attested roots must have that fingerprint, and the answer must be endorsed by peers
    whose certificates chain to those roots, of at least ``max(min_endorsers, a majority of
    the attested organizations)`` distinct organizations. One party alone cannot pass: an app
    server cannot make other organizations' peers endorse roots it substituted, and roots it
    invented (with peers it minted for them) do not have the administrator's fingerprint.

    Raises:
        AttestationError: a subclass names what failed; ``AttestationBindingError`` when the
            fingerprint differs.
    """
    question = Question(channel, chaincode, "AttestChannelRoots", (nonce,))
    # The endorsers are checked against the attested roots; they are trusted only once their
    # fingerprint matches the administrator's, checked first.
    unverified = _unverified_result(bundle)
    _check_echo(unverified, ROOTS_KIND, {"nonce": nonce})
    trust = _roots_of(unverified)
    actual = roots_fingerprint(trust)
    if actual != fingerprint.strip().lower():
        raise AttestationBindingError(
            f"the attested roots have fingerprint {actual}, not the administrator's"
            f" {fingerprint!r}: refusing to pin them"
        )
    endorsed = verify_endorsed(bundle, question, roots=trust, now=now)
    if endorsed.result != unverified:
        raise AttestationBindingError("the verified answer differs from the one read first")
    majority = len(trust.organizations) // 2 + 1
    require_endorsers(endorsed, max(min_endorsers, majority), "the channel roots attestation")
    return trust


def _unverified_result(bundle: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(bundle, Mapping) or bundle.get("kind") != BUNDLE_KIND:
        raise AttestationFormatError(f"not an endorsed-proposal bundle ({BUNDLE_KIND})")
    prp = _parse(proposal_response_pb2.ProposalResponsePayload, _b64(bundle, "response_payload"),
                 "the response payload")
    action = _parse(proposal_pb2.ChaincodeAction, prp.extension, "the chaincode action")
    try:
        result = json.loads(bytes(action.response.payload))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AttestationFormatError(f"the chaincode's answer is not JSON: {exc}") from exc
    if not isinstance(result, dict):
        raise AttestationFormatError("the chaincode's answer is not a JSON object")
    return result


def _roots_of(state: Mapping[str, Any]) -> OrgTrust:
    roots = state.get("roots")
    if not isinstance(roots, dict) or not roots:
        raise AttestationFormatError("the attested answer holds no roots")
    pems: dict[str, str] = {}
    for msp_id, entries in roots.items():
        if not isinstance(entries, list) or not entries:
            raise AttestationFormatError(f"the attested roots of {msp_id} are not a list")
        texts = [e.get("pem") for e in entries if isinstance(e, dict)]
        if len(texts) != len(entries) or not all(isinstance(t, str) for t in texts):
            raise AttestationFormatError(f"the attested roots of {msp_id} are malformed")
        pems[msp_id] = "".join(str(t) for t in texts)
    try:
        return OrgTrust.from_pem(pems)
    except LifecycleError as exc:
        raise AttestationFormatError(f"the attested roots: {exc}") from exc

