"""The Fabric protobuf modules the agent parses attestations with, typed as ``Any``
(``fabric_protos`` ships no stubs for its generated modules).

They come from one of two places:

- the agent's own distribution (``packaging/agent``) ships copies of exactly these generated
  modules and the ones they import, under :data:`VENDORED`, generated at build time from the
  pinned ``hyperledger-fabric-protos``; that distribution therefore needs only ``protobuf``,
  not ``hyperledger-fabric-protos``, which requires ``grpcio`` (for its ``*_pb2_grpc``
  modules, which the agent never uses);
- in the full ``patchledger`` distribution (and the development tree), which has no such
  copies, ``fabric_protos`` itself.

The copies are preferred when present, so an agent-only host never looks at another
installation's ``fabric_protos``.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

#: where the agent's distribution puts its copies of the generated modules
VENDORED = "patchledger.agent._fabric_protos"

#: the generated modules the agent imports (names below ``fabric_protos``); the agent's
#: distribution copies these and everything they import (packaging/agent/setup.py)
MODULES = (
    "common.common_pb2",
    "msp.identities_pb2",
    "peer.chaincode_pb2",
    "peer.proposal_pb2",
    "peer.proposal_response_pb2",
    "ledger.rwset.rwset_pb2",
    "ledger.rwset.kvrwset.kv_rwset_pb2",
)

_ROOT = VENDORED if find_spec(VENDORED) is not None else "fabric_protos"


def _load(name: str) -> Any:
    """The generated module ``fabric_protos.<name>`` from :data:`_ROOT`.

    Raises:
        ModuleNotFoundError: neither the agent's copies nor ``fabric_protos`` is installed.
    """
    return import_module(f"{_ROOT}.{name}")


common_pb2: Any = _load("common.common_pb2")
identities_pb2: Any = _load("msp.identities_pb2")
chaincode_pb2: Any = _load("peer.chaincode_pb2")
proposal_pb2: Any = _load("peer.proposal_pb2")
proposal_response_pb2: Any = _load("peer.proposal_response_pb2")
rwset_pb2: Any = _load("ledger.rwset.rwset_pb2")
kv_rwset_pb2: Any = _load("ledger.rwset.kvrwset.kv_rwset_pb2")
