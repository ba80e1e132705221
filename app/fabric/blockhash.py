"""Block header and data hashes exactly as Fabric computes them (``protoutil/blockutils.go``).

The header hash is SHA-256 of the ASN.1 DER encoding of
``SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash }``; the data
hash is SHA-256 of the plain concatenation of the block's envelopes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("block numbers are unsigned")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # room for a sign bit
    while len(body) > 1 and body[0] == 0 and body[1] < 0x80:
        body = body[1:]
    return _der_tlv(0x02, body)


def header_bytes(number: int, previous_hash: bytes, data_hash: bytes) -> bytes:
    """Return the DER encoding of a block header, as hashed by Fabric."""
    body = _der_integer(number) + _der_tlv(0x04, previous_hash) + _der_tlv(0x04, data_hash)
    return _der_tlv(0x30, body)


def header_hash(number: int, previous_hash: bytes, data_hash: bytes) -> bytes:
    """Return the SHA-256 hash of a block header."""
    return hashlib.sha256(header_bytes(number, previous_hash, data_hash)).digest()


def block_header_bytes(header: Any) -> bytes:
    """DER bytes of a ``common.BlockHeader`` message."""
    return header_bytes(int(header.number), bytes(header.previous_hash), bytes(header.data_hash))


def block_header_hash(header: Any) -> bytes:
    """Hash of a ``common.BlockHeader`` message (what the next block's previous_hash holds)."""
    return hashlib.sha256(block_header_bytes(header)).digest()


def data_hash(envelopes: Iterable[bytes]) -> bytes:
    """Return the data hash of a block: SHA-256 over the concatenated envelope bytes."""
    digest = hashlib.sha256()
    for envelope in envelopes:
        digest.update(envelope)
    return digest.digest()
