"""Python Fabric client: identities, Gateway, Fabric CA, events, ledger verification.

Shaped like the official fabric-gateway clients: :func:`connect` returns a :class:`Gateway`,
``gateway.get_network(channel)`` a :class:`Network`, ``network.get_contract(name)`` a
:class:`Contract` with ``evaluate`` / ``submit`` / ``submit_async`` / ``new_proposal``.
Importable without Flask.
"""

from __future__ import annotations

from patchledger.app.fabric._client import Timeouts
from patchledger.app.fabric.blocks import ParsedBlock, ParsedTransaction, parse_block
from patchledger.app.fabric.ca_client import CAClient
from patchledger.app.fabric.ca_models import (
    Attribute,
    AttributeRequest,
    CAInfo,
    Enrollment,
    RegisteredIdentity,
    RegistrationRequest,
    RevocationResult,
)
from patchledger.app.fabric.channel import create_channel
from patchledger.app.fabric.checkpoint import FileCheckpointer, InMemoryCheckpointer
from patchledger.app.fabric.commit import Commit, Status, SubmittedTransaction
from patchledger.app.fabric.contract import Contract
from patchledger.app.fabric.errors import (
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
    MessageParseError,
    SigningError,
    SubmitError,
    WalletError,
)
from patchledger.app.fabric.event_stream import EventStream
from patchledger.app.fabric.event_types import ChaincodeEvent
from patchledger.app.fabric.gateway import Gateway, connect
from patchledger.app.fabric.identity import Identity
from patchledger.app.fabric.ledger import (
    Inconsistency,
    LedgerVerifier,
    VerificationReport,
    verify_chain,
)
from patchledger.app.fabric.network import Network
from patchledger.app.fabric.proposal import Proposal, ProposalOptions
from patchledger.app.fabric.signing import EcdsaSigner, Signer
from patchledger.app.fabric.transaction import Transaction
from patchledger.app.fabric.trust import TrustAnchors
from patchledger.app.fabric.wallet import Wallet

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
    "MessageParseError",
    "Network",
    "ParsedBlock",
    "ParsedTransaction",
    "Proposal",
    "ProposalOptions",
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
