"""patchledger's chaincode runtime: a CCaaS server, the shim protocol, a stub and a contract
layer, written on the official Fabric protobuf bindings (see docs/chaincode-runtime.md).
"""

from patchledger.chaincode.runtime.contract import METADATA_FUNCTION, Context, Contract
from patchledger.chaincode.runtime.endorsement import ROLE_MEMBER, ROLE_PEER, KeyEndorsementPolicy
from patchledger.chaincode.runtime.errors import (
    ChaincodeRuntimeError,
    ConfigError,
    ContractError,
    IdentityError,
    PeerError,
    ProtocolError,
    StreamClosedError,
)
from patchledger.chaincode.runtime.handler import Chaincode, MessageStream, PeerSession, Response
from patchledger.chaincode.runtime.identity import ClientIdentity
from patchledger.chaincode.runtime.server import ChaincodeServer, ServerConfig, TLSConfig, serve
from patchledger.chaincode.runtime.stub import (
    KV,
    ChaincodeStub,
    KeyModification,
    PeerFeatures,
    StatePage,
    create_composite_key,
    split_composite_key,
)

__all__ = [
    "KV",
    "METADATA_FUNCTION",
    "ROLE_MEMBER",
    "ROLE_PEER",
    "Chaincode",
    "ChaincodeRuntimeError",
    "ChaincodeServer",
    "ChaincodeStub",
    "ClientIdentity",
    "ConfigError",
    "Context",
    "Contract",
    "ContractError",
    "IdentityError",
    "KeyEndorsementPolicy",
    "KeyModification",
    "MessageStream",
    "PeerError",
    "PeerFeatures",
    "PeerSession",
    "ProtocolError",
    "Response",
    "ServerConfig",
    "StatePage",
    "StreamClosedError",
    "TLSConfig",
    "create_composite_key",
    "serve",
    "split_composite_key",
]
