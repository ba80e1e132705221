"""ReportDeployments writes Deployment records only, without a key-level policy and without a
metadata write: the chaincode's MAJORITY policy governs them, which the peers evaluate once per
transaction instead of once per written key (docs/benchmarks.md, "Host-report throughput"); the
Host records are read, not written, and keep their own policy (the owner's peer AND a
majority). The real network's tests (tests/integration/test_patch_lifecycle.py,
``test_a_report_endorsed_by_one_organization_alone_is_refused_at_commit`` and
``test_a_status_forged_by_a_colluding_majority_is_detected``) perform the attacks."""

from __future__ import annotations

from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.patchledger.bridge import composite_key
from patchledger.chaincode.runtime import PeerFeatures
from patchledger.chaincode.runtime._protos import Msg, chaincode_shim_pb2
from patchledger.chaincode.runtime.endorsement import (
    ROLE_PEER,
    VALIDATION_PARAMETER,
    decode_policy,
    is_satisfied_by,
)
from tests.support.chaincode_runtime import FakePeer
from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, ITOPS, SECOPS
from tests.unit.patchledger_contract.contract_support import scenario
from tests.unit.patchledger_contract.test_prefetch import V31, report_batch

WRITTEN = (Key("Deployment", ("R-1", "h1")), Key("Deployment", ("R-1", "h2")))
HOSTS = (Key("Host", ("h1",)), Key("Host", ("h2",)))


def metadata_writes_of_last_tx(peer: FakePeer) -> tuple[list[str], list[str]]:
    """(keys written, keys whose metadata was written) by the last transaction."""
    txid = [m for m in peer.written if m.type == Msg.COMPLETED][-1].txid
    values: list[str] = []
    metadata: list[str] = []
    kind = chaincode_shim_pb2.WriteRecord
    for m in (m for m in peer.written if m.txid == txid):
        if m.type == Msg.PUT_STATE:
            values.append(chaincode_shim_pb2.PutState.FromString(m.payload).key)
        elif m.type == Msg.PUT_STATE_METADATA:
            metadata.append(chaincode_shim_pb2.PutStateMetadata.FromString(m.payload).key)
        elif m.type == Msg.WRITE_BATCH_STATE:
            for rec in chaincode_shim_pb2.WriteBatchState.FromString(m.payload).rec:
                (values if rec.type == kind.PUT_STATE else metadata).append(rec.key)
    return values, metadata


def test_a_report_batch_writes_deployments_only_without_key_level_policy() -> None:
    for features in (PeerFeatures(), V31):  # one message per write, and write batching
        peer = FakePeer(batch_size=3, features=features)
        out = scenario(report_batch, peer)
        assert out["accepted"] == 3
        values, metadata = metadata_writes_of_last_tx(peer)
        assert sorted(values) == sorted(composite_key(k) for k in WRITTEN)
        assert metadata == []
        for key in WRITTEN:
            assert VALIDATION_PARAMETER not in peer.metadata.get(composite_key(key), {})
        for key in HOSTS:  # not written; their policy stays the owner's peer AND a majority
            rule = decode_policy(peer.metadata[composite_key(key)][VALIDATION_PARAMETER])
            assert str(rule) == "AND('ITOpsMSP.peer', OR('ComplianceMSP.peer', 'SecOpsMSP.peer'))"
            assert not is_satisfied_by(rule, [(ITOPS, ROLE_PEER)])
            assert not is_satisfied_by(rule, [(SECOPS, ROLE_PEER), (COMPLIANCE, ROLE_PEER)])
            assert is_satisfied_by(rule, [(ITOPS, ROLE_PEER), (SECOPS, ROLE_PEER)])
