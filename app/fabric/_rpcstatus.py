"""Decode (and, for fakes, encode) ``google.rpc.Status`` without googleapis-common-protos.

The gateway reports failing peers and orderers as ``gateway.ErrorDetail`` messages packed in
the ``details`` of a ``google.rpc.Status`` sent as the ``grpc-status-details-bin`` trailer.
``google.rpc.Status`` is ``{int32 code = 1; string message = 2; repeated Any details = 3}``; a
tiny wire-format walker reads it, which avoids a dependency that conflicts with protobuf 5.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc

from patchledger.app.fabric._protos import any_pb2, gateway_pb2
from patchledger.app.fabric.errors import ErrorDetail

STATUS_DETAILS_KEY = "grpc-status-details-bin"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def iter_fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a serialised message.

    Length-delimited values are bytes, varints are ints; fixed-size values are returned as raw
    bytes.

    Raises:
        ValueError: the data is not a valid protobuf encoding.
    """
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield field, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated length-delimited field")
            yield field, wire, data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            yield field, wire, data[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire}")


def decode_error_details(status_bytes: bytes) -> list[ErrorDetail]:
    """Return the ``gateway.ErrorDetail`` entries of a serialised ``google.rpc.Status``.

    Malformed input yields an empty list: details are diagnostics, never a reason to fail.
    """
    details: list[ErrorDetail] = []
    try:
        for field, wire, value in iter_fields(status_bytes):
            if field != 3 or wire != 2 or not isinstance(value, bytes):
                continue
            packed = any_pb2.Any.FromString(value)
            if packed.Is(gateway_pb2.ErrorDetail.DESCRIPTOR):
                detail = gateway_pb2.ErrorDetail()
                packed.Unpack(detail)
                details.append(ErrorDetail(detail.address, detail.msp_id, detail.message))
    except Exception:  # a malformed trailer must not hide the real error
        return details
    return details


def rpc_error_details(error: grpc.RpcError) -> list[ErrorDetail]:
    """Return the gateway error details attached to a failed call (empty if none)."""
    trailing = getattr(error, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return decode_error_details(value)
    return []


def rpc_error_code(error: grpc.RpcError) -> grpc.StatusCode:
    """Return the status code of a failed call (UNKNOWN when it has none)."""
    code = getattr(error, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def rpc_error_message(error: grpc.RpcError) -> str:
    """Return the status message of a failed call."""
    details = getattr(error, "details", None)
    value = details() if callable(details) else None
    return str(value) if value else str(error)


def _key(field: int, wire: int) -> bytes:
    return _encode_varint(field << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _encode_varint(len(data)) + data


def encode_status(code: grpc.StatusCode, message: str, details: Sequence[ErrorDetail]) -> bytes:
    """Serialise a ``google.rpc.Status`` carrying ``gateway.ErrorDetail`` entries.

    Used by the fake gateway server to answer as a real peer does.
    """
    out = _key(1, 0) + _encode_varint(code.value[0]) if code.value[0] else b""
    out += _length_delimited(2, message.encode())
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(
            gateway_pb2.ErrorDetail(
                address=detail.address, msp_id=detail.msp_id, message=detail.message
            )
        )
        out += _length_delimited(3, packed.SerializeToString())
    return out
