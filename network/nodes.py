"""Command lines and environments of the network's processes (pure: no I/O).

Nodes keep Fabric's stock ``core.yaml`` / ``orderer.yaml`` untouched; everything specific is an
environment override (``CORE_*``, ``ORDERER_*``, ``FABRIC_CA_SERVER_*``). Two settings make a
peer right for a machine without Docker:

- ``CORE_VM_ENDPOINT`` is set but empty, so the peer creates no Docker client and its health
  check does not fail on a missing ``/var/run/docker.sock``;
- ``CORE_CHAINCODE_EXTERNALBUILDERS`` names our ccaas builder (``network/builders/ccaas``), so
  chaincode runs as a service the peer dials.
"""

from __future__ import annotations

from pathlib import Path

from patchledger.network.config import (
    BUILDER_DIR,
    ChaincodeSettings,
    NetworkConfig,
    StateLayout,
)
from patchledger.network.topology import Node, Org

_BASE_ENV_KEYS = ("PATH", "HOME", "LANG", "TMPDIR")


def _base_env(parent_env: dict[str, str]) -> dict[str, str]:
    return {k: parent_env[k] for k in _BASE_ENV_KEYS if k in parent_env}


def ca_command(config: NetworkConfig, org: Org, bootstrap_secret: str,
               parent_env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``fabric-ca-server start`` for an organization's CA, TLS on."""
    layout = StateLayout(config.state_dir)
    ca = org.ca
    env = _base_env(parent_env) | {
        "FABRIC_CA_SERVER_HOME": str(layout.ca_home(org.name)),
        "FABRIC_CA_SERVER_TLS_ENABLED": "true",
        "FABRIC_CA_SERVER_CA_NAME": ca.name,
        "FABRIC_CA_SERVER_CSR_CN": ca.fqdn,
        "FABRIC_CA_SERVER_CSR_HOSTS": ",".join(sorted({ca.host, ca.fqdn, "localhost",
                                                       "127.0.0.1"})),
        "FABRIC_CA_SERVER_ADDRESS": ca.host,
        "FABRIC_CA_SERVER_PORT": str(ca.port),
        "FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS": f"{ca.host}:{ca.ops_port}",
        "FABRIC_CA_SERVER_METRICS_PROVIDER": "prometheus",
    }
    # The bootstrap identity goes through the environment, not argv, so that `ps` never shows
    # the secret.
    env["FABRIC_CA_SERVER_BOOT"] = f"admin:{bootstrap_secret}"
    argv = [str(config.binary("fabric-ca-server")), "start"]
    return argv, env


def orderer_command(config: NetworkConfig, node: Node,
                    parent_env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``orderer`` with TLS everywhere, channel participation, and mutual-TLS admin API."""
    layout = StateLayout(config.state_dir)
    tls = layout.node_tls(node.name)
    data = layout.node_data(node.name)
    org_ca = layout.ca_cert(node.org)
    env = _base_env(parent_env) | {
        "FABRIC_CFG_PATH": str(config.fabric_cfg_dir),
        "FABRIC_LOGGING_SPEC": config.log_spec,
        "ORDERER_GENERAL_LISTENADDRESS": node.host,
        "ORDERER_GENERAL_LISTENPORT": str(node.port),
        "ORDERER_GENERAL_LOCALMSPID": config.topology.org(node.org).msp_id,
        "ORDERER_GENERAL_LOCALMSPDIR": str(layout.node_msp(node.name)),
        "ORDERER_GENERAL_TLS_ENABLED": "true",
        "ORDERER_GENERAL_TLS_PRIVATEKEY": str(tls / "server.key"),
        "ORDERER_GENERAL_TLS_CERTIFICATE": str(tls / "server.crt"),
        "ORDERER_GENERAL_TLS_ROOTCAS": f"[{tls / 'ca.crt'}]",
        "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
        "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
        "ORDERER_FILELEDGER_LOCATION": str(data / "ledger"),
        "ORDERER_CONSENSUS_WALDIR": str(data / "etcdraft" / "wal"),
        "ORDERER_CONSENSUS_SNAPDIR": str(data / "etcdraft" / "snap"),
        "ORDERER_OPERATIONS_LISTENADDRESS": f"{node.host}:{node.ops_port}",
        "ORDERER_METRICS_PROVIDER": "prometheus",
        "ORDERER_ADMIN_LISTENADDRESS": f"{node.host}:{node.admin_port}",
        "ORDERER_ADMIN_TLS_ENABLED": "true",
        "ORDERER_ADMIN_TLS_PRIVATEKEY": str(tls / "server.key"),
        "ORDERER_ADMIN_TLS_CERTIFICATE": str(tls / "server.crt"),
        "ORDERER_ADMIN_TLS_ROOTCAS": f"[{tls / 'ca.crt'}]",
        "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
        "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{org_ca}]",
    }
    return [str(config.binary("orderer"))], env


def peer_command(config: NetworkConfig, node: Node,
                 parent_env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``peer node start`` with TLS, LevelDB, the gateway, and the ccaas external builder."""
    layout = StateLayout(config.state_dir)
    tls = layout.node_tls(node.name)
    data = layout.node_data(node.name)
    builders = (f"[{{name: patchledger-ccaas, path: {BUILDER_DIR}, "
                "propagateEnvironment: [PATCHLEDGER_CCAAS_DIR]}]")
    env = _base_env(parent_env) | {
        "FABRIC_CFG_PATH": str(config.fabric_cfg_dir),
        "FABRIC_LOGGING_SPEC": config.log_spec,
        "CORE_VM_ENDPOINT": "",
        "CORE_CHAINCODE_EXTERNALBUILDERS": builders,
        "PATCHLEDGER_CCAAS_DIR": str(layout.node_dir(node.name) / "ccaas"),
        "CORE_PEER_ID": node.fqdn,
        "CORE_PEER_LISTENADDRESS": node.address,
        "CORE_PEER_ADDRESS": node.address,
        "CORE_PEER_CHAINCODELISTENADDRESS": f"{node.host}:{node.chaincode_port}",
        "CORE_PEER_CHAINCODEADDRESS": f"{node.host}:{node.chaincode_port}",
        "CORE_PEER_GOSSIP_BOOTSTRAP": node.address,
        "CORE_PEER_GOSSIP_EXTERNALENDPOINT": node.address,
        # Peers join the channel one after the other; a peer that dials another org's anchor
        # peer before that peer has joined is refused, and retries after this interval
        # (Fabric's default is 25 s, which leaves gateways unable to find other orgs' peers
        # for that long after start-up).
        "CORE_PEER_GOSSIP_RECONNECTINTERVAL": "2s",
        "CORE_PEER_LOCALMSPID": config.topology.org(node.org).msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(layout.node_msp(node.name)),
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_CERT_FILE": str(tls / "server.crt"),
        "CORE_PEER_TLS_KEY_FILE": str(tls / "server.key"),
        "CORE_PEER_TLS_ROOTCERT_FILE": str(tls / "ca.crt"),
        "CORE_PEER_FILESYSTEMPATH": str(data),
        "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(data / "snapshots"),
        "CORE_LEDGER_STATE_STATEDATABASE": "goleveldb",
        "CORE_OPERATIONS_LISTENADDRESS": f"{node.host}:{node.ops_port}",
        "CORE_METRICS_PROVIDER": "prometheus",
        "CORE_PEER_GATEWAY_ENABLED": "true",
        "CORE_CHAINCODE_EXECUTETIMEOUT": "30s",
        # A chaincode server restarted under a new package id before its definition is
        # committed is not found by that id; fail within 30 s instead of Fabric's 300 s.
        "CORE_CHAINCODE_STARTUPTIMEOUT": "30s",
    }
    return [str(config.binary("peer")), "node", "start"], env


def org_roots_dir(config: NetworkConfig) -> Path:
    """Directory of the channel organizations' root certificates, ``<MSPID>.pem`` each, given
    to every chaincode server as ``PATCHLEDGER_ORG_ROOTS_DIR`` (written by
    :func:`network.chaincode.write_org_roots`)."""
    return StateLayout(config.state_dir).channel_dir / "org-roots"


def chaincode_command(config: NetworkConfig, node: Node, settings: ChaincodeSettings,
                      package_id: str,
                      parent_env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``python -m patchledger.chaincode`` serving ``settings.contract`` for ``node``'s org.

    TLS with the certificate the organization's CA issued to its chaincode servers; mutual
    TLS, trusting only that CA, so only the organization's own peer (whose TLS certificate that
    CA issued) can connect. ``PATCHLEDGER_ORG_ROOTS_DIR`` names the channel organizations' root
    certificates, against which the contract checks host certificates.
    """
    layout = StateLayout(config.state_dir)
    tls = layout.node_tls(f"chaincode.{node.org}")
    env = _base_env(parent_env) | {
        "CHAINCODE_ID": package_id,
        "CHAINCODE_SERVER_ADDRESS": node.address,
        "CHAINCODE_TLS_CERT_FILE": str(tls / "server.crt"),
        "CHAINCODE_TLS_KEY_FILE": str(tls / "server.key"),
        "CHAINCODE_TLS_CLIENT_CA_FILE": str(layout.ca_cert(node.org)),
        "CHAINCODE_CONTRACT": settings.contract,
        "CHAINCODE_LOG_LEVEL": "WARNING",
        "PATCHLEDGER_ORG_ROOTS_DIR": str(org_roots_dir(config)),
    }
    return [str(config.python), "-m", "patchledger.chaincode"], env


def admin_env(config: NetworkConfig, org: Org, target: Node | None = None) -> dict[str, str]:
    """Environment for the ``peer`` CLI acting as the organization's admin against ``target``
    (default: the organization's own peer)."""
    layout = StateLayout(config.state_dir)
    peer = target or org.peer
    admin = layout.user_dir(org.name, "admin")
    return {
        "FABRIC_CFG_PATH": str(config.fabric_cfg_dir),
        "FABRIC_LOGGING_SPEC": "warning",
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_ROOTCERT_FILE": str(layout.ca_cert(peer.org)),
        "CORE_PEER_ADDRESS": peer.address,
        "CORE_PEER_LOCALMSPID": org.msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(admin / "msp"),
        "CORE_PEER_TLS_CLIENTCERT_FILE": str(admin / "tls" / "server.crt"),
        "CORE_PEER_TLS_CLIENTKEY_FILE": str(admin / "tls" / "server.key"),
    }
