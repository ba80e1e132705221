"""The app's adapter to its organization's peer and CA (the one module here that talks Fabric).

Every call has a bounded deadline (:attr:`AppConfig.timeouts`). Errors of the Fabric client are
turned into :class:`LedgerError` with the HTTP status the API answers with:

- the chaincode refused (``chaincode response 403/404/409/400, <message>``): that status and the
  chaincode's message;
- a transaction committed invalid (MVCC conflict, endorsement policy failure): 409 with the
  validation code;
- the peer, orderer or CA is unreachable or too slow: 503 naming the endpoint.

Users who act on the ledger get their own Fabric identity: registered by the organization's
registrar with the CA (``role`` attribute = the app role), enrolled (the key is made here) and
kept in the app's encrypted wallet under their enrollment id. Approval statements are signed
with that key, and submitted with that identity.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from patchledger.app.fabric import (
    Attribute,
    CAError,
    CommitError,
    Contract,
    EcdsaSigner,
    EventsError,
    FabricError,
    GatewayError,
    Identity,
    Network,
    RegistrationRequest,
    Wallet,
    WalletError,
    connect,
    create_channel,
)
from patchledger.app.readmodel.projector import peer_height
from patchledger.app.web.config import AppConfig
from patchledger.app.web.metrics import Metrics
from patchledger.chaincode.lifecycle.signatures import encode_b64
from patchledger.chaincode.lifecycle.statement import ApprovalStatement

_REFUSAL = re.compile(r"chaincode response (\d{3}), (.*)", re.DOTALL)
_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED}


class LedgerError(Exception):
    """A ledger or CA call failed.

    Attributes:
        status: HTTP status for the API (400, 403, 404, 409, 502, 503).
        message: what happened, with the chaincode's own words when it refused.
        endpoint: the peer or CA concerned.
        function: the transaction function called.
        transaction_id: the transaction's id when one was built: after a 503 of a submit the
            client looks it up (``GET /audit/transactions/{id}``) instead of resubmitting
            blindly.
    """

    def __init__(self, status: int, message: str, *, endpoint: str = "",
                 function: str = "", transaction_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.endpoint = endpoint
        self.function = function
        self.transaction_id = transaction_id


def _refusal(texts: Sequence[str]) -> tuple[int, str] | None:
    for text in texts:
        found = _REFUSAL.search(text)
        if found:
            status = int(found.group(1))
            return (status if status in (400, 403, 404, 409) else 502), found.group(2).strip()
    return None


def map_gateway_error(exc: FabricError, function: str, endpoint: str) -> LedgerError:
    """The :class:`LedgerError` for a Fabric client error (see the module docstring)."""
    if isinstance(exc, CommitError):
        return LedgerError(409, f"{function}: transaction {exc.transaction_id} was committed "
                           f"invalid ({exc.code_name}) in block {exc.block_number}",
                           endpoint=endpoint, function=function,
                           transaction_id=exc.transaction_id)
    if isinstance(exc, GatewayError):
        tx = exc.transaction_id
        refused = _refusal([exc.message, *(d.message for d in exc.details)])
        if refused:
            return LedgerError(refused[0], refused[1], endpoint=endpoint, function=function,
                               transaction_id=tx)
        if exc.code in _UNAVAILABLE:
            return LedgerError(503, f"the ledger is unreachable: {exc.phase} at {endpoint} "
                               f"failed ({exc.code.name}): {exc.message}",
                               endpoint=endpoint, function=function, transaction_id=tx)
        return LedgerError(502, f"{function}: {exc}", endpoint=endpoint, function=function,
                           transaction_id=tx)
    if isinstance(exc, EventsError):
        return LedgerError(503, f"the block stream of {endpoint} failed: {exc}",
                           endpoint=endpoint, function=function)
    if isinstance(exc, CAError):
        status = 503 if exc.status == 0 or exc.status >= 500 else 502
        return LedgerError(status, f"the CA refused or is unreachable: {exc}",
                           endpoint=exc.url, function=function)
    return LedgerError(502, f"{function}: {exc}", endpoint=endpoint, function=function)


def _arg(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Actor:
    """Who acts on the ledger: an enrollment id in the app's wallet."""

    enrollment_id: str
    role: str


class Ledger:
    """The organization's peer (through one gRPC channel) and CA, for the app.

    Thread-safe: the channel is opened once; gateways are cheap objects over it.
    """

    def __init__(self, config: AppConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._reader: tuple[Identity, EcdsaSigner] | None = None
        self._wallet = Wallet(config.wallet_dir, config.wallet_passphrase)

    @property
    def endpoint(self) -> str:
        """The gateway peer's address (``""`` when none is configured)."""
        return self._config.peer.endpoint if self._config.peer else ""

    def _open(self) -> grpc.Channel:
        peer = self._config.peer
        if peer is None:
            raise LedgerError(503, f"no peer is configured for {self._config.organization}'s "
                              "app: ledger endpoints are unavailable")
        with self._lock:
            if self._channel is None:
                try:
                    tls = peer.tls_ca_cert.read_bytes() if peer.tls_ca_cert else None
                except OSError as exc:
                    raise LedgerError(503, f"cannot read the peer's TLS CA "
                                      f"{peer.tls_ca_cert}: {exc}",
                                      endpoint=peer.endpoint) from exc
                self._channel = create_channel(peer.endpoint, tls_root_certificates=tls,
                                               server_name_override=peer.server_name_override,
                                               insecure=peer.insecure)
            return self._channel

    def _registrar(self) -> tuple[Identity, EcdsaSigner]:
        if self._config.registrar is None:
            raise LedgerError(503, f"no registrar identity is configured for "
                              f"{self._config.organization}'s app")
        with self._lock:
            if self._reader is None:
                try:
                    self._reader = self._config.registrar.load()
                except FabricError as exc:
                    raise LedgerError(503, f"cannot load the registrar identity: {exc}") from exc
            return self._reader

    def _identity(self, actor: Actor | None) -> tuple[Identity, EcdsaSigner]:
        if actor is None:
            return self._registrar()
        try:
            return self._wallet.get(actor.enrollment_id)
        except WalletError as exc:
            raise LedgerError(403, f"no Fabric identity for {actor.enrollment_id!r} in the "
                              f"app's wallet: {exc}") from exc

    def _call(self, function: str, run: Callable[[], bytes], kind: str) -> Any:
        started = time.perf_counter()
        try:
            raw = run()
        except FabricError as exc:
            error = map_gateway_error(exc, function, self.endpoint)
            self._metrics.ledger_failures.labels(function, str(error.status)).inc()
            raise error from exc
        finally:
            self._metrics.ledger_seconds.labels(kind).observe(time.perf_counter() - started)
        if kind == "submit":
            self._metrics.ledger_submits.labels(function).inc()
        return json.loads(raw) if raw else None

    def evaluate(self, function: str, *args: Any, actor: Actor | None = None) -> Any:
        """Evaluate ``function`` on the organization's peer; the decoded JSON result.

        Reads go as ``actor`` when given, else as the registrar.

        Raises:
            LedgerError: refused (400/403/404/409), or the peer is down (503).
        """
        channel = self._open()
        identity, signer = self._identity(actor)
        gateway = connect(identity, signer, channel, endpoint=self.endpoint,
                          timeouts=self._config.timeouts)
        contract = gateway.get_network(self._config.channel).get_contract(
            self._config.chaincode)
        return self._call(function, lambda: contract.evaluate(
            function, [_arg(a) for a in args]), "evaluate")

    def submit(self, actor: Actor, function: str, *args: Any) -> Any:
        """Submit ``function`` as ``actor`` and wait for its commit; the decoded JSON result.

        Raises:
            LedgerError: refused (400/403/404/409), committed invalid (409), or the peer or
                orderer is down (503).
        """
        channel = self._open()
        identity, signer = self._identity(actor)
        gateway = connect(identity, signer, channel, endpoint=self.endpoint,
                          timeouts=self._config.timeouts)
        contract = gateway.get_network(self._config.channel).get_contract(
            self._config.chaincode)

        def run() -> bytes:
            submitted = contract.submit_async(function, [_arg(a) for a in args])
            status = submitted.get_status()
            if not status.successful:
                raise CommitError(status.transaction_id, status.code, status.code_name,
                                  status.block_number)
            return submitted.result

        return self._call(function, run, "submit")

    def contract(self, actor: Actor) -> Contract:
        """The contract on a gateway of ``actor`` (for batch writers such as ingestion's).

        Raises:
            LedgerError: no peer configured (503), no identity in the wallet (403).
        """
        channel = self._open()
        identity, signer = self._identity(actor)
        gateway = connect(identity, signer, channel, endpoint=self.endpoint,
                          timeouts=self._config.timeouts)
        return gateway.get_network(self._config.channel).get_contract(self._config.chaincode)

    def network(self) -> Network:
        """The channel as the registrar (block events for the projector, verification).

        Raises:
            LedgerError: no peer or registrar is configured (503).
        """
        channel = self._open()
        identity, signer = self._registrar()
        gateway = connect(identity, signer, channel, endpoint=self.endpoint,
                          timeouts=self._config.timeouts)
        return gateway.get_network(self._config.channel)

    def height(self) -> int:
        """The peer's ledger height (``qscc GetChainInfo``, bounded by the evaluate deadline).

        Raises:
            LedgerError: the peer is down or refused (503/502).
        """
        try:
            return peer_height(self.network(), self._config.channel)
        except FabricError as exc:
            raise map_gateway_error(exc, "GetChainInfo", self.endpoint) from exc
        except DecodeError as exc:
            raise LedgerError(502, f"the peer {self.endpoint} answered GetChainInfo with "
                              f"something that is not a BlockchainInfo: {exc}",
                              endpoint=self.endpoint, function="GetChainInfo") from exc

    def raw_blocks(self, start: int, stop: int) -> Iterator[Any]:
        """The peer's ``common.Block`` messages ``start`` to ``stop`` (inclusive), for ledger
        verification.

        Raises:
            LedgerError: the peer is down or refused (503/502), when iterated.
        """
        request = self.network().new_block_events_request(start_block=start, stop_block=stop)
        try:
            yield from request.get_raw_blocks()
        except FabricError as exc:
            raise map_gateway_error(exc, "Deliver", self.endpoint) from exc

    def enroll(self, username: str, role: str) -> str:
        """Register and enroll a Fabric identity for ``username`` with ``role``; put it in the
        wallet; return its enrollment id.

        Raises:
            LedgerError: the CA refused (502) or is down (503).
        """
        if self._config.ca is None:
            raise LedgerError(503, f"no CA is configured for {self._config.organization}'s "
                              "app: users cannot get a Fabric identity")
        enrollment_id = f"{username}.{self._config.organization}.{secrets.token_hex(3)}"
        registrar, registrar_signer = self._registrar()
        try:
            ca = self._config.ca.client()
            secret = ca.register(registrar, registrar_signer, RegistrationRequest(
                enrollment_id, attributes=[Attribute("role", role, ecert=True)]))
            enrollment = ca.enroll(enrollment_id, secret)
        except FabricError as exc:
            raise map_gateway_error(exc, "enroll", self._config.ca.url) from exc
        self._wallet.put(enrollment_id, enrollment.identity(self._config.msp_id),
                         enrollment.signer)
        return enrollment_id

    def enroll_host_csr(self, host_id: str, csr_pem: bytes) -> bytes:
        """Have the organization's CA issue the host's certificate for the host's own CSR:
        register ``host_id`` (``role=host``, ``host_id``, one enrollment) and enroll the CSR
        (its CN must be ``host_id``); the certificate (PEM). The host's private key never
        reaches the app.

        Raises:
            LedgerError: the CA refused (e.g. the host id is registered already: 409/502) or
                is down, or none is configured (503).
        """
        if self._config.ca is None:
            raise LedgerError(503, f"no CA is configured for {self._config.organization}'s "
                              "app: hosts cannot be enrolled")
        registrar, registrar_signer = self._registrar()
        try:
            ca = self._config.ca.client()
            secret = ca.register(registrar, registrar_signer, RegistrationRequest(
                host_id, max_enrollments=1,
                attributes=[Attribute("role", "host", ecert=True),
                            Attribute("host_id", host_id, ecert=True)]))
            return ca.enroll_csr(host_id, secret, csr_pem)
        except FabricError as exc:
            raise map_gateway_error(exc, "enroll", self._config.ca.url) from exc

    def sign_statement(self, actor: Actor, patch_id: str, artifact_sha256: str, decision: str,
                       comment: str, expires_at: int) -> dict[str, Any]:
        """An approval statement signed with ``actor``'s own enrollment key.

        Raises:
            LedgerError: the actor has no identity in the wallet (403).
        """
        _, signer = self._identity(actor)
        statement = ApprovalStatement(patch_id=patch_id, artifact_sha256=artifact_sha256,
                                      decision=decision, msp_id=self._config.msp_id,
                                      approver=actor.enrollment_id, expires_at=expires_at,
                                      comment=comment)
        payload = statement.to_json()
        return {"statement": statement.to_dict(),
                "signature": encode_b64(signer(hashlib.sha256(payload).digest()))}

    def close(self) -> None:
        """Close the gRPC channel."""
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None
