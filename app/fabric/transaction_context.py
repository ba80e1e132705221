"""Transaction ids and proposal construction, exactly as Fabric's endorser checks them.

``tx_id = hex(SHA-256(nonce + creator))`` with a 24-byte random nonce; the proposal nests
``ChannelHeader`` / ``SignatureHeader`` / ``ChaincodeProposalPayload`` serialisations as
described in the Gateway protocol reference (section 2).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from patchledger.app.fabric._protos import (
    chaincode_pb2,
    common_pb2,
    proposal_pb2,
    timestamp_pb2,
)

NONCE_LENGTH = 24

#: A chaincode argument: ``str`` is sent UTF-8 encoded, ``bytes`` as is.
Argument = str | bytes


def compute_transaction_id(nonce: bytes, creator: bytes) -> str:
    """Return Fabric's transaction id: lower-case hex SHA-256 of ``nonce + creator``."""
    return hashlib.sha256(nonce + creator).hexdigest()


@dataclass(frozen=True)
class TransactionContext:
    """The nonce and transaction id of one proposal, and its signature header."""

    nonce: bytes
    creator: bytes
    transaction_id: str

    @classmethod
    def new(cls, creator: bytes, nonce: bytes | None = None) -> TransactionContext:
        """Create a context with a fresh 24-byte nonce (or the one given, for tests)."""
        nonce = os.urandom(NONCE_LENGTH) if nonce is None else nonce
        if not nonce or not creator:
            raise ValueError("a transaction context needs a non-empty nonce and creator")
        return cls(nonce, creator, compute_transaction_id(nonce, creator))

    def signature_header(self) -> bytes:
        """Serialised ``common.SignatureHeader{creator, nonce}``."""
        header = common_pb2.SignatureHeader(creator=self.creator, nonce=self.nonce)
        return bytes(header.SerializeToString())


def encode_argument(arg: Argument) -> bytes:
    """Encode one chaincode argument."""
    return arg.encode("utf-8") if isinstance(arg, str) else bytes(arg)


def now_timestamp() -> object:
    """The current UTC time as a ``google.protobuf.Timestamp``."""
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def build_proposal_bytes(
    context: TransactionContext,
    *,
    channel: str,
    chaincode: str,
    transaction_name: str,
    arguments: Sequence[Argument] = (),
    transient_data: Mapping[str, bytes] | None = None,
) -> bytes:
    """Serialise a ``protos.Proposal`` invoking ``transaction_name`` on ``chaincode``.

    Raises:
        ValueError: empty channel, chaincode or transaction name.
    """
    if not channel or not chaincode or not transaction_name:
        raise ValueError("channel, chaincode and transaction name must be non-empty")
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode)
    extension = proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION,
        channel_id=channel,
        tx_id=context.transaction_id,
        timestamp=now_timestamp(),
        epoch=0,
        extension=extension.SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=context.signature_header(),
    )
    chaincode_input = chaincode_pb2.ChaincodeInput(
        args=[transaction_name.encode("utf-8"), *(encode_argument(a) for a in arguments)]
    )
    spec = chaincode_pb2.ChaincodeSpec(chaincode_id=chaincode_id, input=chaincode_input)
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=chaincode_pb2.ChaincodeInvocationSpec(chaincode_spec=spec).SerializeToString(),
        TransientMap=dict(transient_data or {}),
    )
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
    return bytes(proposal.SerializeToString())
