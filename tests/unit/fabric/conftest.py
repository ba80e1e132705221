"""Shared fixtures for the Fabric client tests."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from patchledger.app.fabric.channel import create_channel
from patchledger.app.fabric.gateway import Gateway, connect
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.fabric.pki import TestCA, TestIdentity


@pytest.fixture(scope="session")
def secops_ca() -> TestCA:
    return TestCA("SecOpsMSP")


@pytest.fixture(scope="session")
def orderer_ca() -> TestCA:
    return TestCA("OrdererMSP")


@pytest.fixture(scope="session")
def alice(secops_ca: TestCA) -> TestIdentity:
    return secops_ca.issue("alice", attrs={"role": "approver"})


@pytest.fixture(scope="session")
def peer_identity(secops_ca: TestCA) -> TestIdentity:
    return secops_ca.issue("peer0.secops", ou="peer")


@pytest.fixture(scope="session")
def orderer_identity(orderer_ca: TestCA) -> TestIdentity:
    return orderer_ca.issue("orderer0", ou="orderer")


@pytest.fixture
def fake(peer_identity: TestIdentity, orderer_identity: TestIdentity) -> Iterator[FakeGateway]:
    with FakeGateway(channel="patches", peer=peer_identity, orderer=orderer_identity) as server:
        yield server


@pytest.fixture
def grpc_channel(fake: FakeGateway) -> Iterator[grpc.Channel]:
    channel = create_channel(fake.address, insecure=True)
    yield channel
    channel.close()


@pytest.fixture
def gateway(
    alice: TestIdentity, grpc_channel: grpc.Channel, fake: FakeGateway
) -> Iterator[Gateway]:
    with connect(alice.identity, alice.signer, grpc_channel, endpoint=fake.address) as gw:
        yield gw
