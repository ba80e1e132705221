"""The whole test suite's options and its one Fabric network (a root conftest, so both are
known in every invocation and shared by every directory).

The network is started once per test session, the first time a test asks for it
(``fabric_network``; integration and e2e tests), in a temporary state directory on its own port
base (see tests/support/network.py), and always torn down. ``PATCHLEDGER_KEEP_TEST_NETWORK=1``
keeps its state (stopped) for debugging.
"""


from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator

import pytest

from patchledger.app.fabric import Gateway
from patchledger.network.errors import NetworkError
from patchledger.network.manager import Manager
from tests.support.network import LocalNetwork, make_network_config, wait_until_endorsable


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the reliability suite's long form (as PATCHLEDGER_RELIABILITY_LONG=1; "
        "docs/reliability.md)",
    )


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _progress(line: str) -> None:
    print(f"[test network] {line}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    """A running network for the whole session; stopped and removed at the end."""
    state = tmp_path_factory.mktemp("fabric") / "network"
    try:
        config = make_network_config(state)
    except ValueError as exc:
        pytest.fail(f"cannot configure the test network: {exc}")
    manager = Manager(config, _progress)
    # A SIGTERM (CI timeout) unwinds through the finally below instead of leaving the network.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        try:
            manager.up()
        except NetworkError as exc:
            pytest.fail(f"test network did not start: {exc}")
        yield LocalNetwork(manager)
    finally:
        signal.signal(signal.SIGTERM, previous)
        manager.down()
        if not os.environ.get("PATCHLEDGER_KEEP_TEST_NETWORK"):
            shutil.rmtree(state, ignore_errors=True)


#: The runtime test contract (chaincode/testkit.py), deployed as an additional chaincode.
TESTKIT = "testkit"


@pytest.fixture(scope="session")
def testkit(fabric_network: LocalNetwork) -> str:
    """The testkit chaincode on server slot 1 (servers for every organization), deployed once
    per session."""
    fabric_network.manager.read_manifest()
    if TESTKIT not in fabric_network.manager.deployed:
        fabric_network.manager.deploy(version="1.0",
                                      contract="patchledger.chaincode.testkit:contract",
                                      name=TESTKIT, slot=1)
    return TESTKIT


@pytest.fixture(scope="session")
def gateways(fabric_network: LocalNetwork, testkit: str) -> Iterator[dict[str, Gateway]]:
    """A gateway per organization, as its admin, on the organization's own peer, once the
    peer can plan endorsements of the testkit chaincode."""
    channel = fabric_network.config.topology.channel
    opened = {o.msp_id: fabric_network.open_gateway(o.msp_id)
              for o in fabric_network.config.topology.peer_orgs}
    try:
        for msp_id, (gateway, _) in opened.items():
            wait_until_endorsable(gateway, channel, testkit, "Write", ["warm-up", msp_id])
        yield {msp_id: gateway for msp_id, (gateway, _) in opened.items()}
    finally:
        for _, grpc_channel in opened.values():
            grpc_channel.close()
