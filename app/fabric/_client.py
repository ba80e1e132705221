"""The connection-level state shared by every object of one Gateway: stubs, signer, timeouts.

Also maps ``grpc.RpcError`` to the phase-specific errors of :mod:`app.fabric.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from patchledger.app.fabric._protos import events_pb2_grpc, gateway_pb2_grpc
from patchledger.app.fabric._rpcstatus import rpc_error_code, rpc_error_details, rpc_error_message
from patchledger.app.fabric.errors import GatewayError, SigningError
from patchledger.app.fabric.identity import Identity
from patchledger.app.fabric.signing import HashFn, Signer, normalise_for, sha256


@dataclass(frozen=True)
class Timeouts:
    """Per-phase deadlines in seconds (``None``: no deadline). Per-call values override these.

    The defaults are those used throughout fabric-samples: evaluate 5 s, endorse 15 s,
    submit 5 s, commit status 60 s. Event streams have no deadline.
    """

    evaluate: float | None = 5.0
    endorse: float | None = 15.0
    submit: float | None = 5.0
    commit_status: float | None = 60.0


class GatewayClient:
    """Internal: the identity, signer, stubs and options shared by a Gateway's objects."""

    def __init__(
        self,
        channel: grpc.Channel,
        identity: Identity,
        signer: Signer | None,
        *,
        hash_fn: HashFn = sha256,
        timeouts: Timeouts = Timeouts(),
        endpoint: str = "",
        tls_client_certificate_hash: bytes = b"",
    ) -> None:
        self.channel = channel
        self.identity = identity
        self.signer = signer
        self.hash = hash_fn
        self.timeouts = timeouts
        self.endpoint = endpoint
        self.tls_client_certificate_hash = tls_client_certificate_hash
        self.gateway_stub: Any = gateway_pb2_grpc.GatewayStub(channel)
        self.deliver_stub: Any = events_pb2_grpc.DeliverStub(channel)

    def sign(self, message: bytes) -> bytes:
        """Hash ``message``, sign the digest with the configured signer, normalise to low S.

        Raises:
            SigningError: no signer was supplied (offline-signing mode) or it failed.
        """
        if self.signer is None:
            raise SigningError("no sign implementation supplied; sign offline and use new_signed_*")
        try:
            signature = self.signer(self.hash(message))
        except SigningError:
            raise
        except Exception as exc:
            raise SigningError(f"signer failed: {exc}") from exc
        return self.normalise(signature)

    def normalise(self, signature: bytes) -> bytes:
        """Return a signature by this identity's key in low-S form (Fabric rejects high S).

        Raises:
            SigningError: not a DER ECDSA signature.
        """
        return normalise_for(self.identity.certificate, bytes(signature))

    def wrap(
        self, error: grpc.RpcError, cls: type[GatewayError], transaction_id: str
    ) -> GatewayError:
        """Build a phase error from a failed call."""
        return cls(
            rpc_error_message(error),
            code=rpc_error_code(error),
            transaction_id=transaction_id,
            details=rpc_error_details(error),
            endpoint=self.endpoint,
        )


def pick_timeout(override: float | None, default: float | None) -> float | None:
    """Return the per-call override if given, else the phase default."""
    return default if override is None else override
