"""Fixtures of the read-model tests: a migrated SQLite file, a simulated ledger, and a fake
peer (Deliver over gRPC) serving the simulated ledger's blocks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from patchledger.app.fabric.channel import create_channel
from patchledger.app.fabric.gateway import Gateway, connect
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.fabric.pki import TestCA, TestIdentity
from tests.support.readmodel import SimulatedLedger
from tests.unit.readmodel.readmodel_support import migrated_sqlite

CHANNEL = "patches"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_sqlite(tmp_path / "app.db")
    yield engine
    engine.dispose()


@pytest.fixture
def ledger() -> SimulatedLedger:
    return SimulatedLedger(channel=CHANNEL)


@pytest.fixture(scope="session")
def peer_identity() -> TestIdentity:
    return TestCA("SecOpsMSP").issue("peer0.secops", ou="peer")


@pytest.fixture(scope="session")
def reader() -> TestIdentity:
    return TestCA("SecOpsMSP").issue("app.secops")


@pytest.fixture(scope="session")
def orderer_identity() -> TestIdentity:
    return TestCA("OrdererMSP").issue("orderer0", ou="orderer")


@pytest.fixture
def fake(peer_identity: TestIdentity, orderer_identity: TestIdentity) -> Iterator[FakeGateway]:
    with FakeGateway(channel=CHANNEL, peer=peer_identity, orderer=orderer_identity) as server:
        yield server


@pytest.fixture
def gateway(reader: TestIdentity, fake: FakeGateway) -> Iterator[Gateway]:
    channel = create_channel(fake.address, insecure=True)
    with connect(reader.identity, reader.signer, channel, endpoint=fake.address) as gw:
        yield gw
    channel.close()
