"""The channel factory: pinned TLS roots, server-name override and mutual TLS."""

from __future__ import annotations

import hashlib

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from patchledger.app.fabric._protos import common_pb2
from patchledger.app.fabric.channel import DEFAULT_OPTIONS, MAX_MESSAGE_BYTES, create_channel
from patchledger.app.fabric.errors import GatewayError
from patchledger.app.fabric.gateway import connect
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.fabric.pki import TestCA, TestIdentity


def test_default_options() -> None:
    options = dict(DEFAULT_OPTIONS)
    assert options["grpc.max_receive_message_length"] == MAX_MESSAGE_BYTES == 100 * 1024 * 1024
    assert int(options["grpc.keepalive_time_ms"]) >= 60_000  # the peer's minimum ping interval


def test_tls_requires_roots() -> None:
    with pytest.raises(ValueError, match="TLS root certificates"):
        create_channel("127.0.0.1:1")


def test_mutual_tls_with_server_name_override(
    alice: TestIdentity, peer_identity: TestIdentity, orderer_identity: TestIdentity
) -> None:
    tls_ca = TestCA("SecOpsMSP", "tlsca.secops")
    server = tls_ca.issue("peer0.secops.example.com", hosts=("peer0.secops.example.com",))
    client_tls = tls_ca.issue("alice-tls")
    with FakeGateway(
        channel="patches",
        peer=peer_identity,
        orderer=orderer_identity,
        tls=server,
        client_ca_pem=tls_ca.cert_pem,
    ) as fake:
        channel = create_channel(
            fake.address,
            tls_root_certificates=tls_ca.cert_pem,
            server_name_override="peer0.secops.example.com",
            client_key=client_tls.signer.private_key_pem(),
            client_certificate=client_tls.identity.credentials,
        )
        der = client_tls.identity.certificate.public_bytes(serialization.Encoding.DER)
        cert_hash = hashlib.sha256(der).digest()
        with connect(
            alice.identity, alice.signer, channel, tls_client_certificate_hash=cert_hash
        ) as gateway:
            network = gateway.get_network("patches")
            assert network.get_contract("cc").evaluate_transaction("Get", "x") == b"Get:x"
            list(network.read_blocks())
        channel.close()
        payload = common_pb2.Payload.FromString(fake.captured.deliver[0].payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        assert channel_header.tls_cert_hash == cert_hash


def test_untrusted_server_is_refused(
    alice: TestIdentity, peer_identity: TestIdentity, orderer_identity: TestIdentity
) -> None:
    server = TestCA("SecOpsMSP").issue("localhost", hosts=("localhost", "127.0.0.1"))
    with FakeGateway(
        channel="patches", peer=peer_identity, orderer=orderer_identity, tls=server
    ) as fake:
        channel = create_channel(fake.address, tls_root_certificates=TestCA("Other").cert_pem)
        with connect(alice.identity, alice.signer, channel, endpoint=fake.address) as gateway:
            contract = gateway.get_network("patches").get_contract("cc")
            with pytest.raises(GatewayError) as info:
                contract.evaluate("Get", timeout=3)
        channel.close()
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert isinstance(server.identity.certificate, x509.Certificate)
