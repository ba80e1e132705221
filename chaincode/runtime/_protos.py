"""The protobuf modules the runtime uses, typed as ``Any``.

``fabric_protos`` ships ``py.typed`` but no stubs for its generated modules (and protobuf has
no stubs installed), so mypy cannot see their message classes. Importing them here, once,
keeps the rest of the runtime type-checked. Message values are annotated with the aliases
below, which document the protobuf type while being ``Any`` for mypy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, TypeAlias


def _load(name: str) -> Any:
    return import_module(name)


common_pb2: Any = _load("fabric_protos.common.common_pb2")
policies_pb2: Any = _load("fabric_protos.common.policies_pb2")
identities_pb2: Any = _load("fabric_protos.msp.identities_pb2")
msp_principal_pb2: Any = _load("fabric_protos.msp.msp_principal_pb2")
kv_query_result_pb2: Any = _load("fabric_protos.ledger.queryresult.kv_query_result_pb2")
chaincode_pb2: Any = _load("fabric_protos.peer.chaincode_pb2")
chaincode_event_pb2: Any = _load("fabric_protos.peer.chaincode_event_pb2")
chaincode_shim_pb2: Any = _load("fabric_protos.peer.chaincode_shim_pb2")
chaincode_shim_pb2_grpc: Any = _load("fabric_protos.peer.chaincode_shim_pb2_grpc")
proposal_pb2: Any = _load("fabric_protos.peer.proposal_pb2")
proposal_response_pb2: Any = _load("fabric_protos.peer.proposal_response_pb2")
timestamp_pb2: Any = _load("google.protobuf.timestamp_pb2")

#: google.protobuf.message.DecodeError (raised by ParseFromString on bad bytes).
DecodeError: type[Exception] = _load("google.protobuf.message").DecodeError

#: protos.ChaincodeMessage, the unit of the shim protocol.
Msg: Any = chaincode_shim_pb2.ChaincodeMessage

ChaincodeMessage: TypeAlias = Any
ProtoMessage: TypeAlias = Any
