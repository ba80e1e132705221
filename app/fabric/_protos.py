"""The Fabric protobuf modules used by the client, typed as ``Any``.

``fabric_protos`` ships ``py.typed`` but no stubs for its generated modules, so mypy cannot see
their message classes. Importing them here, once, keeps the rest of the package type-checked.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any


def _load(name: str) -> Any:
    return import_module(name)


common_pb2: Any = _load("fabric_protos.common.common_pb2")
configtx_pb2: Any = _load("fabric_protos.common.configtx_pb2")
gateway_pb2: Any = _load("fabric_protos.gateway.gateway_pb2")
gateway_pb2_grpc: Any = _load("fabric_protos.gateway.gateway_pb2_grpc")
identities_pb2: Any = _load("fabric_protos.msp.identities_pb2")
ab_pb2: Any = _load("fabric_protos.orderer.ab_pb2")
chaincode_pb2: Any = _load("fabric_protos.peer.chaincode_pb2")
chaincode_event_pb2: Any = _load("fabric_protos.peer.chaincode_event_pb2")
events_pb2: Any = _load("fabric_protos.peer.events_pb2")
events_pb2_grpc: Any = _load("fabric_protos.peer.events_pb2_grpc")
proposal_pb2: Any = _load("fabric_protos.peer.proposal_pb2")
proposal_response_pb2: Any = _load("fabric_protos.peer.proposal_response_pb2")
transaction_pb2: Any = _load("fabric_protos.peer.transaction_pb2")
timestamp_pb2: Any = _load("google.protobuf.timestamp_pb2")
any_pb2: Any = _load("google.protobuf.any_pb2")
