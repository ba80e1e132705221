"""Convenience factory for the gRPC channel to a gateway peer (the caller owns it)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

MAX_MESSAGE_BYTES = 100 * 1024 * 1024

#: gRPC options matching the peer's limits: 100 MiB messages (the peer's default maximum;
#: gRPC's 4 MiB default breaks on large blocks) and keepalive pings no more often than the
#: peer's 60 s minimum interval (faster pings get the connection closed with too_many_pings).
DEFAULT_OPTIONS: tuple[tuple[str, int | str], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 120_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


def create_channel(
    endpoint: str,
    *,
    tls_root_certificates: bytes | None = None,
    server_name_override: str = "",
    client_key: bytes | None = None,
    client_certificate: bytes | None = None,
    insecure: bool = False,
    options: Sequence[tuple[str, int | str]] = (),
) -> grpc.Channel:
    """Open a gRPC channel to a peer.

    Args:
        endpoint: ``host:port`` of the peer.
        tls_root_certificates: PEM of the peer's TLS CA (pinned roots; required unless
            ``insecure``).
        server_name_override: the name in the peer's TLS certificate when it differs from
            the dialled host.
        client_key: PEM key for mutual TLS.
        client_certificate: PEM certificate for mutual TLS.
        insecure: plain-text channel, for TLS-disabled development networks only.
        options: extra or overriding gRPC channel options.

    Raises:
        ValueError: neither TLS roots nor ``insecure`` were given.
    """
    merged = dict(DEFAULT_OPTIONS)
    if server_name_override:
        merged["grpc.ssl_target_name_override"] = server_name_override
    merged.update(dict(options))
    option_list = list(merged.items())
    if insecure:
        return grpc.insecure_channel(endpoint, options=option_list)
    if not tls_root_certificates:
        raise ValueError(f"{endpoint}: TLS root certificates are required (or insecure=True)")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls_root_certificates,
        private_key=client_key,
        certificate_chain=client_certificate,
    )
    return grpc.secure_channel(endpoint, credentials, options=option_list)
