"""The shape of the patchledger Fabric network: organizations, nodes and the port plan.

Pure data, no I/O. The demo consortium is one orderer organization running three Raft orderers
and three peer organizations with one peer each; every organization runs its own Fabric CA.

Port plan, relative to a base port ``B`` (default 17000) so that two networks (a developer's demo
and the test session's) can run side by side and none of Fabric's default ports (7050-7054,
8443, 9443) is used:

=====================  ==========================================
orderer ``i`` (0-2)     listen ``B+50+i``, admin ``B+60+i``, operations ``B+70+i``
peer ``j`` (0-2)        listen ``B+100+10j``, chaincode listener ``B+101+10j``,
                        operations ``B+102+10j``, the org's chaincode server ``B+103+10j``
CA ``k`` (0-3)          listen ``B+200+k``, operations ``B+210+k``
=====================  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class NodeKind(StrEnum):
    """The kinds of long-running process a network is made of."""

    CA = "ca"
    ORDERER = "orderer"
    PEER = "peer"
    CHAINCODE = "chaincode"


@dataclass(frozen=True)
class Node:
    """One process of the network, with the addresses it listens on.

    Attributes:
        name: unique process name, e.g. ``peer0.secops``; also its directory and log file name.
        kind: what the process is.
        org: the name of the organization it belongs to.
        host: the host name or address other processes use to reach it (also a TLS SAN).
        port: the main listen port (gRPC for orderers, peers, chaincode; HTTPS for CAs).
        ops_port: the operations (health, metrics) port; 0 when the process has none.
        admin_port: the orderer's channel-participation admin port; 0 otherwise.
        chaincode_port: the peer's chaincode listener port; 0 otherwise.
    """

    name: str
    kind: NodeKind
    org: str
    host: str
    port: int
    ops_port: int = 0
    admin_port: int = 0
    chaincode_port: int = 0

    @property
    def address(self) -> str:
        """``host:port`` of the main listener."""
        return f"{self.host}:{self.port}"

    @property
    def fqdn(self) -> str:
        """The node's certificate name, e.g. ``peer0.secops.patchledger.local``."""
        return f"{self.name}.patchledger.local"


@dataclass(frozen=True)
class Org:
    """An organization of the consortium.

    Attributes:
        name: short name, e.g. ``secops``; used in paths and process names.
        msp_id: the MSP id on the channel, e.g. ``SecOpsMSP``.
        is_orderer_org: True for the organization that runs the ordering service.
        ca: its Fabric CA server.
        nodes: its orderers, or its peer and chaincode server.
    """

    name: str
    msp_id: str
    is_orderer_org: bool
    ca: Node
    nodes: tuple[Node, ...] = field(default=())

    def of_kind(self, kind: NodeKind) -> tuple[Node, ...]:
        """This organization's nodes of one kind."""
        return tuple(n for n in self.nodes if n.kind is kind)

    @property
    def peer(self) -> Node:
        """The organization's peer.

        Raises:
            ValueError: the organization runs no peer (the orderer organization).
        """
        peers = self.of_kind(NodeKind.PEER)
        if not peers:
            raise ValueError(f"organization {self.name} runs no peer")
        return peers[0]


@dataclass(frozen=True)
class Topology:
    """The whole network: organizations and the application channel."""

    orgs: tuple[Org, ...]
    channel: str

    @property
    def orderer_org(self) -> Org:
        """The ordering-service organization."""
        return next(o for o in self.orgs if o.is_orderer_org)

    @property
    def peer_orgs(self) -> tuple[Org, ...]:
        """The application (peer) organizations, in declaration order."""
        return tuple(o for o in self.orgs if not o.is_orderer_org)

    @property
    def orderers(self) -> tuple[Node, ...]:
        """Every orderer node."""
        return self.orderer_org.of_kind(NodeKind.ORDERER)

    @property
    def peers(self) -> tuple[Node, ...]:
        """Every peer node, one per peer organization."""
        return tuple(o.peer for o in self.peer_orgs)

    def org(self, name: str) -> Org:
        """The organization called ``name`` (short name or MSP id, case-insensitive).

        Raises:
            KeyError: no organization has that name.
        """
        wanted = name.lower()
        for o in self.orgs:
            if wanted in (o.name, o.msp_id.lower()):
                return o
        known = ", ".join(o.name for o in self.orgs)
        raise KeyError(f"no organization {name!r} in the network (known: {known})")

    def all_nodes(self) -> tuple[Node, ...]:
        """Every process: CAs first, then orderers, then peers, then chaincode servers."""
        order = {NodeKind.CA: 0, NodeKind.ORDERER: 1, NodeKind.PEER: 2, NodeKind.CHAINCODE: 3}
        nodes = [o.ca for o in self.orgs] + [n for o in self.orgs for n in o.nodes]
        return tuple(sorted(nodes, key=lambda n: order[n.kind]))

    def node(self, name: str) -> Node:
        """The node called ``name``.

        Raises:
            KeyError: no node has that name.
        """
        for n in self.all_nodes():
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.all_nodes())
        raise KeyError(f"no node {name!r} in the network (known: {known})")


#: (short name, MSP id) of the peer organizations of the demo consortium.
PEER_ORGS: tuple[tuple[str, str], ...] = (
    ("secops", "SecOpsMSP"),
    ("itops", "ITOpsMSP"),
    ("compliance", "ComplianceMSP"),
)
ORDERER_ORG: tuple[str, str] = ("orderer", "OrdererMSP")
ORDERER_COUNT = 3


def build_topology(
    *, host: str = "127.0.0.1", port_base: int = 17000, channel: str = "patchledger",
    org_hosts: Mapping[str, str] | None = None,
) -> Topology:
    """Build the demo consortium's topology with the port plan above: every node on ``host``,
    except the CA, peer and chaincode server of each peer organization named in
    ``org_hosts`` (MSP id -> host), which listen on that organization's own host, as on a
    separate machine (their TLS certificates name it: :func:`network.identities.tls_hosts`).

    Raises:
        ValueError: the port base leaves no room for the plan (it needs ``B+213 <= 65535``),
            or ``org_hosts`` names an MSP id that is no peer organization's.
    """
    if not 1024 <= port_base <= 65535 - 213:
        raise ValueError(f"port base {port_base} must be between 1024 and {65535 - 213}")
    hosts = dict(org_hosts or {})
    unknown = sorted(set(hosts) - {m for _, m in PEER_ORGS})
    if unknown:
        raise ValueError(f"org_hosts names {', '.join(unknown)}: not a peer organization's "
                         f"MSP id (known: {', '.join(m for _, m in PEER_ORGS)})")
    b = port_base
    name, msp = ORDERER_ORG
    orderers = tuple(
        Node(f"orderer{i}", NodeKind.ORDERER, name, host, b + 50 + i,
             ops_port=b + 70 + i, admin_port=b + 60 + i)
        for i in range(ORDERER_COUNT)
    )
    orgs = [Org(name, msp, True, _ca(name, host, b, 0), orderers)]
    for j, (org_name, org_msp) in enumerate(PEER_ORGS):
        p = b + 100 + 10 * j
        own = hosts.get(org_msp, host)
        peer = Node(f"peer0.{org_name}", NodeKind.PEER, org_name, own, p,
                    ops_port=p + 2, chaincode_port=p + 1)
        ccaas = Node(f"chaincode.{org_name}", NodeKind.CHAINCODE, org_name, own, p + 3)
        orgs.append(Org(org_name, org_msp, False, _ca(org_name, own, b, j + 1), (peer, ccaas)))
    return Topology(tuple(orgs), channel)


def _ca(org: str, host: str, base: int, k: int) -> Node:
    return Node(f"ca.{org}", NodeKind.CA, org, host, base + 200 + k, ops_port=base + 210 + k)
