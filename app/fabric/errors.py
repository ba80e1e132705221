"""Exceptions raised by :mod:`patchledger.app.fabric`.

Every public function raises only exceptions derived from :class:`FabricError`. Gateway errors
name the phase that failed (:class:`EndorseError`, :class:`SubmitError`,
:class:`CommitStatusError`, :class:`CommitError`), carry the transaction id, the gRPC status code
and, for each remote node that failed, its address, MSP id and message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc


class FabricError(Exception):
    """Root of every error raised by the Fabric client."""


class IdentityError(FabricError):
    """A certificate or private key could not be loaded, or they do not belong together."""


class SigningError(FabricError):
    """Signing was needed but no signer was supplied, or the signer failed."""


class WalletError(FabricError):
    """A wallet entry is missing, corrupt, or the passphrase is wrong."""


@dataclass(frozen=True)
class ErrorDetail:
    """One remote node (peer or orderer) that failed while the gateway served a request."""

    address: str
    msp_id: str
    message: str

    def __str__(self) -> str:
        return f"Address: {self.address}, MspId: {self.msp_id}, Message: {self.message}"


class GatewayError(FabricError):
    """A Gateway RPC failed.

    Evaluate failures are raised as this class itself; the other phases use the subclasses.

    Attributes:
        code: the gRPC status code returned by the gateway peer (or the client-side deadline).
        details: one entry per remote node that failed, as reported by the gateway.
        transaction_id: the transaction id of the request.
        endpoint: the address of the gateway peer the client talked to, when known.
    """

    phase = "evaluate"

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode,
        transaction_id: str = "",
        details: Sequence[ErrorDetail] = (),
        endpoint: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.transaction_id = transaction_id
        self.details: tuple[ErrorDetail, ...] = tuple(details)
        self.endpoint = endpoint

    def __str__(self) -> str:
        text = f"{self.phase} failed ({self.code.name}): {self.message}"
        if self.transaction_id:
            text = f"transaction {self.transaction_id}: {text}"
        if self.endpoint:
            text += f" [gateway {self.endpoint}]"
        if self.details:
            text += "\nDetails:" + "".join(f"\n  - {detail}" for detail in self.details)
        return text


class EndorseError(GatewayError):
    """Endorsement failed: the Endorse RPC returned an error."""

    phase = "endorse"


class SubmitError(GatewayError):
    """Submission to the ordering service failed: the Submit RPC returned an error."""

    phase = "submit"


class CommitStatusError(GatewayError):
    """Getting the commit status failed (e.g. the deadline passed before the commit)."""

    phase = "commit status"


class CommitError(FabricError):
    """The transaction was committed in a block but marked invalid.

    Attributes:
        transaction_id: the transaction id.
        code: the ``TxValidationCode`` number.
        code_name: its name, e.g. ``MVCC_READ_CONFLICT``.
        block_number: the block the transaction was committed in.
    """

    def __init__(self, transaction_id: str, code: int, code_name: str, block_number: int) -> None:
        super().__init__(
            f"transaction {transaction_id} failed to commit with status code {code} "
            f"({code_name}) in block {block_number}"
        )
        self.transaction_id = transaction_id
        self.code = code
        self.code_name = code_name
        self.block_number = block_number


class EventsError(FabricError):
    """An event stream (chaincode events or block delivery) failed.

    Attributes:
        code: the gRPC status code, or ``None`` when the peer answered with a Deliver status.
        status: the Deliver ``common.Status`` name when the peer ended the stream with one.
        details: failing remote nodes, when the gateway reported them.
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        status: str = "",
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.details: tuple[ErrorDetail, ...] = tuple(details)


class CheckpointError(FabricError):
    """A checkpoint file could not be read or written."""


class MessageParseError(FabricError):
    """Bytes are not the Fabric message expected: a proposal, an endorsed transaction or a
    commit-status request handed back for offline signing, or the endorsed transaction a
    gateway returned. The message names the message type expected."""


class BlockParseError(MessageParseError):
    """A block or one of its envelopes is not well formed."""


class UsageError(FabricError):
    """A setting the ``patchledger`` client commands need is missing or malformed (a flag or
    its environment variable, both named in the message)."""


class CAError(FabricError):
    """A Fabric CA request failed.

    Attributes:
        url: the request URL.
        status: the HTTP status (0 when no HTTP response was received).
        errors: the CA's ``errors`` list as ``(code, message)`` pairs.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int = 0,
        errors: Sequence[tuple[int, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.errors: tuple[tuple[int, str], ...] = tuple(errors)

    def __str__(self) -> str:
        text = f"{self.message} ({self.url}"
        text += f", HTTP {self.status})" if self.status else ")"
        for code, message in self.errors:
            text += f"\n  - code {code}: {message}"
        return text
