"""Network faults between the agents and their org app, mid-rollout (issue 17, "Network
faults"): real ``patchledger-agent`` daemons in their own network namespaces poll the real
ITOps app over veth pairs and a bridge, through a fault proxy in front of the app, while:

- one host's path is slow (every chunk delayed 300 ± 200 ms), one loses connections (15 %
  black-holed until the agent's request timeout, 10 % reset), one is a slow kernel-shaped
  link (``tc tbf``; plus ``tc netem`` delay and loss where the kernel has netem), one is
  partitioned (its veth down) for most of the run and then healed, one is clean;
- the app is restarted (a new app on the same database and board; its nonce memory lost);
- ITOps' peer is stopped and started again (the attestations and the report batches fail
  while it is down).

Then: every Deployment VERIFIED, every report the agents numbered on the ledger exactly
once (strictly increasing sequences up to each agent's last, the Host's replay counter
equal to it), the dispatcher's inbox empty and nothing refused but replays, each agent still
running and exiting 0 on SIGTERM, and the agents that met failures backed off within the
schedule's equal-jitter bounds with delays that differ (jitter).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchledger.app.dispatch.board import Board, Order
from patchledger.network import process
from tests.integration.test_agents_netns import Ledger, app_port, dispatcher_of
from tests.integration.test_agents_netns import ledger as ledger
from tests.support.agentlab import (
    AgentHost,
    OrgAppServer,
    ReportPump,
    app_config,
    enroll_agents,
    issued_sequences,
    report_sequences,
    start_agents,
    stop_agents,
    wait_for,
)
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.netns import NetLab, netem_available, open_lab
from tests.unit.agent.agent_support import sha256
from tests.unit.lifecycle.lifecycle_support import ITOPS

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

_RETRY = re.compile(r"cycle failed \((\d+) in a row\): .*; retrying in ([0-9.]+) s")
BACKOFF_BASE, BACKOFF_CAP = 1.0, 8.0


@pytest.fixture
def lab() -> Iterator[NetLab]:
    made = open_lab("plrn")
    try:
        yield made
    finally:
        made.close()


def backoffs(agent: AgentHost) -> list[tuple[int, float]]:
    """(failures in a row, delay) of every backoff the agent logged."""
    return [(int(m[1]), float(m[2])) for m in _RETRY.finditer(agent.log_text())]


def test_agents_poll_through_delay_loss_partition_and_app_and_peer_restarts(
    ledger: Ledger, lab: NetLab, tmp_path: Path
) -> None:
    net, w = ledger.net, ledger.w
    server = OrgAppServer(app_config(net, tmp_path / "app", poll_interval=1, projector=False),
                          lab.gateway, app_port(10), tmp_path / "tls", net.ca_cert(ITOPS))
    fronted = FaultProxy((lab.gateway, app_port(11)), (lab.gateway, app_port(10)))
    pump: ReportPump | None = None
    agents: list[AgentHost] = []
    try:
        server.start()
        fronted.start()
        url = f"https://{lab.gateway}:{app_port(11)}"
        token = server.api_token(f"op-faults-{w.run}")
        patch_id, artifact = ledger.patch("netfaults")
        assert server.client_call("POST", "/api/v1/artifacts", token,
                                  data=artifact).status_code == 201
        roles = ("slow", "lossy", "shaped", "partitioned", "clean")
        host_ids = [f"nf-{role}-{w.run}" for role in roles]
        agents = enroll_agents(lab, server, token, tmp_path / "hosts", host_ids,
                               server_url=url, channel=net.config.topology.channel,
                               roots_fingerprint=ledger.fingerprint)
        by_role = dict(zip(roles, agents, strict=True))
        for agent in agents:  # a short request timeout: a black-holed request fails fast
            text = agent.config.read_text().replace("request_timeout = 20.0",
                                                    "request_timeout = 4.0")
            agent.config.write_text(text)
        fronted.faults[by_role["slow"].host.address] = Faults(delay_ms=300, jitter_ms=200)
        fronted.faults[by_role["lossy"].host.address] = Faults(lose=0.15, reset=0.1)
        lab.shape(by_role["shaped"].host, rate_kbit=256)
        if netem_available():
            lab.netem(by_role["shaped"].host, delay_ms=100, jitter_ms=50, loss_percent=5)
        lab.partition(by_role["partitioned"].host)

        rollout_id = f"R-netfaults-{w.run}"
        op = w["itops-operator"]
        op.submit("CreateRollout", {"rollout_id": rollout_id, "patch_id": patch_id,
                                    "waves": [{"hosts": host_ids}]})
        op.submit("AdvanceRollout", rollout_id)
        board_dir = server.config.dispatch_dir
        assert board_dir is not None
        Board(board_dir).publish_orders({h: Order("apply", rollout_id, patch_id,
                                                  sha256(artifact)) for h in host_ids})
        pump = ReportPump(dispatcher_of(board_dir, ledger.ledger))
        pump.start()
        start_agents(lab, agents)

        def statuses() -> dict[str, str]:
            return {h: ledger.ledger.evaluate("GetRecord", "Deployment",
                                              f"{rollout_id}/{h}")["status"] for h in host_ids}

        def logs() -> str:
            return "; ".join(f"{a.host_id}: {a.log_text()[-600:]}" for a in agents)

        time.sleep(3)
        server.restart()  # while the agents poll
        time.sleep(2)
        peer = net.org(ITOPS).peer.name
        assert process.stop(net.layout, peer), f"{peer} was not running"
        time.sleep(4)  # attestations and report batches fail meanwhile
        net.manager.up()
        assert server.restarts == 1
        others = [h for h, role in zip(host_ids, roles, strict=True) if role != "partitioned"]
        wait_for("the reachable hosts VERIFIED",
                 lambda: all(statuses()[h] == "VERIFIED" for h in others), 300,
                 detail=lambda: f"{statuses()}; {logs()}")
        # the partitioned host got nothing done, and kept backing off
        assert statuses()[host_ids[3]] in ("SCHEDULED", "DISPATCHED"), statuses()
        lab.heal(by_role["partitioned"].host)
        wait_for("the healed host VERIFIED",
                 lambda: set(statuses().values()) == {"VERIFIED"}, 180,
                 detail=lambda: f"{statuses()}; {logs()}")
        assert all(a.process is not None and a.process.poll() is None for a in agents), logs()
        codes = stop_agents(agents)
        assert codes == dict.fromkeys(host_ids, 0), codes
        pump.stop()
        pump = None

        for agent in agents:
            seqs = report_sequences(ledger.ledger, rollout_id, agent.host_id)
            last = issued_sequences(agent)
            assert seqs and seqs == sorted(set(seqs)) and seqs[-1] == last, (agent.host_id,
                                                                               seqs, last)
            # the replay counter is the deployment's (reports do not write the Host record)
            deployment = ledger.ledger.evaluate("GetRecord", "Deployment",
                                                f"{rollout_id}/{agent.host_id}")
            assert deployment["report_sequence"] == last, (agent.host_id, deployment)
            assert (agent.target / "VERSION").read_text() == f"{patch_id}\n"
        assert Board(board_dir).pending_reports() == []  # nothing left behind
        refused = board_dir / "refused.jsonl"
        if refused.exists():  # only replays (a resent report the ledger already has)
            for line in refused.read_text().splitlines():
                assert "replay" in json.loads(line).get("reason", "").lower(), line

        # backoff with jitter: within the equal-jitter bounds, not all the same
        seen = backoffs(by_role["partitioned"]) + backoffs(by_role["lossy"])
        assert len(seen) >= 3, logs()
        for failures, delay in seen:
            ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1))
            assert ceiling / 2 - 0.05 <= delay <= ceiling + 0.05, (failures, delay)
        assert len({d for _, d in seen}) > 1, seen
        assert max(f for f, _ in backoffs(by_role["partitioned"])) >= 3
        assert fronted.stats["lost"] + fronted.stats["reset"] > 0, fronted.stats
    finally:
        stop_agents(agents)
        if pump is not None:
            pump.stop()
        fronted.stop()
        server.stop()
