"""Python Fabric client: identities, Gateway, Fabric CA, events, ledger verification.

Shaped like the official fabric-gateway clients: :func:`connect` returns a :class:`Gateway`,
``gateway.get_network(channel)`` a :class:`Network`, ``network.get_contract(name)`` a
:class:`Contract` with ``evaluate`` / ``submit`` / ``submit_async`` / ``new_proposal``.
Importable without Flask.
"""

from __future__ import annotations

from app.fabric._client import Timeouts
from app.fabric.blocks import ParsedBlock, ParsedTransaction, parse_block
from app.fabric.ca_client import CAClient
from app.fabric.ca_models import (
    Attribute,
    AttributeRequest,
    CAInfo,
    Enrollment,
    RegisteredIdentity,
    RegistrationRequest,
    RevocationResult,
)
from app.fabric.channel import create_channel
from app.fabric.checkpoint import FileCheckpointer, InMemoryCheckpointer
from app.fabric.commit import Commit, Status, SubmittedTransaction
from app.fabric.contract import Contract
from app.fabric.errors import (
    BlockParseError,
    CAError,
    CheckpointError,
    CommitError,
    CommitStatusError,
    EndorseError,
    ErrorDetail,
    EventsError,
    FabricError,
    GatewayError,
    IdentityError,
    SigningError,
    SubmitError,
    WalletError,
)
from app.fabric.event_stream import EventStream
from app.fabric.event_types import ChaincodeEvent
from app.fabric.gateway import Gateway, connect
from app.fabric.identity import Identity
from app.fabric.ledger import Inconsistency, LedgerVerifier, VerificationReport, verify_chain
from app.fabric.network import Network
from app.fabric.proposal import Proposal
from app.fabric.signing import EcdsaSigner, Signer
from app.fabric.transaction import Transaction
from app.fabric.trust import TrustAnchors
from app.fabric.wallet import Wallet

__all__ = [
    "Attribute",
    "AttributeRequest",
    "BlockParseError",
    "CAClient",
    "CAError",
    "CAInfo",
    "ChaincodeEvent",
    "CheckpointError",
    "Commit",
    "CommitError",
    "CommitStatusError",
    "Contract",
    "EcdsaSigner",
    "EndorseError",
    "Enrollment",
    "ErrorDetail",
    "EventStream",
    "EventsError",
    "FabricError",
    "FileCheckpointer",
    "Gateway",
    "GatewayError",
    "Identity",
    "IdentityError",
    "InMemoryCheckpointer",
    "Inconsistency",
    "LedgerVerifier",
    "Network",
    "ParsedBlock",
    "ParsedTransaction",
    "Proposal",
    "RegisteredIdentity",
    "RegistrationRequest",
    "RevocationResult",
    "Signer",
    "SigningError",
    "Status",
    "SubmitError",
    "SubmittedTransaction",
    "Timeouts",
    "Transaction",
    "TrustAnchors",
    "VerificationReport",
    "Wallet",
    "WalletError",
    "connect",
    "create_channel",
    "parse_block",
    "verify_chain",
]
