"""Pure parts of the network: port plan, channel configuration, chaincode package, metrics."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from patchledger.network import chaincode, channel, health, identities
from patchledger.network.config import ChaincodeSettings, NetworkConfig, config_from_env
from patchledger.network.manager import Manager
from patchledger.network.topology import NodeKind, build_topology

FABRIC_DEFAULT_PORTS = {7050, 7051, 7052, 7053, 7054, 8443, 9443}


def _all_ports(port_base: int) -> list[int]:
    topo = build_topology(port_base=port_base)
    ports = []
    for n in topo.all_nodes():
        ports += [p for p in (n.port, n.ops_port, n.admin_port, n.chaincode_port) if p]
    for org in topo.peer_orgs:  # the additional chaincode-server slots
        main = org.of_kind(NodeKind.CHAINCODE)[0]
        ports += [main.port + k for k in range(1, chaincode.MAX_EXTRA_SLOTS + 1)]
    return ports


@pytest.mark.parametrize("base", [17000, 27000, 1024, 65535 - 213])
def test_port_plan_has_no_collisions_and_avoids_fabric_defaults(base: int) -> None:
    ports = _all_ports(base)
    assert len(ports) == len(set(ports))
    assert all(1024 <= p <= 65535 for p in ports)
    if base in (17000, 27000):
        assert not set(ports) & FABRIC_DEFAULT_PORTS


def test_port_base_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="port base 65500"):
        build_topology(port_base=65500)


def test_topology_has_three_orderers_three_peer_orgs_four_cas() -> None:
    topo = build_topology()
    assert [n.name for n in topo.orderers] == ["orderer0", "orderer1", "orderer2"]
    assert [o.msp_id for o in topo.peer_orgs] == ["SecOpsMSP", "ITOpsMSP", "ComplianceMSP"]
    assert len([n for n in topo.all_nodes() if n.kind is NodeKind.CA]) == 4
    assert topo.org("itopsmsp").name == "itops"
    with pytest.raises(KeyError, match="no organization 'nope'"):
        topo.org("nope")


def _config(tmp_path: Path) -> NetworkConfig:
    return NetworkConfig(state_dir=tmp_path, fabric_home=tmp_path / "fabric",
                         topology=build_topology(), batch_timeout="300ms")


def test_channel_policies_are_majority_and_orderers_may_sign_blocks(tmp_path: Path) -> None:
    profile = channel.configtx(_config(tmp_path))["Profiles"][channel.PROFILE]
    app = profile["Application"]
    assert app["Policies"]["Endorsement"]["Rule"] == "MAJORITY Endorsement"
    assert app["Policies"]["LifecycleEndorsement"]["Rule"] == "MAJORITY Endorsement"
    assert [o["AnchorPeers"][0]["Port"] for o in app["Organizations"]] == [17100, 17110, 17120]
    orderer = profile["Orderer"]
    assert orderer["OrdererType"] == "etcdraft" and orderer["BatchTimeout"] == "300ms"
    assert len(orderer["EtcdRaft"]["Consenters"]) == 3
    writers = orderer["Organizations"][0]["Policies"]["Writers"]["Rule"]
    assert "OrdererMSP.orderer" in writers


def test_package_is_deterministic_and_its_id_is_label_and_sha256() -> None:
    settings = ChaincodeSettings(version="2.0")
    first, second = chaincode.package_bytes(settings), chaincode.package_bytes(settings)
    assert first == second
    assert chaincode.package_id(settings) == \
        f"patchledger_2.0:{hashlib.sha256(first).hexdigest()}"
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert sorted(tar.getnames()) == ["code.tar.gz", "metadata.json"]
        meta = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
    assert meta == {"type": "ccaas", "label": "patchledger_2.0"}


def test_extra_chaincode_slots_get_their_own_server_ports() -> None:
    org = build_topology().org("secops")
    extra = chaincode.server_node(org, ChaincodeSettings("testkit", "1", "m:c", slot=2))
    assert (extra.name, extra.port) == ("chaincode-testkit.secops", 17105)
    with pytest.raises(chaincode.ChaincodeError, match="slot 9"):
        chaincode.server_node(org, ChaincodeSettings("x", "1", "m:c", slot=9))


def test_channel_metric_is_read_for_the_right_channel() -> None:
    metrics = {"ledger_blockchain_height": {'channel="other"': 9.0,
                                            'channel="patchledger"': 4.0}}
    assert health.channel_metric(metrics, "ledger_blockchain_height", "patchledger") == 4
    assert health.channel_metric(metrics, "consensus_etcdraft_is_leader", "x") is None


@pytest.mark.parametrize(("name", "value"), [("PATCHLEDGER_BATCH_TIMEOUT", "abc"),
                                            ("PATCHLEDGER_BATCH_TIMEOUT", "0ms"),
                                            ("PATCHLEDGER_HOST", "bad host"),
                                            ("PATCHLEDGER_PORT_BASE", "x")])
def test_bad_settings_are_refused_with_the_variable_named(tmp_path: Path, name: str,
                                                          value: str) -> None:
    env = {"PATCHLEDGER_FABRIC_HOME": str(tmp_path), name: value}
    with pytest.raises(ValueError, match=name):
        config_from_env(env)


def test_an_organization_on_its_own_host_has_its_ca_peer_and_chaincode_server_there() -> None:
    topo = build_topology(host="10.232.0.1", port_base=17000,
                          org_hosts={"ITOpsMSP": "10.232.0.2"})
    itops = topo.org("ITOpsMSP")
    assert {n.host for n in (itops.ca, *itops.nodes)} == {"10.232.0.2"}
    others = [n for n in topo.all_nodes() if n.org != "itops"]
    assert others and {n.host for n in others} == {"10.232.0.1"}
    # the same port plan as on one host, and the TLS certificates name the org's own host
    assert [n.port for n in topo.all_nodes()] == \
        [n.port for n in build_topology(port_base=17000).all_nodes()]
    assert "10.232.0.2" in identities.tls_hosts(itops.peer)
    assert "10.232.0.2" not in identities.tls_hosts(topo.org("SecOpsMSP").peer)


def test_org_hosts_naming_no_peer_organization_is_refused() -> None:
    with pytest.raises(ValueError, match=r"OrdererMSP.*not a peer organization"):
        build_topology(org_hosts={"OrdererMSP": "10.0.0.9"})


def test_the_launch_prefix_applies_to_its_organization_only_and_is_empty_by_default(
    tmp_path: Path,
) -> None:
    topo = build_topology(host="10.232.0.1", org_hosts={"ITOpsMSP": "10.232.0.2"})
    plain = NetworkConfig(tmp_path, tmp_path, topo)
    assert plain.launch_prefix == {}
    prefix = ("ip", "netns", "exec", "lab-0")
    manager = Manager(replace(plain, launch_prefix={"ITOpsMSP": prefix}))
    assert manager._prefix(topo.org("itops").peer) == prefix
    assert manager._prefix(topo.org("itops").ca) == prefix
    assert manager._prefix(topo.org("secops").peer) == ()
    assert manager._prefix(topo.orderers[0]) == ()
    assert Manager(plain)._prefix(topo.org("itops").peer) == ()
    # ports of a prefixed organization are not probed from here (another namespace's
    # address cannot be bound in this one): no false "port in use"
    manager._check_ports(list(topo.org("itops").nodes))
