"""A simulated ledger for tests and the benchmark: transactions run through the real pure
lifecycle core (``chaincode/lifecycle``) over an in-memory world state, and each becomes an
endorser-transaction envelope whose read-write set holds exactly the core's writes (composite
keys, canonical JSON) and whose chaincode event is the contract's, as the peer would put it
in a block. Envelopes are not signed (projection does not verify signatures; ledger
verification is ``app.fabric.ledger``'s job).

Blocks are cut by :class:`tests.support.fabric.blocks.ChainBuilder` (hash-chained)
or appended to a :class:`~tests.support.fabric.fake_gateway.FakeGateway` (served over Deliver).
:attr:`SimulatedLedger.history` is the ledger's truth to compare the read model with.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import import_module
from typing import Any

from patchledger.app.fabric._protos import (
    chaincode_event_pb2,
    chaincode_pb2,
    common_pb2,
    proposal_pb2,
    proposal_response_pb2,
    timestamp_pb2,
    transaction_pb2,
)
from patchledger.app.fabric.blocks import ParsedBlock, parse_block
from patchledger.app.fabric.event_stream import EventStream
from patchledger.app.fabric.transaction_context import TransactionContext
from patchledger.app.readmodel.decode import split_key
from patchledger.chaincode.lifecycle.identity import Caller, Role
from patchledger.chaincode.lifecycle.ledger import Change, MemoryStore, TxLedger, event_payload
from patchledger.chaincode.lifecycle.ops import policies, vulnerabilities
from patchledger.chaincode.lifecycle.ops.patches import propose_patch
from patchledger.chaincode.lifecycle.record import Key
from tests.support.fabric.blocks import ChainBuilder
from tests.support.fabric.pki import TestCA, TestIdentity
from tests.unit.lifecycle.lifecycle_support import DAY, ORGS, TRUST, consents, policy_data

rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.rwset_pb2")
kv_rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.kvrwset.kv_rwset_pb2")

START_TIME = 1_764_576_000  # 2025-12-01T08:00:00Z


def composite_key(key: Key) -> str:
    """Fabric's composite key of a core key: U+0000, the type and each part, each followed
    by U+0000."""
    return "\x00" + "".join(p + "\x00" for p in (key.record_type, *key.parts))


def policy_document() -> dict[str, Any]:
    """A valid three-organization policy for ``InitLedger`` (the lifecycle tests' policy)."""
    return policy_data()


@dataclass
class SimulatedLedger:
    """World state, the history of every key, and envelopes waiting for a block.

    ``history[(record_type, record_id)]`` lists ``(tx_id, json or None)`` for each VALID
    write, oldest first.
    """

    channel: str = "patchledger"
    chaincode: str = "patchledger"
    store: MemoryStore = field(default_factory=MemoryStore)
    history: dict[tuple[str, str], list[tuple[str, str | None]]] = field(default_factory=dict)
    pending: list[bytes] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    clock: int = START_TIME
    identities: dict[str, TestIdentity] = field(default_factory=dict)

    def identity(self, msp_id: str) -> TestIdentity:
        """A CA-issued member of ``msp_id`` (one per organization, made on first use)."""
        if msp_id not in self.identities:
            ca = TestCA(msp_id)
            self.identities[msp_id] = ca.issue(f"user.{msp_id.lower()}")
        return self.identities[msp_id]

    def run(
        self,
        msp_id: str,
        role: Role,
        function: str,
        operation: Callable[[TxLedger], list[Change]],
        arguments: Sequence[str] = (),
        *,
        code: int = 0,
        context: TransactionContext | None = None,
    ) -> str:
        """Run ``operation`` as a member of ``msp_id`` with ``role``; queue its envelope for
        the next block with validation ``code`` (not 0: committed invalid, its writes are
        not applied); return the tx id (``context``'s, when given: see :meth:`prepare`).

        Raises:
            LifecycleError: the core refused the operation (nothing queued).
        """
        ident = self.identity(msp_id)
        context = context or self.prepare(msp_id)
        self.clock += 1
        caller = Caller(msp_id, role, f"user.{msp_id.lower()}", ident.identity.credentials)
        tx = TxLedger(self.store, caller, self.clock, context.transaction_id)
        changes = operation(tx)
        writes: dict[str, bytes | None] = {composite_key(k): v for k, v in tx.writes.items()}
        envelope = self._envelope(context, function, arguments, writes, changes)
        if code == 0:
            tx.commit()
        self.pending.append(envelope)
        self.codes.append(code)
        if code == 0:
            for key, value in _keys_of(writes):
                self.history.setdefault(key, []).append((context.transaction_id, value))
        return context.transaction_id

    def prepare(self, msp_id: str) -> TransactionContext:
        """A fresh transaction context (its tx id is known before the transaction runs)."""
        return TransactionContext.new(self.identity(msp_id).identity.creator)

    def write_raw(self, msp_id: str, function: str, writes: dict[str, bytes | None]) -> str:
        """Queue a VALID transaction with arbitrary writes (``None``: delete), bypassing the
        core (records of unknown types, deletes, simple keys, malformed values, records set
        up directly); composite-key writes reach the world state too."""
        ident = self.identity(msp_id)
        context = TransactionContext.new(ident.identity.creator)
        self.clock += 1
        self.pending.append(self._envelope(context, function, (), writes, []))
        self.codes.append(0)
        for raw_key, value in writes.items():
            if raw_key.startswith("\x00"):
                parts = raw_key[1:-1].split("\x00")
                state_key = Key(parts[0], tuple(parts[1:]))
                if value is None:
                    self.store.data.pop(state_key, None)
                else:
                    self.store.put(state_key, value)
        for key, text in _keys_of(writes):
            self.history.setdefault(key, []).append((context.transaction_id, text))
        return context.transaction_id

    def take(self) -> tuple[list[bytes], list[int]]:
        """The queued envelopes and their codes (the next block's content), emptied."""
        envelopes, codes = self.pending, self.codes
        self.pending, self.codes = [], []
        return envelopes, codes

    # ------------------------------------------------------------------ scripted steps

    def init_ledger(self) -> str:
        """``InitLedger`` as the SecOps admin, with the consents of SecOps' and ITOps' admins
        (the lifecycle tests' organization roots)."""
        doc = policy_document()
        signed = consents(doc, channel=self.channel, expires_at=self.clock + DAY)
        return self.run(
            "SecOpsMSP", Role.ADMIN, "InitLedger",
            lambda tx: policies.bootstrap_policy(tx, doc, signed, channel_id=self.channel,
                                                 channel_orgs=ORGS, trust=TRUST),
            [json.dumps(doc), json.dumps(signed)])

    def record_vulnerability(self, vuln_id: str, severity: str = "high", **extra: Any) -> str:
        """``RecordVulnerability`` as a SecOps feed identity."""
        data = {"vuln_id": vuln_id, "severity": severity, "title": f"{vuln_id} title",
                "sources": [{"name": "nvd", "reference": vuln_id}], **extra}
        return self.run("SecOpsMSP", Role.FEED, "RecordVulnerability",
                        lambda tx: vulnerabilities.record_vulnerability(tx, data),
                        [json.dumps(data)])

    def assess(self, vuln_id: str, status: str, msp_id: str = "ITOpsMSP") -> str:
        """``AssessVulnerability`` as an operator of ``msp_id``."""
        return self.run(msp_id, Role.OPERATOR, "AssessVulnerability",
                        lambda tx: vulnerabilities.assess_vulnerability(tx, vuln_id, status),
                        [vuln_id, status])

    def propose_patch(self, patch_id: str, fixes: Sequence[str]) -> str:
        """``ProposePatch`` as a SecOps operator."""
        data = {"patch_id": patch_id, "title": f"fix {', '.join(fixes)}", "vendor": "Debian",
                "artifact_sha256": "ab" * 32, "artifact_size": 1024,
                "artifact_uri": f"https://artifacts.example/{patch_id}",
                "fixes": list(fixes), "targets": ["pkg:deb/debian/xz-utils"]}
        return self.run("SecOpsMSP", Role.OPERATOR, "ProposePatch",
                        lambda tx: propose_patch(tx, data), [json.dumps(data)])

    # ------------------------------------------------------------------ envelopes

    def _envelope(
        self,
        context: TransactionContext,
        function: str,
        arguments: Sequence[str],
        writes: dict[str, bytes | None],
        changes: list[Change],
    ) -> bytes:
        chaincode_id = chaincode_pb2.ChaincodeID(name=self.chaincode, version="1.0")
        extension = proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id)
        channel_header = common_pb2.ChannelHeader(
            type=common_pb2.ENDORSER_TRANSACTION,
            channel_id=self.channel,
            tx_id=context.transaction_id,
            timestamp=timestamp_pb2.Timestamp(seconds=self.clock, nanos=0),
            extension=extension.SerializeToString(),
        )
        header = common_pb2.Header(channel_header=channel_header.SerializeToString(),
                                   signature_header=context.signature_header())
        kv = kv_rwset_pb2.KVRWSet(writes=[
            kv_rwset_pb2.KVWrite(key=k, is_delete=v is None, value=v or b"")
            for k, v in sorted(writes.items())  # the peer sorts a write set by key
        ])
        rwset = rwset_pb2.TxReadWriteSet(
            data_model=rwset_pb2.TxReadWriteSet.KV,
            ns_rwset=[rwset_pb2.NsReadWriteSet(namespace=self.chaincode,
                                               rwset=kv.SerializeToString())],
        )
        event = b""
        if changes:
            event = chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=self.chaincode, tx_id=context.transaction_id,
                event_name="patchledger", payload=event_payload(changes),
            ).SerializeToString()
        action = proposal_pb2.ChaincodeAction(
            results=rwset.SerializeToString(), events=event,
            response=proposal_response_pb2.Response(status=200), chaincode_id=chaincode_id,
        )
        response_payload = proposal_response_pb2.ProposalResponsePayload(
            extension=action.SerializeToString())
        spec = chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_id,
            input=chaincode_pb2.ChaincodeInput(
                args=[function.encode(), *(a.encode() for a in arguments)]),
        )
        proposal_payload = proposal_pb2.ChaincodeProposalPayload(
            input=chaincode_pb2.ChaincodeInvocationSpec(chaincode_spec=spec).SerializeToString())
        action_payload = transaction_pb2.ChaincodeActionPayload(
            chaincode_proposal_payload=proposal_payload.SerializeToString(),
            action=transaction_pb2.ChaincodeEndorsedAction(
                proposal_response_payload=response_payload.SerializeToString()),
        )
        transaction = transaction_pb2.Transaction(actions=[transaction_pb2.TransactionAction(
            header=header.signature_header, payload=action_payload.SerializeToString())])
        payload = common_pb2.Payload(header=header, data=transaction.SerializeToString())
        return bytes(common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString())


def _keys_of(writes: dict[str, bytes | None]) -> list[tuple[tuple[str, str], str | None]]:
    return [(split_key(k), None if v is None else v.decode("utf-8", "replace"))
            for k, v in sorted(writes.items())]


def build_chain(ledger: SimulatedLedger, steps: Sequence[Callable[[], Any]],
                per_block: int) -> ChainBuilder:
    """Run ``steps`` on ``ledger``, cutting a block every ``per_block`` transactions, into a
    hash-chained :class:`ChainBuilder` (genesis block first)."""
    chain = ChainBuilder(ledger.channel)
    chain.genesis()
    for i, step in enumerate(steps, 1):
        step()
        if i % per_block == 0:
            chain.add(*ledger.take())
    if ledger.pending:
        chain.add(*ledger.take())
    return chain


class _Call:
    """A finished "stream" over a list of blocks, shaped like a gRPC call (iterable,
    cancellable)."""

    def __init__(self, blocks: Sequence[Any]) -> None:
        self._blocks = iter(blocks)

    def __iter__(self) -> Any:
        return self._blocks

    def cancel(self) -> None:
        self._blocks = iter(())


@dataclass
class ChainSource:
    """A :class:`~patchledger.app.readmodel.projector.BlockSource` over recorded blocks
    (``common.Block`` messages), without a peer: for the benchmark and offline rebuilds."""

    blocks: Sequence[Any]
    name: str = "patchledger"

    def get_block_events(self, *, start_block: int | None = None) -> EventStream[ParsedBlock]:
        """The recorded blocks from ``start_block`` on (then the end: nothing is committed)."""
        return self.read_blocks(start_block or 0)

    def read_blocks(
        self, start_block: int = 0, stop_block: int | None = None
    ) -> EventStream[ParsedBlock]:
        """Blocks ``start_block`` to ``stop_block`` (default: the last), parsed."""
        stop = len(self.blocks) - 1 if stop_block is None else stop_block
        selected = self.blocks[start_block:stop + 1]
        return EventStream(_Call(selected), lambda it: (parse_block(b) for b in it),
                           "recorded blocks")


def mixed_steps(ledger: SimulatedLedger, count: int) -> list[Callable[[], Any]]:
    """``count`` transactions of the read-model benchmark's mix (per 20: 8 new
    vulnerabilities, 3 changing re-recordings, 3 assessments, 2 patch proposals, 3 host
    enrollments with a real certificate, 1 deployment batch of 20 records), as steps for
    :func:`build_chain`."""
    cert = TestCA("ITOpsMSP").issue("host").identity.credentials.decode()
    steps: list[Callable[[], Any]] = [ledger.init_ledger]
    vulns: list[str] = []
    hosts = 0
    rollout = 0
    while len(steps) < count:
        n = len(steps)
        slot = n % 20
        if slot < 8 or not vulns:
            vuln = f"CVE-2025-{len(vulns):06d}"
            vulns.append(vuln)
            steps.append(partial(ledger.record_vulnerability, vuln, severity="high",
                                 cvss_score="7.5"))
        elif slot < 11:
            steps.append(partial(ledger.record_vulnerability, vulns[(n * 7) % len(vulns)],
                                 severity="critical", known_exploited=True))
        elif slot < 14:
            steps.append(partial(_assess, ledger, vulns[(n * 13) % len(vulns)]))
        elif slot < 16:
            steps.append(partial(ledger.propose_patch, f"P-{n}", [vulns[-1]]))
        elif slot < 19:
            hosts += 1
            steps.append(partial(_host, ledger, f"h-{hosts:06d}", cert))
        else:
            rollout += 1
            steps.append(partial(_deployments, ledger, f"R-{rollout}"))
    return steps[:count]


def _assess(ledger: SimulatedLedger, vuln: str) -> None:
    record = json.loads(ledger.store.get(_key("Vulnerability", vuln)) or b"{}")
    target = "NOT_AFFECTED" if record.get("status") == "OPEN" else "OPEN"
    ledger.assess(vuln, target)


def _key(record_type: str, *parts: str) -> Key:
    return Key(record_type, parts)


def _host(ledger: SimulatedLedger, host_id: str, cert: str) -> None:
    record = {"record_type": "Host", "schema_version": 1, "host_id": host_id,
              "owner_msp": "ITOpsMSP", "cert_pem": cert, "groups": ["web"],
              "inventory_sha256": "0" * 64, "last_report_sequence": 0, "status": "ENROLLED",
              "maintenance_window": "", "updated_at": ledger.clock, "updated_by": "ITOpsMSP"}
    ledger.write_raw("ITOpsMSP", "EnrollHost", {
        f"\x00Host\x00{host_id}\x00": json.dumps(record, sort_keys=True).encode()})


def _deployments(ledger: SimulatedLedger, rollout_id: str) -> None:
    writes: dict[str, bytes | None] = {}
    for i in range(20):
        host = f"h-{i:06d}"
        record = {"record_type": "Deployment", "schema_version": 1, "rollout_id": rollout_id,
                  "host_id": host, "patch_id": "P-1", "owner_msp": "ITOpsMSP", "wave": 0,
                  "status": "APPLIED", "report_sequence": 1, "detail": "installed",
                  "updated_at": ledger.clock, "updated_by": "ITOpsMSP"}
        writes[f"\x00Deployment\x00{rollout_id}\x00{host}\x00"] = json.dumps(
            record, sort_keys=True).encode()
    ledger.write_raw("ITOpsMSP", "ReportDeployments", writes)
