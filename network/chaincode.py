"""Deploying the chaincode as a service: package, install, serve, approve, commit.

One package serves every organization. Its ``connection.json`` is generic; the ccaas builder
(``network/builders/ccaas``) replaces it on each peer with that peer's file
``nodes/<peer>/ccaas/<label>.json``, written here, which points at the organization's own
chaincode server with mutual TLS (the organization's CA as root, the peer's TLS certificate as
client certificate). So the package id is the same everywhere while each organization runs, and
trusts, only its own chaincode process.

Upgrading is the same flow with a new version label and the next sequence number.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from patchledger.common.durable import write_atomic
from patchledger.network.config import ChaincodeSettings, NetworkConfig, StateLayout
from patchledger.network.errors import NetworkError
from patchledger.network.nodes import org_roots_dir
from patchledger.network.peercli import PeerCommandError, run_peer
from patchledger.network.topology import Node, NodeKind, Org

#: Additional chaincodes use the chaincode-server ports after the main one (see topology).
MAX_EXTRA_SLOTS = 6


class ChaincodeError(NetworkError):
    """A lifecycle step failed; the message names the organization, the step and the reason."""


@dataclass(frozen=True)
class CommittedChaincode:
    """A chaincode definition committed on the channel."""

    name: str
    version: str
    sequence: int
    approvals: dict[str, bool]


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    """A gzipped tar of ``files`` whose bytes depend only on the names and contents."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    raw = buf.getvalue()
    # gzip stores a timestamp at bytes 4-7; tarfile sets it from time.time(): zero it.
    return raw[:4] + b"\0\0\0\0" + raw[8:]


def package_bytes(settings: ChaincodeSettings) -> bytes:
    """The ccaas chaincode package (metadata.json + code.tar.gz) for ``settings`` (pure)."""
    connection = {"address": "set-per-peer-by-the-ccaas-builder:0", "dial_timeout": "10s",
                  "tls_required": True}
    code = _tar_bytes({"connection.json": json.dumps(connection, indent=2).encode()})
    metadata = {"type": "ccaas", "label": settings.label}
    return _tar_bytes({"metadata.json": json.dumps(metadata).encode(), "code.tar.gz": code})


def package_id(settings: ChaincodeSettings) -> str:
    """The package id peers compute for the package: ``label:sha256(package)``."""
    return f"{settings.label}:{hashlib.sha256(package_bytes(settings)).hexdigest()}"


def write_package(config: NetworkConfig, settings: ChaincodeSettings) -> Path:
    """Write the chaincode package file and return its path."""
    path = StateLayout(config.state_dir).chaincode_dir / f"{settings.label}.tgz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(package_bytes(settings))
    return path


def server_node(org: Org, settings: ChaincodeSettings) -> Node:
    """The organization's chaincode-server process for ``settings`` (slot 0: the main one)."""
    main = org.of_kind(NodeKind.CHAINCODE)[0]
    if settings.slot == 0:
        return main
    if not 1 <= settings.slot <= MAX_EXTRA_SLOTS:
        raise ChaincodeError(f"chaincode {settings.name}: slot {settings.slot} is not 1-"
                             f"{MAX_EXTRA_SLOTS}")
    return replace(main, name=f"chaincode-{settings.name}.{org.name}",
                   port=main.port + settings.slot)


def write_connection_files(config: NetworkConfig, settings: ChaincodeSettings) -> None:
    """Write each peer's connection settings for its organization's chaincode server."""
    layout = StateLayout(config.state_dir)
    for org in config.topology.peer_orgs:
        server = server_node(org, settings)
        peer_tls = layout.node_tls(org.peer.name)
        conn = {
            "address": server.address,
            "dial_timeout": "10s",
            "tls_required": True,
            "client_auth_required": True,
            "root_cert": layout.ca_cert(org.name).read_text(),
            "client_cert": (peer_tls / "server.crt").read_text(),
            "client_key": (peer_tls / "server.key").read_text(),
        }
        target = layout.node_dir(org.peer.name) / "ccaas" / f"{settings.label}.json"
        write_atomic(target, json.dumps(conn), mode=0o600)  # holds the peer's TLS key


def write_org_roots(config: NetworkConfig) -> Path:
    """Write ``<MSPID>.pem`` (the organization's CA root) for every peer organization into
    :func:`network.nodes.org_roots_dir` and return that directory.

    Chaincode cannot read the channel's MSP configuration; each chaincode server reads these
    roots at start (``PATCHLEDGER_ORG_ROOTS_DIR``) to check that a host certificate given to
    ``EnrollHost`` was issued by its owner organization's CA.
    """
    layout = StateLayout(config.state_dir)
    directory = org_roots_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    for org in config.topology.peer_orgs:
        write_atomic(directory / f"{org.msp_id}.pem", layout.ca_cert(org.name).read_bytes(),
                     mode=0o644)
    return directory


def _orderer_args(config: NetworkConfig) -> list[str]:
    orderer = config.topology.orderers[0]
    layout = StateLayout(config.state_dir)
    return ["-o", orderer.address, "--tls",
            "--cafile", str(layout.ca_cert(config.topology.orderer_org.name))]


def install(config: NetworkConfig, package: Path) -> None:
    """Install the package on every peer (already installed counts as done)."""
    for org in config.topology.peer_orgs:
        try:
            run_peer(config, org, ["lifecycle", "chaincode", "install", str(package)], "install")
        except PeerCommandError as exc:
            if "already successfully installed" not in str(exc):
                raise


def committed(config: NetworkConfig, name: str) -> CommittedChaincode | None:
    """The committed definition of chaincode ``name``, or None if there is none."""
    org = config.topology.peer_orgs[0]
    try:
        out = run_peer(config, org, ["lifecycle", "chaincode", "querycommitted", "-C",
                                  config.topology.channel, "-n", name, "-O", "json"],
                    "querycommitted")
    except PeerCommandError as exc:
        if "not found" in str(exc) or "is not defined" in str(exc):
            return None
        raise
    try:
        data = json.loads(out)
        version, sequence = data["version"], int(data["sequence"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PeerCommandError(f"querycommitted for {name}: unreadable answer {out[:200]!r}") \
            from exc
    return CommittedChaincode(name, version, sequence,
                              dict(data.get("approvals", {})))


def approve_and_commit(config: NetworkConfig, cc: ChaincodeSettings, pkg_id: str,
                       sequence: int) -> None:
    """Approve the definition for every organization (in parallel), then commit it.

    Raises:
        PeerCommandError: an approval or the commit failed.
    """
    common = ["--channelID", config.topology.channel, "--name", cc.name,
              "--version", cc.version, "--sequence", str(sequence), *_orderer_args(config)]

    def approve(org: Org) -> None:
        run_peer(config, org, ["lifecycle", "chaincode", "approveformyorg", "--package-id",
                            pkg_id, *common], "approveformyorg")

    with ThreadPoolExecutor(max_workers=len(config.topology.peer_orgs)) as pool:
        for fut in [pool.submit(approve, o) for o in config.topology.peer_orgs]:
            fut.result()
    layout = StateLayout(config.state_dir)
    targets: list[str] = []
    for org in config.topology.peer_orgs:
        targets += ["--peerAddresses", org.peer.address,
                    "--tlsRootCertFiles", str(layout.ca_cert(org.name))]
    run_peer(config, config.topology.peer_orgs[0],
          ["lifecycle", "chaincode", "commit", *common, *targets], "commit")
