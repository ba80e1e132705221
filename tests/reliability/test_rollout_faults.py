"""Faults in the middle of a rollout on the real network (issue 17): one rollout of an approved
patch over 200 simulated ITOps hosts (the real agent code, each host with its own CA-issued
identity and state directory), driven by the dispatcher process (``patchledger dispatch
run``), the agents talking to the ITOps org app process (``patchledger app serve``) over its
HTTP agent endpoints. While the waves run, each of these is killed with SIGKILL and started
again, one after the other as the rollout progresses:

- the agents, while some host is in the middle of a change (its file-tree checkpoint is on
  disk): the whole fleet process;
- the Raft leader orderer (found from the orderers' operations endpoints);
- the dispatcher;
- one organization's peer (SecOps': it endorses every attestation and the report batches);
- the org app.

Then every host's ground truth (its agent's state directory: anti-rollback state, report
counter, outbox, finished orders) is reconciled with its Deployment history on the ledger
(:func:`app.fleet.reconcile.reconcile`): 0 lost reports, 0 duplicated, 0 disagreeing, and the
rollout COMPLETED as its gates say (the two failing hosts are below the 10% threshold), each
decision recorded once. The network's nodes are restarted with ``Manager.up`` (which starts
only what is down), in a ``finally``, so later tests of the session get a whole network.

Short form (CI): 200 hosts, one fault of each kind. Long form (``--long``): 400 hosts and the
schedule twice (ten faults).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import pytest

from patchledger.app.artifacts.store import FilesystemStore
from patchledger.app.dispatch.connect import PeerEndpoint, open_ledger
from patchledger.app.dispatch.dispatcher import Dispatcher
from patchledger.app.dispatch.ledger import FabricLedger
from patchledger.app.dispatch.planner import Quantity, RolloutRequest, WaveRequest
from patchledger.app.fabric import EcdsaSigner, Identity
from patchledger.app.fleet.cli import pin_roots
from patchledger.app.fleet.enroll import enroll_fleet
from patchledger.app.fleet.reconcile import reconcile_fleet
from patchledger.app.fleet.simulator import HostSpec, artifact_of, host_specs
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from patchledger.chaincode.lifecycle.trust import OrgTrust
from patchledger.network import process
from patchledger.network.config import REPO_ROOT
from tests.integration.lifecycle_world import (
    World,
    approve,
    kev_entry,
    make_tested_patch,
    open_world,
    vulnerability_of,
)
from tests.reliability.budget import Budget
from tests.support.network import TEST_PORT_BASE, LocalNetwork
from tests.unit.lifecycle.lifecycle_support import ITOPS, ORGS

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

IDENTITIES = ("secops-feed", "secops-operator", "itops-operator", "secops-approver",
              "compliance-approver")
HEADER = "X-Client-Cert"
#: The simulated health check takes this long, so that changes are in flight when the
#: agents are killed.
HEALTH_SECONDS = 0.25
FAILING = 2
THRESHOLD_PCT = 10
#: Faults in the order they are made, each once the rollout has this share of its hosts
#: settled (the agents' kill waits, in addition, for a change in flight).
SCHEDULE = (("agents", 0.02), ("orderer", 0.15), ("dispatcher", 0.3), ("peer", 0.45),
            ("app", 0.6))
LONG_SCHEDULE = (("agents", 0.02), ("orderer", 0.08), ("dispatcher", 0.15), ("peer", 0.22),
                 ("app", 0.3), ("agents", 0.4), ("dispatcher", 0.48), ("orderer", 0.56),
                 ("app", 0.64), ("peer", 0.72))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from patchledger.app.cli import main; "
            "sys.exit(main())", *args]


@dataclass
class Proc:
    """A process of the test (the app, the dispatcher, the fleet), restartable, its output
    appended to a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    _out: IO[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self._close()
        self._out = self.log.open("ab")
        self._out.write(f"\n==== start {self.starts + 1} at {time.time():.1f}\n".encode())
        self._out.flush()
        self.popen = subprocess.Popen(self.argv, env=self.env, cwd=REPO_ROOT,
                                      stdout=self._out, stderr=subprocess.STDOUT)
        self.starts += 1

    def kill(self) -> None:
        assert self.popen is not None and self.popen.poll() is None, \
            f"{self.name} is not running: {self.tail()}"
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(30)
        self._close()

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._close()

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


#: Set by the test: the dispatcher's file of report batches it set aside (each a loss).
SET_ASIDE: list[Path] = []


def _wait(what: str, check: Callable[[], bool], timeout: float, *procs: Proc) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        dead = [p for p in procs if not p.alive()]
        if dead:
            pytest.fail(f"{dead[0].name} died while waiting for {what}: {dead[0].tail()}")
        aside = [p for p in SET_ASIDE if p.exists()]
        if aside:  # fail at once: those reports never reach the ledger, the wave would hang
            pytest.fail(f"the dispatcher set reports aside while waiting for {what}: "
                        f"{aside[0].read_text()[:600]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


@dataclass
class Env:
    """The module's world: the operator's ledger, the enrolled fleet, the pinned roots."""

    w: World
    net: LocalNetwork
    ledger: FabricLedger
    specs: list[HostSpec]
    fleet_dir: Path
    roots_pem: dict[str, str]
    vuln_id: str
    group: str
    long_form: bool
    timeline: list[tuple[float, str]] = field(default_factory=list)


def _peers(net: LocalNetwork) -> list[PeerEndpoint]:
    return [PeerEndpoint(msp, net.org(msp).peer.address, net.ca_cert(msp).read_bytes())
            for msp in ORGS]


@pytest.fixture(scope="module")
def env(fabric_network: LocalNetwork, tmp_path_factory: pytest.TempPathFactory,
        budget: Budget) -> Iterator[Env]:
    net = fabric_network
    root = tmp_path_factory.mktemp("faults")
    w = open_world(net, IDENTITIES, prefix="faults-")
    count = 400 if budget.long_form else 200
    try:
        vuln = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", vuln)
        op = w["itops-operator"].user
        group = f"faults-{w.run}"
        specs = host_specs(count, prefix=f"f-{w.run}", groups=(group,))
        with open_ledger(op.identity, op.signer, _peers(net),
                         channel=net.config.topology.channel) as ledger:
            admin = net.admin_msp(ITOPS)
            t0 = time.monotonic()
            enroll_fleet(specs, root / "fleet", ca=net.ca_client(ITOPS),
                         registrar=Identity.from_msp_dir(admin, ITOPS),
                         registrar_signer=EcdsaSigner.from_msp_dir(admin), operator=ledger,
                         channel=net.config.topology.channel, workers=8)
            enrolled = time.monotonic() - t0
            roots_pem = {m: net.ca_cert(m).read_text() for m in ORGS}
            # what each agent pins: the peers' attested roots, checked against the fingerprint
            pinned = pin_roots(ledger.contract, net.config.topology.channel, list(ORGS),
                               roots_fingerprint(OrgTrust.from_pem(roots_pem)))
            assert set(pinned.organizations) == set(ORGS)
            e = Env(w, net, ledger, specs, root / "fleet", roots_pem, vuln["vuln_id"], group,
                    budget.long_form)
            e.timeline.append((enrolled, f"{count} hosts enrolled"))
            yield e
    finally:
        w.close()


# ------------------------------------------------------------------------------ processes


def _app(env: Env, home: Path, board: Path, port: int) -> Proc:
    net, o = env.net, env.net.org("itops")
    topology = net.config.topology
    config = {
        "org": "itops", "home": str(home), "peer": o.peer.address,
        "peer_tls_ca": str(net.ca_cert("itops")), "ca_url": f"https://{o.ca.address}",
        "ca_tls_ca": str(net.ca_cert("itops")), "registrar_msp_dir": str(net.admin_msp("itops")),
        "channel": topology.channel, "projector": "0", "host": "127.0.0.1", "port": port,
        "trust": ",".join(f"{t.msp_id}={net.layout.org_msp(t.name)}" for t in topology.orgs),
        "orderer_msp": topology.orderer_org.msp_id, "agent_cert_header": HEADER,
        "dispatch_dir": str(board), "agent_poll_interval": "1",
    }
    path = home.parent / "app.json"
    path.write_text(json.dumps(config))
    return Proc("the org app", _cli("app", "serve", "--org", "itops", "--config", str(path),
                                    "--threads", "16"),
                dict(os.environ), home.parent / "app.log")


def _dispatcher(env: Env, board: Path) -> Proc:
    environment = {**os.environ, "PATCHLEDGER_STATE_DIR": str(env.net.config.state_dir),
                   "PATCHLEDGER_PORT_BASE": os.environ.get("PATCHLEDGER_TEST_PORT_BASE",
                                                           TEST_PORT_BASE),
                   "PATCHLEDGER_MSP_DIR": str(env.w["itops-operator"].user.msp_dir)}
    return Proc("the dispatcher", _cli("dispatch", "run", "--org", "itops", "--state-dir",
                                       str(board), "--interval", "0.3", "--batch-latency",
                                       "0.5"),
                environment, board.parent / "dispatcher.log")


def _fleet(env: Env, specs: list[HostSpec], url: str, where: Path) -> Proc:
    config = {"fleet_dir": str(env.fleet_dir), "channel": env.net.config.topology.channel,
              "hosts": [asdict(s) for s in specs], "roots": env.roots_pem, "url": url,
              "header": HEADER, "workers": 8, "interval": 0.5}
    path = where / "fleet.json"
    path.write_text(json.dumps(config))
    return Proc("the fleet", [sys.executable, "-m", "tests.reliability.fleet_process",
                              str(path)], dict(os.environ), where / "fleet.log")


def _app_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False
    return check


# ------------------------------------------------------------------------------- faults


def _in_flight(env: Env, specs: list[HostSpec]) -> list[str]:
    """Hosts whose file-tree change is in progress (its checkpoint is on disk)."""
    return [s.host_id for s in specs
            if (env.fleet_dir / s.host_id / "target" / ".app.checkpoint.json").exists()]


def _kill_node(env: Env, name: str) -> None:
    layout = env.net.layout
    pid = process.info(layout, name).pid
    assert pid, f"{name} has no pid"
    os.kill(pid, signal.SIGKILL)
    _wait(f"{name} to die", lambda: process.info(layout, name).state is
          process.ProcState.STALE, 20)


def _restart_network(env: Env) -> None:
    assert env.net.manager.up() == "network restarted (ledger intact)"


@dataclass
class Faults:
    """The faults made, with what each hit."""

    env: Env
    specs: list[HostSpec]
    app: Proc
    dispatcher: Proc
    fleet: Proc
    app_url: str
    made: list[dict[str, Any]] = field(default_factory=list)

    def make(self, kind: str) -> None:
        began = time.monotonic()
        hit = ""
        if kind == "agents":
            _wait("a change in flight", lambda: bool(_in_flight(self.env, self.specs)), 120,
                  self.fleet)
            self.fleet.kill()
            hit = f"{len(_in_flight(self.env, self.specs))} host(s) mid-change"
            self.fleet.start()
        elif kind == "orderer":
            hit = self.env.net.manager.wait_for_leader(30)
            _kill_node(self.env, hit)
            new = self.env.net.manager.wait_for_leader(60)
            assert new != hit
            _restart_network(self.env)
            hit += f" (new leader {new})"
        elif kind == "peer":
            hit = self.env.net.org("secops").peer.name
            _kill_node(self.env, hit)
            time.sleep(3)  # attestations and report batches fail meanwhile
            _restart_network(self.env)
        elif kind == "dispatcher":
            self.dispatcher.kill()
            self.dispatcher.start()
            hit = "dispatch run"
        elif kind == "app":
            self.app.kill()
            time.sleep(1)  # polls, attestations and reports fail meanwhile
            self.app.start()
            _wait("the app to answer again", _app_ready(self.app_url), 120, self.app)
            hit = "app serve"
        self.made.append({"fault": kind, "hit": hit,
                          "restored_in_s": round(time.monotonic() - began, 1)})


# -------------------------------------------------------------------------------- checks


def _deployments(env: Env, rollout_id: str) -> dict[str, dict[str, Any]]:
    return {d["host_id"]: d for d in env.ledger.records("Deployment")
            if d["rollout_id"] == rollout_id}


def _settled(env: Env, rollout_id: str) -> int:
    return sum(d["status"] in ("VERIFIED", "FAILED", "ROLLED_BACK")
               for d in _deployments(env, rollout_id).values())


def test_a_rollout_over_200_hosts_survives_a_kill_of_every_part_with_nothing_lost(
    env: Env, tmp_path: Path,
) -> None:
    started = time.monotonic()
    patch_id = f"P-faults-{env.w.run}"
    artifact = artifact_of({"VERSION": f"{patch_id}\n".encode()})
    digest = make_tested_patch(env.w, patch_id, env.vuln_id, artifact, title="faults test")
    approve(env.w, patch_id, digest, "secops-approver", "compliance-approver")
    rollout_id = f"R-faults-{env.w.run}"
    board = tmp_path / "dispatch"
    SET_ASIDE[:] = [board / "refused.jsonl"]
    plan = Dispatcher(env.ledger, board, ITOPS).create_rollout(RolloutRequest(
        rollout_id, patch_id, canary=Quantity(5, percent=True),
        waves=(WaveRequest(percent=40),), target_groups=(env.group,),
        disruption_budget=Quantity(25, percent=True), max_concurrency=Quantity(15, percent=True),
        failure_threshold_pct=THRESHOLD_PCT))
    failing = set(plan.waves[-1].hosts[:FAILING])  # below the last wave's threshold
    specs = [replace(s, fails_health=s.host_id in failing, health_seconds=HEALTH_SECONDS)
             for s in env.specs]
    port = _free_port()
    app_url = f"http://127.0.0.1:{port}"
    home = tmp_path / "app" / "home"
    home.mkdir(parents=True)
    FilesystemStore(home / "artifacts").put([artifact])  # the app's store serves it
    app = _app(env, home, board, port)
    dispatcher = _dispatcher(env, board)
    fleet = _fleet(env, specs, app_url, tmp_path)
    faults = Faults(env, specs, app, dispatcher, fleet, app_url)
    schedule = LONG_SCHEDULE if env.long_form else SCHEDULE
    count = len(specs)
    try:
        app.start()
        _wait("the app to answer", _app_ready(app_url), 120, app)
        dispatcher.start()
        fleet.start()
        for kind, share in schedule:
            due = share * count
            _wait(f"{share:.0%} of the hosts settled before the {kind} fault",
                  lambda: _settled(env, rollout_id) >= due, 600,  # noqa: B023 (waited here)
                  app, dispatcher, fleet)
            faults.make(kind)
        _wait("the rollout to complete", lambda: env.ledger.evaluate(
            "GetRecord", "Rollout", rollout_id)["status"] in ("COMPLETED", "HALTED",
                                                               "ROLLED_BACK"),
              900, app, dispatcher, fleet)
        _wait("every host's reports to be recorded", lambda: _settled(env, rollout_id) == count,
              120, app, dispatcher, fleet)
    finally:
        for proc in (fleet, dispatcher, app):
            proc.stop()
        if not env.net.manager.up().startswith("network already running"):
            env.net.manager.wait_for_leader(60)  # whatever a failure above left down
    elapsed = time.monotonic() - started
    rollout = env.ledger.evaluate("GetRecord", "Rollout", rollout_id)
    assert rollout["status"] == "COMPLETED", (rollout, faults.made, dispatcher.tail())
    result = reconcile_fleet(env.ledger, env.fleet_dir, [s.host_id for s in specs], rollout_id)
    summary = result.summary()
    print(json.dumps({"hosts": count, "faults": faults.made, "rollout_seconds": round(elapsed),
                      "setup": env.timeline, "reconciliation": summary}))
    assert result.ok, summary
    assert (len(result.agreed), result.unfinished) == (count, {}), summary
    deployments = _deployments(env, rollout_id)
    statuses = {h: d["status"] for h, d in deployments.items()}
    assert {h for h, s in statuses.items() if s != "VERIFIED"} == failing
    assert {statuses[h] for h in failing} == {"ROLLED_BACK"}
    for spec in specs:  # the ground truth of the files themselves
        version = (env.fleet_dir / spec.host_id / "target" / "app" / "VERSION")
        assert version.exists() == (spec.host_id not in failing), spec.host_id
        assert not (env.fleet_dir / spec.host_id / "target" /
                    ".app.checkpoint.json").exists(), f"{spec.host_id}: a change left open"
    # every decision once: a restarted dispatcher saw its decisions, it did not repeat them
    decisions = [v["record"]["status"] for v in
                 env.ledger.evaluate("GetHistory", "Rollout", rollout_id)[1:]]
    assert decisions == ["RUNNING"] * len(plan.waves) + ["COMPLETED"], decisions
    assert [f["fault"] for f in faults.made] == [k for k, _ in schedule]
    assert fleet.starts == 1 + sum(k == "agents" for k, _ in schedule)
    # a dot file is the temporary of a write the app was killed in (never acknowledged to the
    # agent, which sent again); readers ignore it
    left = [p.name for p in (board / "inbox").iterdir() if not p.name.startswith(".")]
    assert not left, f"reports left in the dispatcher's inbox: {left}"
    assert not (board / "refused.jsonl").exists(), "reports set aside, never recorded"
