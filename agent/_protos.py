"""The Fabric protobuf modules the agent parses attestations with, typed as ``Any``
(``fabric_protos`` ships no stubs for its generated modules)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

common_pb2: Any = import_module("fabric_protos.common.common_pb2")
identities_pb2: Any = import_module("fabric_protos.msp.identities_pb2")
chaincode_pb2: Any = import_module("fabric_protos.peer.chaincode_pb2")
proposal_pb2: Any = import_module("fabric_protos.peer.proposal_pb2")
proposal_response_pb2: Any = import_module("fabric_protos.peer.proposal_response_pb2")
rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.rwset_pb2")
kv_rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.kvrwset.kv_rwset_pb2")
