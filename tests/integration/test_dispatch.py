"""The dispatcher and the fleet simulator on the real network (issue 14): 50 simulated ITOps
hosts, enrolled through ITOps' CA (keys made locally, ``role=host``/``host_id`` certificates,
``EnrollHost`` by the operator), each running the real agent code: attestations endorsed by
the three organizations' peers and verified offline against roots pinned from an attested
``AttestChannelRoots``, the file-tree backend, a simulated health check, signed reports
batched by the dispatcher into ``ReportDeployments``.

- a rollout over the 50 hosts (canary, then waves) completes, every decision on the ledger
  with its reason;
- a failing canary host halts the rollout by itself and the canary is rolled back;
- a revocation mid-rollout (the ledger halts the rollout and orders the rollback in the
  revocation's own transaction) stops dispatching and the hosts roll back;
- the dispatcher process (``patchledger dispatch run``) killed mid-wave (SIGKILL) resumes from
  the ledger and its checkpoint with nothing lost or repeated.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from patchledger.app.dispatch.board import Board
from patchledger.app.dispatch.connect import PeerEndpoint, open_ledger
from patchledger.app.dispatch.dispatcher import Dispatcher, DispatchSettings
from patchledger.app.dispatch.ledger import FabricLedger
from patchledger.app.dispatch.planner import (
    Quantity,
    RolloutPlan,
    RolloutRequest,
    WaveRequest,
    plan_rollout,
)
from patchledger.app.dispatch.relay import AgentRelay, ArtifactDirectory
from patchledger.app.fabric import EcdsaSigner, Identity
from patchledger.app.fleet.cli import pin_roots
from patchledger.app.fleet.enroll import enroll_fleet
from patchledger.app.fleet.simulator import Fleet, SimulatedHost, artifact_of, host_specs
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from patchledger.chaincode.lifecycle.trust import OrgTrust
from patchledger.network.config import REPO_ROOT
from tests.integration.lifecycle_world import (
    World,
    approve,
    kev_entry,
    make_tested_patch,
    open_world,
    vulnerability_of,
)
from tests.support.network import TEST_PORT_BASE, LocalNetwork
from tests.unit.lifecycle.lifecycle_support import ITOPS, ORGS, SECOPS

pytestmark = pytest.mark.integration

IDENTITIES = ("secops-feed", "secops-operator", "itops-operator", "secops-approver",
              "compliance-approver")
HOSTS = 50


@dataclass
class Env:
    """The module's world, the operator's ledger adapter and the simulated fleet."""

    w: World
    net: LocalNetwork
    ledger: FabricLedger
    hosts: list[SimulatedHost]
    roots: OrgTrust
    vuln_id: str
    groups: tuple[str, ...]
    root: Path

    def group(self, name: str) -> list[SimulatedHost]:
        return [h for h in self.hosts if name in h.spec.groups]

    def patch(self, name: str) -> tuple[str, bytes]:
        """A new patch approved by SecOps and Compliance; its id and artifact."""
        patch_id = f"P-{name}-{self.w.run}"
        artifact = artifact_of({"VERSION": f"{patch_id}\n".encode()})
        digest = make_tested_patch(self.w, patch_id, self.vuln_id, artifact,
                                   title=f"dispatch test {name}")
        approve(self.w, patch_id, digest, "secops-approver", "compliance-approver")
        return patch_id, artifact

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        rollout: dict[str, Any] = self.ledger.evaluate("GetRecord", "Rollout", rollout_id)
        return rollout

    def deployments(self, rollout_id: str) -> dict[str, dict[str, Any]]:
        return {d["host_id"]: d for d in self.ledger.records("Deployment")
                if d["rollout_id"] == rollout_id}

    def history(self, rollout_id: str) -> list[dict[str, Any]]:
        return [v["record"] for v in self.ledger.evaluate("GetHistory", "Rollout", rollout_id)]


def _peers(net: LocalNetwork) -> list[PeerEndpoint]:
    return [PeerEndpoint(msp, net.org(msp).peer.address, net.ca_cert(msp).read_bytes())
            for msp in ORGS]


@pytest.fixture(scope="module")
def env(fabric_network: LocalNetwork, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Env]:
    net = fabric_network
    root = tmp_path_factory.mktemp("dispatch")
    w = open_world(net, IDENTITIES, prefix="dispatch-")
    try:
        vuln = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", vuln)
        op = w["itops-operator"].user
        groups = tuple(f"{g}-{w.run}" for g in ("a", "b", "c"))
        with open_ledger(op.identity, op.signer, _peers(net),
                         channel=net.config.topology.channel) as ledger:
            admin = net.admin_msp(ITOPS)
            hosts = enroll_fleet(
                host_specs(HOSTS, prefix=f"sim-{w.run}", groups=groups), root / "fleet",
                ca=net.ca_client(ITOPS), registrar=Identity.from_msp_dir(admin, ITOPS),
                registrar_signer=EcdsaSigner.from_msp_dir(admin), operator=ledger,
                channel=net.config.topology.channel, workers=8)
            fingerprint = roots_fingerprint(OrgTrust.from_pem(
                {m: net.ca_cert(m).read_bytes() for m in ORGS}))
            roots = pin_roots(ledger.contract, net.config.topology.channel, list(ORGS),
                              fingerprint)
            yield Env(w, net, ledger, hosts, roots, vuln["vuln_id"], groups, root)
    finally:
        w.close()


def _settings() -> DispatchSettings:
    return DispatchSettings(batch_max_latency=0.5, interval=0.3,
                            report_endorsing=(ITOPS, SECOPS))


@dataclass
class Running:
    """Threads of a dispatcher and a fleet; stopped on exit."""

    stop: threading.Event
    threads: list[threading.Thread]
    fleet: Fleet

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def _fleet(env: Env, state: Path, hosts: Sequence[SimulatedHost], artifact: bytes) -> Fleet:
    artifacts = ArtifactDirectory(state / "artifacts")
    artifacts.put(artifact)
    relay = AgentRelay(Board(state), env.ledger.contract, artifacts, list(ORGS))
    return Fleet(list(hosts), relay, env.roots, workers=8)


def _start(env: Env, state: Path, hosts: Sequence[SimulatedHost], artifact: bytes,
           dispatcher: Dispatcher | None) -> Running:
    stop = threading.Event()
    fleet = _fleet(env, state, hosts, artifact)
    threads = [threading.Thread(target=fleet.run, args=(stop, 0.3), daemon=True)]
    if dispatcher is not None:
        threads.append(threading.Thread(target=dispatcher.run, args=(stop,), daemon=True))
    for t in threads:
        t.start()
    return Running(stop, threads, fleet)


def _wait(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)


def _wait_rolled_back(env: Env, rollout_id: str) -> None:
    """Until the rollout is ROLLED_BACK and every host it reached reported ROLLED_BACK."""
    _wait("the rollout to be rolled back",
          lambda: env.rollout(rollout_id)["status"] == "ROLLED_BACK")
    _wait("its hosts to report ROLLED_BACK", lambda: {
        d["status"] for d in env.deployments(rollout_id).values()} == {"ROLLED_BACK"},
        timeout=60)


def _with_failing(hosts: Sequence[SimulatedHost], failing: set[str]) -> list[SimulatedHost]:
    return [dataclasses.replace(h, spec=dataclasses.replace(
        h.spec, fails_health=h.spec.host_id in failing)) for h in hosts]


def _decisions(env: Env, rollout_id: str) -> list[tuple[str, int, str]]:
    """(status, wave, reason) of every version of the rollout after its creation."""
    return [(r["status"], r["current_wave"], r.get("reason", ""))
            for r in env.history(rollout_id)[1:]]


def test_a_rollout_over_50_simulated_hosts_completes(env: Env, tmp_path: Path) -> None:
    patch_id, artifact = env.patch("all")
    rollout_id = f"R-all-{env.w.run}"
    dispatcher = Dispatcher(env.ledger, tmp_path, ITOPS, _settings())
    plan = dispatcher.create_rollout(RolloutRequest(
        rollout_id, patch_id, canary=Quantity(10, percent=True),
        waves=(WaveRequest(percent=40),), target_groups=env.groups,
        disruption_budget=Quantity(25, percent=True), max_concurrency=Quantity(8)))
    assert [len(w.hosts) for w in plan.waves] == [5, 20, 25]
    running = _start(env, tmp_path, env.hosts, artifact, dispatcher)
    try:
        _wait("the rollout to complete", lambda: env.rollout(rollout_id)["status"] == "COMPLETED")
    finally:
        running.close()
    deployments = env.deployments(rollout_id)
    assert len(deployments) == HOSTS
    assert {d["status"] for d in deployments.values()} == {"VERIFIED"}
    for host in env.hosts:
        assert (host.config.target / "VERSION").read_text() == f"{patch_id}\n"
    decisions = _decisions(env, rollout_id)
    assert [(s, wave) for s, wave, _ in decisions] == [
        ("RUNNING", 0), ("RUNNING", 1), ("RUNNING", 2), ("COMPLETED", 2)]
    assert decisions[0][2] == "dispatcher: start: canary of 5 host(s)"
    assert decisions[1][2].startswith("dispatcher: SUCCESS: wave 0: 5/5 verified")
    assert decisions[3][2].startswith("dispatcher: SUCCESS: wave 2: 25/25 verified")
    assert running.fleet.outcomes["VERIFIED"] == HOSTS


def test_a_failing_canary_halts_the_rollout_and_rolls_the_canary_back(
    env: Env, tmp_path: Path
) -> None:
    patch_id, artifact = env.patch("canary")
    rollout_id = f"R-canary-{env.w.run}"
    dispatcher = Dispatcher(env.ledger, tmp_path, ITOPS, _settings())
    request = RolloutRequest(rollout_id, patch_id, canary=Quantity(4),
                             waves=(WaveRequest(percent=50),), target_groups=(env.groups[0],),
                             disruption_budget=Quantity(4), max_concurrency=Quantity(4))
    canary = plan_rollout(request, dispatcher.enrolled_hosts()).waves[0].hosts
    failing = {canary[0]}
    group = env.group(env.groups[0])
    before = {h.spec.host_id: (h.config.target / "VERSION").read_text() for h in group}
    dispatcher.create_rollout(request)
    running = _start(env, tmp_path, _with_failing(group, failing), artifact, dispatcher)
    try:
        _wait_rolled_back(env, rollout_id)
    finally:
        running.close()
    deployments = env.deployments(rollout_id)
    assert set(deployments) == set(canary)  # no later wave started
    decisions = _decisions(env, rollout_id)
    assert [s for s, _, _ in decisions] == ["RUNNING", "HALTED", "ROLLED_BACK"]
    assert decisions[1][2].startswith(
        f"dispatcher: FAILURE: wave 0: 1/4 host(s) failed, above the 0% threshold ({canary[0]})")
    assert decisions[2][2].endswith("the policy rolls the rollout's hosts back")
    assert "health check failed" in deployments[canary[0]]["detail"]
    for host in group:
        assert (host.config.target / "VERSION").read_text() == before[host.spec.host_id]


def test_a_revocation_mid_rollout_stops_it_and_rolls_back(env: Env, tmp_path: Path) -> None:
    patch_id, artifact = env.patch("revoked")
    rollout_id = f"R-revoked-{env.w.run}"
    dispatcher = Dispatcher(env.ledger, tmp_path, ITOPS, _settings())
    dispatcher.create_rollout(RolloutRequest(
        rollout_id, patch_id, canary=Quantity(3), waves=(WaveRequest(percent=50),),
        target_groups=(env.groups[1],), disruption_budget=Quantity(3),
        max_concurrency=Quantity(3), soak_seconds=600))  # the canary soaks: revoke then
    group = env.group(env.groups[1])
    running = _start(env, tmp_path, group, artifact, dispatcher)
    try:
        _wait("the canary to be verified", lambda: sum(
            d["status"] == "VERIFIED" for d in env.deployments(rollout_id).values()) == 3)
        for approver in ("secops-approver", "compliance-approver"):
            env.w[approver].submit("RevokePatch", patch_id, "backdoored build")
        _wait_rolled_back(env, rollout_id)
    finally:
        running.close()
    decisions = _decisions(env, rollout_id)
    # the revocation transaction itself halted the rollout and ordered the rollback (the
    # ledger's rule); the dispatcher stopped releasing and relayed the roll-back orders
    assert decisions == [("RUNNING", 0, "dispatcher: start: canary of 3 host(s)"),
                         ("ROLLED_BACK", 0, f"patch {patch_id} revoked")], decisions
    touched = [h for h in group if h.spec.host_id in env.deployments(rollout_id)]
    for host in touched:
        assert (host.config.target / "VERSION").read_text() != f"{patch_id}\n"


def _dispatch_process(env: Env, state: Path) -> subprocess.Popen[bytes]:
    net = env.net
    environment = {**os.environ, "PATCHLEDGER_STATE_DIR": str(net.config.state_dir),
                   "PATCHLEDGER_PORT_BASE": os.environ.get("PATCHLEDGER_TEST_PORT_BASE",
                                                           TEST_PORT_BASE),
                   "PATCHLEDGER_MSP_DIR": str(env.w["itops-operator"].user.msp_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from patchledger.app.cli import main; "
         "sys.exit(main())", "dispatch", "run", "--org", "itops", "--state-dir", str(state),
         "--interval", "0.3", "--batch-latency", "0.5"],
        env=environment, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_the_dispatcher_killed_mid_wave_resumes_with_nothing_lost_or_repeated(
    env: Env, tmp_path: Path
) -> None:
    patch_id, artifact = env.patch("killed")
    rollout_id = f"R-killed-{env.w.run}"
    group = env.group(env.groups[2])
    plan: RolloutPlan = Dispatcher(env.ledger, tmp_path, ITOPS).create_rollout(RolloutRequest(
        rollout_id, patch_id, canary=Quantity(2), waves=(WaveRequest(percent=50),),
        target_groups=(env.groups[2],), disruption_budget=Quantity(3),
        max_concurrency=Quantity(2)))
    running = _start(env, tmp_path, group, artifact, dispatcher=None)
    process = _dispatch_process(env, tmp_path)
    try:
        def mid_wave() -> bool:
            r = env.rollout(rollout_id)
            return r["status"] == "RUNNING" and r["current_wave"] >= 1 and any(
                d["status"] == "VERIFIED" and d["wave"] == 1
                for d in env.deployments(rollout_id).values())
        _wait("the dispatcher to be inside wave 1", mid_wave)
        process.send_signal(signal.SIGKILL)
        first_output = process.communicate(timeout=30)[0].decode(errors="replace")
        killed_at = {h: d["status"] for h, d in env.deployments(rollout_id).items()}
        assert any(s != "VERIFIED" for s in killed_at.values()), (killed_at, first_output)
        process = _dispatch_process(env, tmp_path)
        _wait("the rollout to complete after the restart",
              lambda: env.rollout(rollout_id)["status"] == "COMPLETED")
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode(errors="replace")
        running.close()
    deployments = env.deployments(rollout_id)
    assert len(deployments) == len(group)
    assert {d["status"] for d in deployments.values()} == {"VERIFIED"}, output
    statuses = [s for s, _, _ in _decisions(env, rollout_id)]
    assert statuses == ["RUNNING"] * len(plan.waves) + ["COMPLETED"], statuses
    # every host ran once and its one report was recorded once: sequence 1 of this rollout
    assert running.fleet.outcomes["VERIFIED"] == len(group)
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_text())
    # every host released once; or, when the dispatcher's step after the completion ran before
    # it was stopped, the rollout noted finished once and its released hosts dropped (they
    # matter only while it runs: tests/reliability/test_dispatcher_memory)
    released = checkpoint.get("released", {})
    if rollout_id in released:
        assert sorted(released[rollout_id]) == sorted(h.spec.host_id for h in group)
        assert rollout_id not in checkpoint["finished"], checkpoint
    else:
        assert checkpoint["finished"].count(rollout_id) == 1, checkpoint
    assert not list((tmp_path / "inbox").iterdir())
    for host in group:  # created SCHEDULED, then VERIFIED: one report recorded, none twice
        versions = env.ledger.evaluate("GetHistory", "Deployment", f"{rollout_id}/"
                                       f"{host.spec.host_id}")
        assert [v["record"]["status"] for v in versions] == ["SCHEDULED", "VERIFIED"]
