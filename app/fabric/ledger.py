"""Ledger verification for auditors: hash chain, data hashes, orderer and creator signatures.

The verification is pure: :class:`LedgerVerifier` takes ``common.Block`` messages (from the
Deliver service, a file, or built by a test) and :class:`TrustAnchors`, and reports the first
inconsistency precisely (block number, transaction, which check failed). Checks per block:

1. ``number`` follows the previous block's;
2. ``previous_hash`` equals the hash of the previous header (ASN.1 DER, as Fabric computes);
3. ``data_hash`` equals SHA-256 of the concatenated envelopes;
4. orderer signatures in ``metadata[SIGNATURES]``: each signs ``value + signature_header +
   header`` with a certificate issued by an orderer MSP's CA; at least
   ``min_orderer_signatures`` valid ones on every block but the genesis block;
5. every envelope is signed by its creator (low-S ECDSA over the payload) whose certificate
   was issued by its MSP's CA (the unsigned genesis config envelope excepted);
6. every endorsement of an endorser transaction is a valid signature of an MSP member.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from patchledger.app.fabric._protos import common_pb2, transaction_pb2
from patchledger.app.fabric.blockhash import block_header_bytes, block_header_hash, data_hash
from patchledger.app.fabric.errors import IdentityError
from patchledger.app.fabric.identity import load_certificate, parse_serialized_identity
from patchledger.app.fabric.signing import verify_signature
from patchledger.app.fabric.trust import TrustAnchors


@dataclass(frozen=True)
class Inconsistency:
    """The first thing found wrong in the chain.

    Attributes:
        block_number: the block where it was found.
        check: ``block_number``, ``previous_hash``, ``data_hash``, ``orderer_signature``,
            ``creator_signature``, ``creator_certificate``, ``endorsement`` or ``malformed``.
        message: what exactly failed.
        transaction_index: the envelope's index in the block, for transaction checks.
        transaction_id: the transaction id, for transaction checks.
    """

    block_number: int
    check: str
    message: str
    transaction_index: int | None = None
    transaction_id: str = ""

    def __str__(self) -> str:
        where = f"block {self.block_number}"
        if self.transaction_index is not None:
            where += f", transaction {self.transaction_index}"
            if self.transaction_id:
                where += f" ({self.transaction_id})"
        return f"{where}: {self.check}: {self.message}"


@dataclass(frozen=True)
class VerificationReport:
    """The outcome of verifying a chain segment."""

    blocks_checked: int
    transactions_checked: int
    last_block_number: int | None
    last_block_hash: bytes
    inconsistency: Inconsistency | None

    @property
    def ok(self) -> bool:
        """True when no inconsistency was found."""
        return self.inconsistency is None


class _Failed(Exception):
    def __init__(self, inconsistency: Inconsistency) -> None:
        super().__init__(str(inconsistency))
        self.inconsistency = inconsistency


class LedgerVerifier:
    """Verifies blocks one after the other, remembering the previous header hash.

    Args:
        anchors: the trusted CAs per MSP and the orderer MSPs.
        previous_hash: to verify a segment that does not start at genesis, the hash of the
            header before it (taken from a trusted source); ``None`` at genesis.
        expected_number: the number of the first block to verify.
    """

    def __init__(
        self, anchors: TrustAnchors, *, previous_hash: bytes | None = None, expected_number: int = 0
    ) -> None:
        self._anchors = anchors
        self._previous_hash = previous_hash
        self._expected = expected_number
        self.blocks_checked = 0
        self.transactions_checked = 0

    @property
    def last_block_hash(self) -> bytes:
        """The header hash of the last verified block (b"" before any)."""
        return self._previous_hash or b""

    def verify_block(self, block: Any) -> Inconsistency | None:
        """Verify the next block; return the first inconsistency, or ``None``."""
        number = int(block.header.number) if block.HasField("header") else self._expected
        try:
            self._check_block(block, number)
        except _Failed as failed:
            return failed.inconsistency
        self._previous_hash = block_header_hash(block.header)
        self._expected = number + 1
        self.blocks_checked += 1
        return None

    def _check_block(self, block: Any, number: int) -> None:
        def fail(check: str, message: str) -> _Failed:
            return _Failed(Inconsistency(number, check, message))

        if not block.HasField("header"):
            raise fail("malformed", "block has no header")
        if number != self._expected:
            raise fail("block_number", f"expected block {self._expected}, got {number}")
        previous = bytes(block.header.previous_hash)
        expected_previous = self._previous_hash or b""
        if (number > 0 or self._previous_hash is not None) and previous != expected_previous:
            raise fail(
                "previous_hash",
                f"previous_hash {previous.hex()} != hash of block {number - 1} header "
                f"{expected_previous.hex()}",
            )
        computed = data_hash(block.data.data)
        if bytes(block.header.data_hash) != computed:
            raise fail(
                "data_hash",
                f"header data_hash {bytes(block.header.data_hash).hex()} != SHA-256 of the "
                f"block data {computed.hex()}",
            )
        self._check_orderer_signatures(block, number)
        for index, envelope_bytes in enumerate(block.data.data):
            self._check_envelope(envelope_bytes, number, index)
            self.transactions_checked += 1

    def _check_orderer_signatures(self, block: Any, number: int) -> None:
        metadata_list = block.metadata.metadata
        raw = metadata_list[common_pb2.SIGNATURES] if len(metadata_list) > 0 else b""
        try:
            metadata = common_pb2.Metadata.FromString(raw)
        except Exception as exc:
            raise _Failed(
                Inconsistency(number, "malformed", f"SIGNATURES metadata: {exc}")
            ) from exc
        header = block_header_bytes(block.header)
        signers: set[bytes] = set()
        for position, entry in enumerate(metadata.signatures):
            if not entry.signature_header:
                continue  # BFT identifier headers need the consenter set; not verifiable here
            problem, cert = self._check_metadata_signature(entry, metadata.value, header)
            if problem:
                raise _Failed(
                    Inconsistency(number, "orderer_signature", f"signature {position}: {problem}")
                )
            signers.add(cert)
        required = self._anchors.min_orderer_signatures if number > 0 else 0
        if len(signers) < required:
            raise _Failed(
                Inconsistency(
                    number,
                    "orderer_signature",
                    f"{len(signers)} valid orderer signature(s), {required} required",
                )
            )

    def _check_metadata_signature(
        self, entry: Any, value: bytes, header: bytes
    ) -> tuple[str, bytes]:
        try:
            signature_header = common_pb2.SignatureHeader.FromString(entry.signature_header)
            msp_id, cert = parse_serialized_identity(signature_header.creator)
        except Exception as exc:
            return f"malformed signature header: {exc}", b""
        if msp_id not in self._anchors.orderer_msp_ids:
            return f"signed by {msp_id}, which is not an orderer MSP", cert
        if not self._anchors.issued_by_msp(msp_id, cert):
            return f"signer certificate not issued by a {msp_id} CA", cert
        message = bytes(value) + bytes(entry.signature_header) + header
        if not self._verify(cert, message, bytes(entry.signature)):
            return f"invalid signature by {msp_id} ({_subject(cert)})", cert
        return "", cert

    def _check_envelope(self, data: bytes, number: int, index: int) -> None:
        tx_id = ""

        def fail(check: str, message: str) -> _Failed:
            return _Failed(Inconsistency(number, check, message, index, tx_id))

        try:
            envelope = common_pb2.Envelope.FromString(data)
            payload = common_pb2.Payload.FromString(envelope.payload)
            channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            signature_header = common_pb2.SignatureHeader.FromString(
                payload.header.signature_header
            )
        except Exception as exc:
            raise fail("malformed", f"envelope: {exc}") from exc
        tx_id = str(channel_header.tx_id)
        if not envelope.signature and not signature_header.creator and number == 0:
            return  # the genesis config envelope is written unsigned by configtxgen
        try:
            msp_id, cert = parse_serialized_identity(signature_header.creator)
        except IdentityError as exc:
            raise fail("creator_certificate", str(exc)) from exc
        if not self._anchors.issued_by_msp(msp_id, cert):
            raise fail("creator_certificate", f"creator certificate not issued by a {msp_id} CA")
        if not self._verify(cert, bytes(envelope.payload), bytes(envelope.signature)):
            raise fail("creator_signature", f"invalid signature by {msp_id} ({_subject(cert)})")
        if channel_header.type == common_pb2.ENDORSER_TRANSACTION:
            problem = self._check_endorsements(bytes(payload.data))
            if problem:
                raise fail("endorsement", problem)

    def _check_endorsements(self, data: bytes) -> str:
        try:
            transaction = transaction_pb2.Transaction.FromString(data)
            actions = [
                transaction_pb2.ChaincodeActionPayload.FromString(a.payload).action
                for a in transaction.actions
            ]
        except Exception as exc:
            return f"malformed transaction: {exc}"
        for action in actions:
            for position, endorsement in enumerate(action.endorsements):
                try:
                    msp_id, cert = parse_serialized_identity(endorsement.endorser)
                except IdentityError as exc:
                    return f"endorsement {position}: {exc}"
                if not self._anchors.issued_by_msp(msp_id, cert):
                    return f"endorsement {position}: endorser not issued by a {msp_id} CA"
                message = bytes(action.proposal_response_payload) + bytes(endorsement.endorser)
                if not self._verify(cert, message, bytes(endorsement.signature)):
                    return f"endorsement {position}: invalid signature by {msp_id}"
        return ""

    @staticmethod
    def _verify(cert_pem: bytes, message: bytes, signature: bytes) -> bool:
        try:
            cert = load_certificate(cert_pem)
        except IdentityError:
            return False
        return verify_signature(cert, message, signature)


def verify_chain(
    blocks: Iterable[Any],
    anchors: TrustAnchors,
    *,
    previous_hash: bytes | None = None,
    expected_number: int = 0,
) -> VerificationReport:
    """Verify blocks in order and stop at the first inconsistency.

    Args:
        blocks: ``common.Block`` messages, consecutive, starting at ``expected_number``.
        anchors: the trusted CAs.
        previous_hash: header hash of the block before the first one (``None`` at genesis).
        expected_number: the first block's number.

    Returns:
        a report; ``report.inconsistency`` names the first failure, if any.
    """
    verifier = LedgerVerifier(anchors, previous_hash=previous_hash, expected_number=expected_number)
    last: int | None = None
    for block in blocks:
        found = verifier.verify_block(block)
        if found is not None:
            return VerificationReport(
                verifier.blocks_checked,
                verifier.transactions_checked,
                last,
                verifier.last_block_hash,
                found,
            )
        last = int(block.header.number)
    return VerificationReport(
        verifier.blocks_checked, verifier.transactions_checked, last, verifier.last_block_hash, None
    )


def _subject(cert_pem: bytes) -> str:
    try:
        return load_certificate(cert_pem).subject.rfc4514_string()
    except IdentityError:
        return "unparsable certificate"
