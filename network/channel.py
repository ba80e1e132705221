"""The application channel: its configuration, genesis block, and membership.

Fabric v3 has no system channel: the channel's genesis block is made with ``configtxgen
-outputBlock`` from the ``configtx.yaml`` built here, every orderer joins it through its
channel-participation admin API (``osnadmin``, mutual TLS with the orderer org admin's TLS
certificate) and every peer joins it with ``peer channel join``.

Channel policy: the chaincode endorsement policy and the lifecycle endorsement policy are both
``MAJORITY Endorsement`` over the three peer organizations; admin changes need a majority of
organization admins. Anchor peers are set in the genesis block so that a gateway can find the
other organizations' peers.

Block cutting is tuned for interactive use: ``BatchTimeout`` is short (250 ms by default, see
``NetworkConfig.batch_timeout``), ``MaxMessageCount`` 500, ``AbsoluteMaxBytes`` 99 MB so that a
10 MB state value fits in one transaction. Raft ticks are 500 ms with ElectionTick 10.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from patchledger.network.config import NetworkConfig, StateLayout
from patchledger.network.errors import NetworkError
from patchledger.network.peercli import PeerCommandError, run_peer
from patchledger.network.topology import Org, Topology

PROFILE = "PatchLedgerChannel"


class ChannelError(NetworkError):
    """Creating or joining the channel failed; the message names the node and the reason."""


def _sig(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _meta(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _org_section(layout: StateLayout, org: Org) -> dict[str, Any]:
    m = org.msp_id
    section: dict[str, Any] = {
        "Name": m,
        "ID": m,
        "MSPDir": str(layout.org_msp(org.name)),
        "Policies": {
            "Readers": _sig(f"OR('{m}.admin', '{m}.peer', '{m}.client', '{m}.orderer')"),
            "Writers": _sig(f"OR('{m}.admin', '{m}.client')"),
            "Admins": _sig(f"OR('{m}.admin')"),
        },
    }
    if org.is_orderer_org:
        # Orderers sign blocks with their own (OU=orderer) identities; BlockValidation checks
        # the orderer org's Writers, so orderers must be among them.
        section["Policies"]["Writers"] = _sig(f"OR('{m}.orderer', '{m}.admin', '{m}.client')")
        section["OrdererEndpoints"] = [n.address for n in org.nodes]
    else:
        section["Policies"]["Endorsement"] = _sig(f"OR('{m}.peer')")
        section["AnchorPeers"] = [{"Host": org.peer.host, "Port": org.peer.port}]
    return section


def configtx(config: NetworkConfig) -> dict[str, Any]:
    """The ``configtx.yaml`` content for the network's channel (pure)."""
    layout = StateLayout(config.state_dir)
    topo: Topology = config.topology
    consenters = [
        {"Host": n.host, "Port": n.port,
         "ClientTLSCert": str(layout.node_tls(n.name) / "server.crt"),
         "ServerTLSCert": str(layout.node_tls(n.name) / "server.crt")}
        for n in topo.orderers
    ]
    orderer = {
        "OrdererType": "etcdraft",
        "Addresses": [n.address for n in topo.orderers],
        "EtcdRaft": {
            "Consenters": consenters,
            "Options": {"TickInterval": "500ms", "ElectionTick": 10, "HeartbeatTick": 1,
                        "MaxInflightBlocks": 5, "SnapshotIntervalSize": "16 MB"},
        },
        "BatchTimeout": config.batch_timeout,
        "BatchSize": {"MaxMessageCount": 500, "AbsoluteMaxBytes": "99 MB",
                      "PreferredMaxBytes": "2 MB"},
        "Organizations": [_org_section(layout, topo.orderer_org)],
        "Policies": {
            "Readers": _meta("ANY Readers"),
            "Writers": _meta("ANY Writers"),
            "Admins": _meta("MAJORITY Admins"),
            "BlockValidation": _meta("ANY Writers"),
        },
        "Capabilities": {"V2_0": True},
    }
    application = {
        "Organizations": [_org_section(layout, o) for o in topo.peer_orgs],
        "Policies": {
            "Readers": _meta("ANY Readers"),
            "Writers": _meta("ANY Writers"),
            "Admins": _meta("MAJORITY Admins"),
            "LifecycleEndorsement": _meta("MAJORITY Endorsement"),
            "Endorsement": _meta("MAJORITY Endorsement"),
        },
        "Capabilities": {"V2_5": True},
    }
    profile = {
        "Policies": {
            "Readers": _meta("ANY Readers"),
            "Writers": _meta("ANY Writers"),
            "Admins": _meta("MAJORITY Admins"),
        },
        "Capabilities": {"V2_0": True},
        "Orderer": orderer,
        "Application": application,
    }
    return {"Profiles": {PROFILE: profile}}


def genesis_block_path(config: NetworkConfig) -> Path:
    """Where the channel's genesis block is written."""
    return StateLayout(config.state_dir).channel_dir / f"{config.topology.channel}.block"


def create_genesis_block(config: NetworkConfig) -> Path:
    """Write configtx.yaml and run configtxgen; return the genesis block's path.

    Raises:
        ChannelError: configtxgen failed.
    """
    cdir = StateLayout(config.state_dir).channel_dir
    cdir.mkdir(parents=True, exist_ok=True)
    (cdir / "configtx.yaml").write_text(yaml.safe_dump(configtx(config), sort_keys=False))
    block = genesis_block_path(config)
    argv = [str(config.binary("configtxgen")), "-profile", PROFILE, "-outputBlock", str(block),
            "-channelID", config.topology.channel]
    env = {"FABRIC_CFG_PATH": str(cdir)}
    result = _run(argv, "configtxgen", env)
    if result.returncode != 0:
        raise ChannelError(f"configtxgen failed: {_last_line(result.stderr)}")
    return block


def osnadmin_tls_files(config: NetworkConfig) -> tuple[Path, Path, Path]:
    """(CA file, client certificate, client key) for the orderers' admin API: the orderer
    org's root and its admin's TLS client certificate."""
    layout = StateLayout(config.state_dir)
    org = config.topology.orderer_org.name
    admin_tls = layout.user_dir(org, "admin") / "tls"
    return layout.ca_cert(org), admin_tls / "server.crt", admin_tls / "server.key"


def osnadmin_tls_args(config: NetworkConfig) -> list[str]:
    """TLS arguments of ``osnadmin``."""
    ca, cert, key = osnadmin_tls_files(config)
    return ["--ca-file", str(ca), "--client-cert", str(cert), "--client-key", str(key)]


def join_orderers(config: NetworkConfig, block: Path) -> None:
    """Join every orderer to the channel through its admin API.

    Raises:
        ChannelError: an orderer refused (the message names it and its answer).
    """
    for node in config.topology.orderers:
        argv = [str(config.binary("osnadmin")), "channel", "join",
                "--channelID", config.topology.channel, "--config-block", str(block),
                "-o", f"{node.host}:{node.admin_port}", *osnadmin_tls_args(config)]
        result = _run(argv, f"joining {node.name} to the channel")
        if result.returncode != 0 or "Status: 201" not in result.stdout + result.stderr:
            raise ChannelError(f"{node.name} did not join channel {config.topology.channel}: "
                               f"{_last_line(result.stdout + result.stderr)}")


def join_peers(config: NetworkConfig, block: Path) -> None:
    """Join every organization's peer to the channel, as the organization's admin.

    Raises:
        ChannelError: a peer refused (the message names it and its answer).
    """
    for org in config.topology.peer_orgs:
        try:
            run_peer(config, org, ["channel", "join", "-b", str(block)], "peer channel join",
                     timeout=60)
        except PeerCommandError as exc:
            raise ChannelError(f"{org.peer.name} did not join channel "
                               f"{config.topology.channel}: {exc}") from exc


def _last_line(text: str) -> str:
    """The most telling line of a tool's output: a panic or error line, else the last one."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    telling = [ln for ln in lines if ln.startswith("panic:") or "Error" in ln or "ERRO" in ln]
    return (telling or lines or ["(no output)"])[0 if telling else -1]


def _run(argv: list[str], what: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=False,
                              timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise ChannelError(f"{what} timed out after 60 s") from exc
