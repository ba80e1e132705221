"""The local Fabric network: health, cross-organization transactions, orderer failure,
restart with the ledger intact, and refusal of misuse."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from patchledger.network import health, process
from patchledger.network.config import REPO_ROOT
from patchledger.network.errors import NetworkError
from patchledger.network.manager import Manager
from patchledger.network.peercli import query
from patchledger.network.smoke import run_smoke
from patchledger.network.status import collect
from tests.support.network import LocalNetwork, make_network_config

pytestmark = pytest.mark.integration


def _heights(net: LocalNetwork) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for node in (*net.config.topology.orderers, *net.config.topology.peers):
        value = health.channel_metric(health.metrics(node.host, node.ops_port),
                                      "ledger_blockchain_height", net.config.topology.channel)
        out[node.name] = None if value is None else int(value)
    return out


def _wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def test_every_node_is_healthy(fabric_network: LocalNetwork) -> None:
    status = collect(fabric_network.config, fabric_network.manager.read_manifest())
    nodes = {e["name"]: e for e in status["nodes"]}
    assert status["healthy"], status
    assert sum(e["kind"] == "ca" and e["healthy"] for e in nodes.values()) == 4
    orderers = [e for e in nodes.values() if e["kind"] == "orderer"]
    assert len(orderers) == 3
    for e in orderers:
        assert e["healthy"] and e["channel"]["joined"]
        assert (e["channel"]["relation"], e["channel"]["status"]) == ("consenter", "active")
    assert status["raft_leader"] in {e["name"] for e in orderers}
    peers = [e for e in nodes.values() if e["kind"] == "peer"]
    assert len(peers) == 3 and all(e["healthy"] and e["channel"]["joined"] for e in peers)
    assert status["chaincode"]["committed"] and status["chaincode"]["sequence"] >= 1
    assert set(status["chaincode"]["approvals"]) == {"SecOpsMSP", "ITOpsMSP", "ComplianceMSP"}


def test_two_org_endorsement_is_read_back_from_the_third_org(
        fabric_network: LocalNetwork) -> None:
    result = run_smoke(fabric_network.config)
    assert result.endorsers == ("SecOpsMSP", "ITOpsMSP")
    assert result.reader == "ComplianceMSP"
    assert result.value in result.read_back


def test_network_survives_an_orderer_crash_and_the_orderer_catches_up(
        fabric_network: LocalNetwork) -> None:
    net = fabric_network
    leader = net.manager.wait_for_leader(30)
    victim = net.config.topology.node(leader)  # the harder case: kill the Raft leader
    pid = process.info(net.layout, victim.name).pid
    os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: process.info(net.layout, victim.name).state is process.ProcState.STALE,
                10, f"{victim.name} to die")
    survivor = next(n for n in net.config.topology.orderers if n.name != victim.name)
    try:
        # A new leader is elected among the two survivors; transactions keep committing.
        new_leader = net.manager.wait_for_leader(30)
        assert new_leader != victim.name
        for _ in range(2):
            run_smoke(net.config, orderer=survivor)
    finally:
        # `up` restarts only what is down (also when the checks above failed, so that the
        # other tests get a whole network); the orderer rejoins and catches up.
        restarted = net.manager.up()
    assert restarted == "network restarted (ledger intact)"
    target = _heights(net)[survivor.name]
    assert target is not None, f"{survivor.name} reports no height"
    _wait_until(lambda: _heights(net)[victim.name] == target, 30,
                f"{victim.name} to catch up to height {target}")
    run_smoke(net.config)


def test_down_then_up_keeps_the_ledger(fabric_network: LocalNetwork) -> None:
    net = fabric_network
    written = run_smoke(net.config)
    before = _heights(net)
    pids = [process.info(net.layout, n.name).pid for n in net.manager.process_nodes()]
    t0 = time.monotonic()
    stopped = net.manager.down()
    assert time.monotonic() - t0 < 10
    assert len(stopped) == len(pids)
    for pid in pids:  # no process left behind
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    assert net.manager.up() == "network restarted (ledger intact)"
    after = _heights(net)
    assert all((after[n] or 0) >= (before[n] or 0) > 0 for n in before), (before, after)
    read = query(net.config, net.org("compliance"), "GetPing", [written.key])
    assert written.value in read
    assert net.manager.up() == "network already running"


def test_chaincode_upgrade_is_one_command_and_takes_the_next_sequence(
        fabric_network: LocalNetwork) -> None:
    net = fabric_network
    net.manager.read_manifest()
    before = net.manager.deployed[net.config.chaincode.name].settings
    status = collect(net.config, net.manager.read_manifest())
    sequence = status["chaincode"]["sequence"]
    assert net.manager.deploy(version=f"{before.version}-up") == sequence + 1
    status = collect(net.config, net.manager.read_manifest())
    assert (status["chaincode"]["version"], status["chaincode"]["sequence"]) == \
        (f"{before.version}-up", sequence + 1)
    assert status["healthy"], status
    run_smoke(net.config)  # the upgraded chaincode serves transactions


def test_a_failed_upgrade_keeps_the_current_chaincode_serving(
        fabric_network: LocalNetwork) -> None:
    net = fabric_network
    net.manager.read_manifest()
    current = net.config.chaincode
    with pytest.raises(NetworkError, match="contract module 'no_such_module' cannot be found"):
        net.manager.deploy(version="9.9", contract="no_such_module:contract")
    with pytest.raises(NetworkError, match="label 'patchledger_9 9'"):
        net.manager.deploy(version="9 9")
    net.manager.read_manifest()
    assert net.config.chaincode == current
    run_smoke(net.config)


def test_a_separate_cli_process_finds_the_running_network_by_its_pid_files(
        fabric_network: LocalNetwork) -> None:
    # The network was started by this test process; a new `patchledger` process (as after a
    # crash of the CLI that started it) finds every process again through the pid files.
    env = dict(os.environ, PATCHLEDGER_STATE_DIR=str(fabric_network.config.state_dir),
               PATCHLEDGER_PORT_BASE=str(fabric_network.config.topology.orderers[0].port - 50))
    cli = str(REPO_ROOT / ".venv" / "bin" / "patchledger")
    up = subprocess.run([cli, "network", "up"], env=env, capture_output=True, text=True,
                        check=False, timeout=120)
    assert (up.returncode, up.stdout.split(" (")[0]) == (0, "network already running"), up
    status = subprocess.run([cli, "network", "status", "--json"], env=env, capture_output=True,
                            text=True, check=False, timeout=120)
    report = json.loads(status.stdout)
    assert status.returncode == 0 and report["healthy"], status.stdout
    pids = {e["name"]: e["pid"] for e in report["nodes"]}
    fabric_network.manager.read_manifest()  # other modules may have added chaincodes
    assert pids == {n.name: process.info(fabric_network.layout, n.name).pid
                    for n in fabric_network.manager.process_nodes()}


# ---------------------------------------------------------------------------- misuse


def test_up_refuses_ports_in_use_and_starts_nothing(fabric_network: LocalNetwork,
                                                     tmp_path: Path) -> None:
    # A second network on the same ports as the running one.
    other = Manager(make_network_config(tmp_path / "other"))
    with pytest.raises(NetworkError, match=r"port \d+ on 127\.0\.0\.1 \(.+\) is already in use"):
        other.up()
    assert not any(process.info(other.layout, n.name).state is process.ProcState.RUNNING
                   for n in other.config.topology.all_nodes())


def test_up_refuses_missing_binaries(tmp_path: Path) -> None:
    config = make_network_config(tmp_path / "state")
    from dataclasses import replace

    manager = Manager(replace(config, fabric_home=tmp_path / "no-fabric"))
    with pytest.raises(NetworkError, match=r"Fabric binaries missing .* peer, orderer"):
        manager.up()


def test_up_refuses_a_half_written_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "nodes" / "orderer0").mkdir(parents=True)
    with pytest.raises(NetworkError, match=r"is incomplete .* network reset"):
        Manager(make_network_config(state)).up()


def test_up_refuses_a_corrupt_manifest(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "network.json").write_text('{"complete": tru')
    with pytest.raises(NetworkError, match="corrupt manifest"):
        Manager(make_network_config(state)).up()


def test_a_second_concurrent_up_is_refused(tmp_path: Path) -> None:
    first = Manager(make_network_config(tmp_path / "state"))
    second = Manager(make_network_config(tmp_path / "state"))
    with first.locked(), pytest.raises(NetworkError, match="another `patchledger network` command"):
        second.up()


def test_cli_reports_misuse_in_one_line_with_nonzero_exit(tmp_path: Path) -> None:
    env = dict(os.environ, PATCHLEDGER_STATE_DIR=str(tmp_path / "s"),
               PATCHLEDGER_FABRIC_HOME=str(tmp_path / "missing"))
    result = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "patchledger"), "network", "up"],
                            env=env, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Fabric binaries missing" in lines[0], result.stderr

