"""The chaincode-as-a-service gRPC server that peers connect to.

Each peer opens one ``Chaincode.Connect`` bidirectional stream; every stream gets its own
:class:`~chaincode.runtime.handler.PeerSession`, so several peers can share one server.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from patchledger.chaincode.runtime._protos import ChaincodeMessage, chaincode_shim_pb2_grpc
from patchledger.chaincode.runtime.errors import ConfigError
from patchledger.chaincode.runtime.handler import Chaincode, PeerSession

__all__ = [
    "GRPC_OPTIONS",
    "MAX_MESSAGE_BYTES",
    "ChaincodeServer",
    "ServerConfig",
    "TLSConfig",
    "load_chaincode",
    "serve",
]

log = logging.getLogger("patchledger.chaincode.runtime.server")

#: Message size limit in both directions (the peer's own limit is 100 MiB as well).
MAX_MESSAGE_BYTES = 100 * 1024 * 1024

#: Server options: 100 MiB messages, and a ping policy that accepts the peer's keepalive
#: pings on idle connections (gRPC's default answers them with GOAWAY "too_many_pings").
GRPC_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
)

_ADDRESS = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


@dataclass(frozen=True)
class TLSConfig:
    """Server TLS material (PEM). With ``client_ca_pem`` set, clients must present a
    certificate issued by it (mutual TLS)."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials for this material."""
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.client_ca_pem,
            require_client_auth=self.client_ca_pem is not None,
        )


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``python -m patchledger.chaincode`` needs, normally read from the environment."""

    chaincode_id: str
    address: str
    contract: str
    tls: TLSConfig | None = None
    log_level: str = "WARNING"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerConfig:
        """Read and check ``CHAINCODE_*`` settings (see docs/chaincode-runtime.md).

        Raises:
            ConfigError: a required setting is missing, or a setting or file is invalid.
        """
        chaincode_id = env.get("CHAINCODE_ID", "").strip()
        if not chaincode_id:
            raise ConfigError("CHAINCODE_ID is required (the installed package id)")
        address = env.get("CHAINCODE_SERVER_ADDRESS", "").strip()
        if not address:
            raise ConfigError("CHAINCODE_SERVER_ADDRESS is required (host:port)")
        _check_address(address)
        level = env.get("CHAINCODE_LOG_LEVEL", "WARNING").strip().upper() or "WARNING"
        if level not in _LOG_LEVELS:
            raise ConfigError(f"CHAINCODE_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}")
        contract = env.get("CHAINCODE_CONTRACT", "").strip()
        if not contract:
            raise ConfigError(
                "CHAINCODE_CONTRACT is required ('package.module:attribute' of the contract"
                " to serve, e.g. patchledger.chaincode.patchledger.contract:from_environment)"
            )
        if not re.fullmatch(r"[\w.]+:[\w.]+", contract):
            raise ConfigError("CHAINCODE_CONTRACT must look like 'package.module:attribute'")
        return cls(chaincode_id, address, contract, _tls_from_env(env), level)


def _check_address(address: str) -> None:
    """Raise ConfigError unless ``address`` is ``host:port`` with a port in 0..65535."""
    match = _ADDRESS.match(address)
    if match is None or int(match["port"]) > 65535:
        raise ConfigError(f"CHAINCODE_SERVER_ADDRESS must be host:port, got {address!r}")


def _read_pem(variable: str, path: str) -> bytes:
    """Read a PEM file named by an environment variable.

    Raises:
        ConfigError: the file cannot be read or holds no PEM block.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from exc
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{variable}: {path} is not a PEM file")
    return data


def _tls_from_env(env: Mapping[str, str]) -> TLSConfig | None:
    """Build the TLS settings, or None when TLS is not configured.

    Raises:
        ConfigError: half-configured TLS or unreadable/invalid files.
    """
    cert_path = env.get("CHAINCODE_TLS_CERT_FILE", "").strip()
    key_path = env.get("CHAINCODE_TLS_KEY_FILE", "").strip()
    ca_path = env.get("CHAINCODE_TLS_CLIENT_CA_FILE", "").strip()
    if not cert_path and not key_path:
        if ca_path:
            raise ConfigError("CHAINCODE_TLS_CLIENT_CA_FILE needs CHAINCODE_TLS_CERT_FILE/KEY_FILE")
        return None
    if not cert_path or not key_path:
        raise ConfigError("set both CHAINCODE_TLS_CERT_FILE and CHAINCODE_TLS_KEY_FILE")
    cert = _read_pem("CHAINCODE_TLS_CERT_FILE", cert_path)
    key = _read_pem("CHAINCODE_TLS_KEY_FILE", key_path)
    client_ca = _read_pem("CHAINCODE_TLS_CLIENT_CA_FILE", ca_path) if ca_path else None
    try:
        x509.load_pem_x509_certificates(cert)
        if client_ca is not None:
            x509.load_pem_x509_certificates(client_ca)
    except ValueError as exc:
        raise ConfigError("a TLS certificate file holds no valid certificate") from exc
    try:
        load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError("CHAINCODE_TLS_KEY_FILE is not an unencrypted PEM private key") from exc
    return TLSConfig(cert, key, client_ca)


def load_chaincode(spec: str) -> Chaincode:
    """Import ``module:attribute``: a chaincode object, or a zero-argument factory of one.

    Raises:
        ConfigError: the module or attribute cannot be loaded, or is not a chaincode.
    """
    module_name, _, attribute = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"CHAINCODE_CONTRACT {spec!r} cannot be loaded: {exc}") from exc
    if not callable(getattr(target, "invoke", None)) and callable(target):
        target = target()
    if not callable(getattr(target, "invoke", None)):
        raise ConfigError(f"CHAINCODE_CONTRACT {spec!r} has no invoke() method")
    chaincode: Chaincode = target
    return chaincode


class _GrpcStream:
    """Adapts a grpc.aio servicer context to the MessageStream interface."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._context = context

    async def read(self) -> ChaincodeMessage | None:
        message = await self._context.read()
        if message is grpc.aio.EOF:
            return None
        result: ChaincodeMessage = message
        return result

    async def write(self, message: ChaincodeMessage) -> None:
        await self._context.write(message)


class _Servicer(chaincode_shim_pb2_grpc.ChaincodeServicer):  # type: ignore[misc]
    """The ``protos.Chaincode`` service: one PeerSession per Connect stream."""

    def __init__(self, server: ChaincodeServer) -> None:
        self._server = server

    async def Connect(
        self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await self._server.run_session(_GrpcStream(context), context.peer())


class ChaincodeServer:
    """A grpc.aio server serving one chaincode to any number of peers."""

    def __init__(
        self,
        chaincode_id: str,
        address: str,
        chaincode: Chaincode,
        tls: TLSConfig | None = None,
    ) -> None:
        self.chaincode_id = chaincode_id
        self.address = address
        self.chaincode = chaincode
        self.tls = tls
        self._sessions: set[PeerSession] = set()
        self._server: grpc.aio.Server | None = None

    async def run_session(self, stream: _GrpcStream, peer: str) -> None:
        """Serve one peer connection until it ends."""
        session = PeerSession(stream, self.chaincode_id, self.chaincode)
        self._sessions.add(session)
        log.info("peer connected: %s", peer)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            log.info("peer disconnected: %s", peer)

    async def start(self) -> int:
        """Bind and start serving; return the bound port (useful with port 0).

        Raises:
            RuntimeError: the address cannot be bound.
        """
        server = grpc.aio.server(options=list(GRPC_OPTIONS))
        chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(_Servicer(self), server)
        if self.tls is not None:
            port = server.add_secure_port(self.address, self.tls.credentials())
        else:
            port = server.add_insecure_port(self.address)
        await server.start()
        self._server = server
        mode = "off" if self.tls is None else ("mutual" if self.tls.client_ca_pem else "on")
        log.info("serving %s on %s (TLS %s)", self.chaincode_id, self.address, mode)
        if self.tls is None:
            log.warning(
                "serving %s on %s WITHOUT TLS (plaintext, any client may connect):"
                " CHAINCODE_TLS_CERT_FILE and CHAINCODE_TLS_KEY_FILE are not set"
                " (and CHAINCODE_TLS_CLIENT_CA_FILE for mutual TLS); set them outside local"
                " tests",
                self.chaincode_id,
                self.address,
            )
        elif not self.tls.client_ca_pem:
            log.warning(
                "serving %s on %s with TLS but without client authentication (any client"
                " may connect): CHAINCODE_TLS_CLIENT_CA_FILE is not set",
                self.chaincode_id,
                self.address,
            )
        return int(port)

    @property
    def in_flight(self) -> int:
        """Transactions currently running across all connections."""
        return sum(s.in_flight for s in self._sessions)

    async def stop(self, grace: float = 5.0) -> None:
        """Let running transactions finish (up to ``grace`` seconds), then close."""
        if self._server is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await self._server.stop(0)
        self._server = None

    async def wait_for_termination(self) -> None:
        """Wait until the server stops."""
        if self._server is not None:
            await self._server.wait_for_termination()


async def serve(
    config: ServerConfig, chaincode: Chaincode, stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set), then shut down gracefully.

    Raises:
        RuntimeError: the address cannot be bound.
    """
    server = ChaincodeServer(config.chaincode_id, config.address, chaincode, config.tls)
    await server.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop()
