"""Build endorsed transactions and signed, hash-chained blocks the way Fabric does.

Used by the fake gateway server and by ledger-verification tests.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

from patchledger.app.fabric._protos import (
    chaincode_event_pb2,
    chaincode_pb2,
    common_pb2,
    configtx_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from patchledger.app.fabric.blockhash import block_header_bytes, block_header_hash, data_hash
from patchledger.app.fabric.transaction_context import (
    TransactionContext,
    build_proposal_bytes,
    now_timestamp,
)
from tests.support.fabric.pki import TestIdentity


def endorse_proposal(
    proposal_bytes: bytes,
    *,
    response_payload: bytes = b"",
    event: tuple[str, bytes] | None = None,
    endorsers: Sequence[TestIdentity] = (),
) -> Any:
    """Return the unsigned ``common.Envelope`` a gateway prepares for a proposal.

    ``event`` is ``(event_name, payload)`` of the chaincode event to include.
    """
    proposal = proposal_pb2.Proposal.FromString(proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    chaincode_event = b""
    if event is not None:
        chaincode_event = chaincode_event_pb2.ChaincodeEvent(
            chaincode_id=extension.chaincode_id.name,
            tx_id=channel_header.tx_id,
            event_name=event[0],
            payload=event[1],
        ).SerializeToString()
    action = proposal_pb2.ChaincodeAction(
        results=b"",
        events=chaincode_event,
        response=proposal_response_pb2.Response(status=200, payload=response_payload),
        chaincode_id=chaincode_pb2.ChaincodeID(name=extension.chaincode_id.name, version="1.0"),
    )
    response_payload_bytes = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=hashlib.sha256(proposal_bytes).digest(),
        extension=action.SerializeToString(),
    ).SerializeToString()
    endorsements = [
        proposal_response_pb2.Endorsement(
            endorser=e.identity.creator,
            signature=e.signer.sign_message(response_payload_bytes + e.identity.creator),
        )
        for e in endorsers
    ]
    stripped = proposal_pb2.ChaincodeProposalPayload(input=payload.input)  # no TransientMap
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=stripped.SerializeToString(),
        action=transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=response_payload_bytes, endorsements=endorsements
        ),
    )
    transaction = transaction_pb2.Transaction(
        actions=[
            transaction_pb2.TransactionAction(
                header=header.signature_header, payload=action_payload.SerializeToString()
            )
        ]
    )
    envelope_payload = common_pb2.Payload(header=header, data=transaction.SerializeToString())
    return common_pb2.Envelope(payload=envelope_payload.SerializeToString())


def config_envelope(channel: str, signer: TestIdentity | None = None) -> bytes:
    """A CONFIG envelope; unsigned (as configtxgen writes genesis) unless ``signer`` is given."""
    creator = signer.identity.creator if signer else b""
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.CONFIG, channel_id=channel, timestamp=now_timestamp()
    )
    signature_header = common_pb2.SignatureHeader(
        creator=creator, nonce=os.urandom(24) if signer else b""
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ),
        data=configtx_pb2.ConfigEnvelope().SerializeToString(),
    ).SerializeToString()
    signature = signer.signer.sign_message(payload) if signer else b""
    return bytes(common_pb2.Envelope(payload=payload, signature=signature).SerializeToString())


class ChainBuilder:
    """Appends blocks to a chain: hashes linked, data hashed, orderer-signed metadata."""

    def __init__(self, channel: str, orderers: Sequence[TestIdentity] = ()) -> None:
        self.channel = channel
        self.orderers = list(orderers)
        self.blocks: list[Any] = []

    def genesis(self) -> Any:
        """Append block 0 holding an unsigned config envelope (no orderer signature)."""
        if self.blocks:
            raise RuntimeError("the chain already has a genesis block")
        return self._append([config_envelope(self.channel)], [0], sign=False)

    def add(self, envelopes: Sequence[bytes], codes: Sequence[int] | None = None) -> Any:
        """Append a block of envelopes with their validation codes (default all VALID)."""
        if not self.blocks:
            self.genesis()
        return self._append(list(envelopes), list(codes or [0] * len(envelopes)), sign=True)

    def _append(self, envelopes: list[bytes], codes: list[int], *, sign: bool) -> Any:
        previous = block_header_hash(self.blocks[-1].header) if self.blocks else b""
        block = common_pb2.Block(
            header=common_pb2.BlockHeader(
                number=len(self.blocks), previous_hash=previous, data_hash=data_hash(envelopes)
            ),
            data=common_pb2.BlockData(data=envelopes),
        )
        metadata = [b""] * len(common_pb2.BlockMetadataIndex.keys())
        metadata[common_pb2.TRANSACTIONS_FILTER] = bytes(codes)
        signatures = common_pb2.Metadata(value=b"")
        if sign:
            for orderer in self.orderers:
                signatures.signatures.append(sign_block(block, orderer, signatures.value))
        metadata[common_pb2.SIGNATURES] = signatures.SerializeToString()
        block.metadata.metadata.extend(metadata)
        self.blocks.append(block)
        return block


def sign_block(block: Any, orderer: TestIdentity, value: bytes = b"") -> Any:
    """Return an orderer ``MetadataSignature`` over ``value + signature_header + header``."""
    signature_header = common_pb2.SignatureHeader(
        creator=orderer.identity.creator, nonce=os.urandom(24)
    ).SerializeToString()
    message = value + signature_header + block_header_bytes(block.header)
    return common_pb2.MetadataSignature(
        signature_header=signature_header, signature=orderer.signer.sign_message(message)
    )


def signed_transaction(
    creator: TestIdentity,
    *,
    channel: str,
    chaincode: str,
    function: str,
    arguments: Sequence[bytes] = (),
    event: tuple[str, bytes] | None = None,
    endorsers: Sequence[TestIdentity] = (),
) -> bytes:
    """A complete signed endorser-transaction envelope, for building test chains."""

    context = TransactionContext.new(creator.identity.creator)
    proposal = build_proposal_bytes(
        context,
        channel=channel,
        chaincode=chaincode,
        transaction_name=function,
        arguments=list(arguments),
    )
    envelope = endorse_proposal(proposal, event=event, endorsers=endorsers)
    envelope.signature = creator.signer.sign_message(envelope.payload)
    return bytes(envelope.SerializeToString())
