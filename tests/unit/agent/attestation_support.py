"""Endorsed attestations for the agent's unit tests, shaped exactly as Fabric makes them.

A proposal is built by the real client code (``app.fabric.transaction_context``); the answer is
the lifecycle core's own ``attest_deployment`` over a :class:`MemoryStore` ledger; each peer
endorses as a Fabric peer does: a ``ProposalResponsePayload`` (proposal hash per
``protoutil.GetProposalHash1``, a ``ChaincodeAction`` with a read-only read-write set and the
answer) signed over ``payload || endorser`` with the peer's key. Peers hold real P-256 keys and
certificates with ``OU=peer`` issued by their organization's test CA (``lifecycle_support``).

An attacking app is modelled by :class:`App`: it builds honest bundles, and its tests tamper with
them (change the answer, drop or add endorsements, re-sign with its own peer).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchledger.app.fabric.transaction_context import TransactionContext, build_proposal_bytes
from patchledger.chaincode.lifecycle.attestation import attest_deployment
from patchledger.chaincode.lifecycle.canonical import canonical_json
from patchledger.chaincode.lifecycle.ledger import MemoryStore
from patchledger.chaincode.lifecycle.ops import (
    approvals,
    patches,
    rollouts,
    vulnerabilities,
)
from patchledger.chaincode.lifecycle.ops import hosts as host_ops
from patchledger.chaincode.lifecycle.signatures import sign
from tests.unit.agent.agent_support import sha256
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    INVENTORY,
    ITOPS,
    NOW,
    ORGS,
    SECOPS,
    START,
    TRUST,
    OrgCA,
    bootstrap,
    host_identity,
    org_ca,
    patch_data,
    run,
    statement,
    vuln_data,
    who,
)

identities_pb2: Any = import_module("fabric_protos.msp.identities_pb2")
common_pb2: Any = import_module("fabric_protos.common.common_pb2")
proposal_pb2: Any = import_module("fabric_protos.peer.proposal_pb2")
proposal_response_pb2: Any = import_module("fabric_protos.peer.proposal_response_pb2")
chaincode_pb2: Any = import_module("fabric_protos.peer.chaincode_pb2")
rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.rwset_pb2")
kv_rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.kvrwset.kv_rwset_pb2")

CHANNEL = "patchledger"
CHAINCODE = "patchledger"
HOST = host_identity(ITOPS, "h1")
NONCE = "a" * 64


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Peer:
    """A node identity (peer unless ``ou`` says otherwise) of an organization."""

    msp_id: str
    key: ec.EllipticCurvePrivateKey
    cert_pem: bytes

    @property
    def serialized(self) -> bytes:
        return bytes(identities_pb2.SerializedIdentity(
            mspid=self.msp_id, id_bytes=self.cert_pem).SerializeToString())


def node_identity(msp_id: str, name: str, *, ou: str = "peer", issuer: OrgCA | None = None,
                  not_after_days: int = 3650) -> Peer:
    """A certificate as Fabric CA issues a node's: ``OU=<type>`` in the subject."""
    ca = issuer or org_ca(msp_id)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(START).not_valid_after(START + dt.timedelta(days=not_after_days))
            .sign(ca.key, hashes.SHA256()))
    return Peer(msp_id, key, cert.public_bytes(serialization.Encoding.PEM))


@functools.cache
def peer(msp_id: str, index: int = 0) -> Peer:
    """The (cached) peer ``index`` of an organization."""
    return node_identity(msp_id, f"peer{index}.{msp_id.lower()}")


def proposal(function: str, args: Sequence[str], *, creator: bytes | None = None,
             channel: str = CHANNEL, chaincode: str = CHAINCODE) -> bytes:
    """A ``peer.Proposal``'s bytes, as the Gateway client builds them."""
    creator = creator or peer(ITOPS).serialized
    context = TransactionContext.new(creator)
    return build_proposal_bytes(context, channel=channel, chaincode=chaincode,
                                transaction_name=function, arguments=list(args))


def fabric_proposal_hash(proposal_bytes: bytes) -> bytes:
    """``protoutil.GetProposalHash1`` written out (independently of the agent's code)."""
    prop = proposal_pb2.Proposal.FromString(proposal_bytes)
    header = common_pb2.Header.FromString(prop.header)
    cpp = proposal_pb2.ChaincodeProposalPayload.FromString(prop.payload)
    no_transient = proposal_pb2.ChaincodeProposalPayload(input=cpp.input)
    return hashlib.sha256(header.channel_header + header.signature_header
                          + no_transient.SerializeToString()).digest()


def response_payload(proposal_bytes: bytes, answer: bytes, *, status: int = 200,
                     writes: bool = False, chaincode: str = CHAINCODE) -> bytes:
    """A ``ProposalResponsePayload`` as a peer builds it for ``answer``."""
    kv = kv_rwset_pb2.KVRWSet(reads=[kv_rwset_pb2.KVRead(key="\x00Patch\x00P-1\x00")])
    if writes:
        kv.writes.append(kv_rwset_pb2.KVWrite(key="\x00Patch\x00P-1\x00", value=b"{}"))
    rwset = rwset_pb2.TxReadWriteSet(data_model=0, ns_rwset=[
        rwset_pb2.NsReadWriteSet(namespace=chaincode, rwset=kv.SerializeToString())])
    action = proposal_pb2.ChaincodeAction(
        results=rwset.SerializeToString(),
        response=proposal_response_pb2.Response(status=status, payload=answer),
        chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode, version="1.0"),
    )
    return bytes(proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=fabric_proposal_hash(proposal_bytes),
        extension=action.SerializeToString()).SerializeToString())


def endorsement(node: Peer, payload: bytes) -> dict[str, str]:
    """``{endorser, signature}``: the node's signature over ``payload || endorser``."""
    endorser = node.serialized
    return {"endorser": b64(endorser), "signature": b64(sign(node.key, payload + endorser))}


def bundle(proposal_bytes: bytes, payload: bytes, endorsers: Sequence[Peer]) -> dict[str, Any]:
    """The endorsed-proposal bundle an app relays."""
    return {
        "kind": "patchledger/endorsed-proposal/1",
        "proposal": b64(proposal_bytes),
        "proposal_signature": b64(sign(peer(ITOPS).key, proposal_bytes)),
        "response_payload": b64(payload),
        "endorsements": [endorsement(p, payload) for p in endorsers],
    }


def answer_of(b: dict[str, Any]) -> dict[str, Any]:
    """The chaincode answer inside a bundle."""
    prp = proposal_response_pb2.ProposalResponsePayload.FromString(
        base64.b64decode(b["response_payload"]))
    action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
    result: dict[str, Any] = json.loads(action.response.payload)
    return result


ALL_PEERS = tuple(peer(msp) for msp in ORGS)


@dataclass
class App:
    """The ITOps app relaying attestations from a ledger ``store``.

    ``tamper`` rewrites the honest answer; ``endorsers`` sign it (all three organizations'
    peers by default: an honest relay). ``log`` keeps every bundle made, for replays.
    """

    store: MemoryStore
    endorsers: Sequence[Peer] = ALL_PEERS
    tamper: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    now: int = NOW
    log: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, host_id: str, rollout_id: str, nonce: str) -> dict[str, Any]:
        prop = proposal("AttestDeployment", [host_id, rollout_id, nonce])
        answer = attest_deployment(self.store, host_id, rollout_id, nonce, now=self.now)
        if self.tamper is not None:
            answer = self.tamper(answer)
        made = bundle(prop, response_payload(prop, canonical_json(answer)), self.endorsers)
        self.log.append(made)
        return made


# ---------------------------------------------------------------------------- the ledger


def ledger(artifact: bytes, *, severity: str = "critical", waves: Sequence[Any] | None = None,
           patch_id: str = "P-1", store: MemoryStore | None = None,
           supersedes: str = "", rollout_id: str = "R-1", fixes: str = "CVE-2024-3094"
           ) -> MemoryStore:
    """Patch ``patch_id`` for ``artifact`` approved by SecOps and Compliance, host h1 enrolled
    by ITOps and rollout ``rollout_id``'s first wave started on it (``waves``: default one
    wave of h1)."""
    fresh = store is None
    store = store if store is not None else MemoryStore()
    if fresh:
        bootstrap(store)
        run(store, who(SECOPS, "feed"), vulnerabilities.record_vulnerability,
            {**vuln_data(fixes), "severity": severity})
        run(store, who(ITOPS, "admin"), host_ops.enroll_host, "h1", HOST.cert_pem.decode(),
            trust=TRUST, groups=["web"])
    digest = sha256(artifact)
    data = {**patch_data(patch_id, (fixes,)), "artifact_sha256": digest,
            "artifact_size": len(artifact), "artifact_uri": f"cas://{digest}"}
    if supersedes:
        data["supersedes"] = supersedes
    run(store, who(SECOPS, "feed"), patches.propose_patch, data)
    run(store, who(ITOPS, "operator"), patches.attach_test_evidence, patch_id,
        report_sha256=INVENTORY, uri="https://ci/1", summary="ok", passed=True)
    for org in (SECOPS, COMPLIANCE):
        signer = who(org, "approver")
        run(store, signer, approvals.approve_patch,
            statement(signer, patch_id, artifact=digest))
    run(store, who(ITOPS, "operator"), rollouts.create_rollout, rollout_id, patch_id,
        list(waves or [{"hosts": ["h1"]}]))
    run(store, who(ITOPS, "operator"), rollouts.advance_rollout, rollout_id)
    return store


def signed_rejection(patch_id: str, digest: str, org: str = COMPLIANCE) -> dict[str, Any]:
    """A genuine rejection statement of ``org``'s approver, as the ledger stores it."""
    signer = who(org, "approver")
    signed = statement(signer, patch_id, "reject", artifact=digest)
    return {"statement": signed, "signer_cert_pem": signer.cert_pem.decode("ascii")}
