"""Commit status: waiting for a submitted transaction to be committed."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

import grpc

from patchledger.app.fabric._client import GatewayClient, pick_timeout
from patchledger.app.fabric._protos import gateway_pb2, transaction_pb2
from patchledger.app.fabric.errors import CommitStatusError


def validation_code_name(code: int) -> str:
    """Return the ``TxValidationCode`` name of ``code`` (``UNKNOWN_<n>`` if unknown)."""
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return f"UNKNOWN_{code}"


@dataclass(frozen=True)
class Status:
    """The outcome of a committed transaction.

    Attributes:
        code: the ``TxValidationCode`` (0 = VALID).
        transaction_id: the transaction id.
        block_number: the block holding the transaction.
    """

    code: int
    transaction_id: str
    block_number: int

    @property
    def successful(self) -> bool:
        """True when the transaction is VALID, i.e. its writes were applied."""
        return self.code == 0  # TxValidationCode.VALID

    @property
    def code_name(self) -> str:
        """The validation code's name, e.g. ``MVCC_READ_CONFLICT``."""
        return validation_code_name(self.code)


class Commit:
    """A submitted transaction whose commit status can be requested.

    ``bytes`` serialises the ``SignedCommitStatusRequest``; ``digest`` is the hash to sign when
    signing offline.
    """

    def __init__(self, client: GatewayClient, signed_request: Any, transaction_id: str) -> None:
        self._client = client
        self._signed: Any = signed_request
        self._transaction_id = transaction_id

    @property
    def transaction_id(self) -> str:
        """The transaction id."""
        return self._transaction_id

    @property
    def bytes(self) -> bytes:
        """The serialised ``gateway.SignedCommitStatusRequest``."""
        return bytes(self._signed.SerializeToString())

    @property
    def digest(self) -> builtins.bytes:
        """The hash of the request bytes: what an offline signer signs."""
        return self._client.hash(self._signed.request)

    def get_status(self, timeout: float | None = None) -> Status:
        """Wait until the transaction is committed and return its status.

        Args:
            timeout: seconds; defaults to the gateway's commit-status timeout.

        Raises:
            CommitStatusError: the CommitStatus call failed or its deadline passed.
            SigningError: the request is unsigned and no signer is configured.
        """
        signed = self._signed
        if not signed.signature:
            signed.signature = self._client.sign(signed.request)
        try:
            response = self._client.gateway_stub.CommitStatus(
                signed, timeout=pick_timeout(timeout, self._client.timeouts.commit_status)
            )
        except grpc.RpcError as exc:
            raise self._client.wrap(exc, CommitStatusError, self._transaction_id) from exc
        return Status(int(response.result), self._transaction_id, int(response.block_number))


class SubmittedTransaction(Commit):
    """A :class:`Commit` that also carries the transaction's endorsed result."""

    def __init__(
        self,
        client: GatewayClient,
        signed_request: Any,
        transaction_id: str,
        result: builtins.bytes,
    ) -> None:
        super().__init__(client, signed_request, transaction_id)
        self._result = result

    @property
    def result(self) -> builtins.bytes:
        """The chaincode function's return value, as endorsed."""
        return self._result


def new_commit_request(client: GatewayClient, transaction_id: str, channel: str) -> Any:
    """Build an unsigned ``SignedCommitStatusRequest`` for ``transaction_id``."""
    request = gateway_pb2.CommitStatusRequest(
        transaction_id=transaction_id, channel_id=channel, identity=client.identity.creator
    )
    return gateway_pb2.SignedCommitStatusRequest(request=request.SerializeToString())
