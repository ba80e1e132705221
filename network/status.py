"""The network's status: every node's process, health, channel membership and height, the Raft
leader, and the committed chaincode. :func:`collect` gathers it as plain data (the ``--json``
output); :func:`render` turns that into the human-readable table."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from patchledger.network import chaincode as cc
from patchledger.network import channel, health, process
from patchledger.network.config import NetworkConfig, StateLayout
from patchledger.network.peercli import PeerCommandError
from patchledger.network.topology import Node, NodeKind


def _node_status(config: NetworkConfig, node: Node) -> dict[str, Any]:
    layout = StateLayout(config.state_dir)
    proc = process.info(layout, node.name)
    entry: dict[str, Any] = {
        "name": node.name, "kind": node.kind.value, "org": node.org, "address": node.address,
        "process": proc.state.value, "pid": proc.pid or None,
    }
    if node.ops_port:
        ok, detail = health.healthz(node.host, node.ops_port)
        entry["healthy"], entry["health"] = ok, detail
    elif node.kind is NodeKind.CHAINCODE:
        entry["healthy"] = proc.state is process.ProcState.RUNNING and \
            process.port_in_use(node.host, node.port)
    ch = config.topology.channel
    if node.kind in (NodeKind.ORDERER, NodeKind.PEER) and entry.get("healthy"):
        m = health.metrics(node.host, node.ops_port)
        height = health.channel_metric(m, "ledger_blockchain_height", ch)
        entry["channel"] = {"name": ch, "joined": height is not None,
                            "height": int(height) if height is not None else None}
        if node.kind is NodeKind.PEER:
            known = health.channel_metric(m, "gossip_membership_total_peers_known", ch)
            entry["channel"]["gossip_peers_known"] = None if known is None else int(known)
        if node.kind is NodeKind.ORDERER:
            ca_file, cert, key = channel.osnadmin_tls_files(config)
            part = health.participation(node.host, node.admin_port, ch, ca_file, cert, key)
            if part is not None:
                entry["channel"].update(joined=True, status=part.get("status"),
                                        relation=part.get("consensusRelation"),
                                        height=part.get("height"))
            entry["raft_leader"] = health.channel_metric(
                m, "consensus_etcdraft_is_leader", ch) == 1
    return entry


def collect(config: NetworkConfig, manifest: dict[str, Any] | None,
            nodes: list[Node] | None = None) -> dict[str, Any]:
    """Status of ``nodes`` (default: the topology's) and of the main chaincode, as
    JSON-serialisable data."""
    nodes = list(config.topology.all_nodes()) if nodes is None else nodes
    with ThreadPoolExecutor(max_workers=6) as pool:
        entries = list(pool.map(lambda n: _node_status(config, n), nodes))
    leader = next((e["name"] for e in entries if e.get("raft_leader")), None)
    chaincode: dict[str, Any] | None = None
    peers_up = any(e["kind"] == "peer" and e.get("healthy") for e in entries)
    if manifest is not None and peers_up:
        try:
            committed = cc.committed(config, config.chaincode.name)
        except PeerCommandError as exc:
            chaincode = {"name": config.chaincode.name, "committed": False, "error": str(exc)}
        else:
            chaincode = {"name": config.chaincode.name, "committed": committed is not None}
            if committed is not None:
                chaincode.update(version=committed.version, sequence=committed.sequence,
                                 approvals=committed.approvals)
    return {
        "state_dir": str(config.state_dir),
        "created": manifest is not None,
        "channel": config.topology.channel,
        "raft_leader": leader,
        "nodes": entries,
        "chaincode": chaincode,
        "healthy": manifest is not None and leader is not None
        and all(e.get("healthy") for e in entries)
        and bool(chaincode and chaincode.get("committed")),
    }


def render(status: dict[str, Any]) -> str:
    """The status as a human-readable table."""
    if not status["created"]:
        return (f"no network in {status['state_dir']} "
                "(run `patchledger network up` to create one)")
    rows = [("NODE", "KIND", "ORG", "ADDRESS", "PROCESS", "HEALTH", "CHANNEL", "HEIGHT", "")]
    for e in status["nodes"]:
        ch = e.get("channel") or {}
        health_s = "ok" if e.get("healthy") else (e.get("health") or "down")
        joined = "joined" if ch.get("joined") else ("-" if not ch else "not joined")
        if ch.get("status"):
            joined += f" ({ch['relation']}, {ch['status']})"
        if ch.get("gossip_peers_known") is not None:
            joined += f" (knows {ch['gossip_peers_known']} peers)"
        rows.append((e["name"], e["kind"], e["org"], e["address"],
                     f"{e['process']}" + (f" {e['pid']}" if e.get("pid") else ""),
                     health_s, joined,
                     str(ch.get("height")) if ch.get("height") is not None else "-",
                     "leader" if e.get("raft_leader") else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.append("")
    lines.append(f"channel {status['channel']}: Raft leader {status['raft_leader'] or 'NONE'}")
    chaincode = status["chaincode"]
    if chaincode is None:
        lines.append("chaincode: unknown (no peer reachable)")
    elif chaincode.get("committed"):
        approvals = ", ".join(f"{k}={'yes' if v else 'no'}"
                              for k, v in sorted(chaincode.get("approvals", {}).items()))
        lines.append(f"chaincode {chaincode['name']}: version {chaincode['version']}, "
                     f"sequence {chaincode['sequence']} committed ({approvals})")
    else:
        lines.append(f"chaincode {chaincode['name']}: NOT committed "
                     f"{chaincode.get('error', '')}".rstrip())
    lines.append("overall: " + ("healthy" if status["healthy"] else "NOT healthy"))
    return "\n".join(lines)
