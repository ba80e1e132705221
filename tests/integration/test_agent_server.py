"""The real agent daemon against the real ITOps org app on the real network: the app served
over HTTPS by werkzeug with mutual TLS (client certificates of ITOps' Fabric CA), a small
WSGI layer standing in for the TLS-terminating proxy (it passes the verified client
certificate in ``X-Client-Cert`` and drops any such header a client sent). The agent enrolls
with a one-time token an operator made in the app (its CSR; ITOps' Fabric CA issues the
certificate; the app records ``EnrollHost``), pins the roots the peers attest, and runs one
assignment: the order on the dispatcher's board, the artifact from the app's store, the
attestation endorsed by the three organizations' peers through the app, plhello 1.1
installed with dpkg, the reports accepted into the dispatcher's inbox. Relayed to the ledger
(``ReportDeployments``, as the dispatcher does), the Deployment is VERIFIED."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from werkzeug.serving import make_server

from patchledger.agent.backends.dpkg import DpkgBackend
from patchledger.agent.daemon import Agent
from patchledger.agent.enroll import attested_roots, enroll, load_enrollment
from patchledger.agent.settings import DaemonSettings
from patchledger.agent.transport import Transport, TransportError, client_context
from patchledger.app.dispatch.board import Board, Order
from patchledger.app.web import auth
from patchledger.app.web.config import SecurityConfig, config_from_mapping
from patchledger.app.web.factory import create_app, state
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from patchledger.chaincode.lifecycle.trust import OrgTrust
from tests.integration.lifecycle_world import (
    World,
    approve,
    kev_entry,
    make_tested_patch,
    open_world,
    vulnerability_of,
)
from tests.support.network import LocalNetwork
from tests.support.wheels import build_agent_wheel, clean_env, install_agent
from tests.unit.agent.agent_support import sha256
from tests.unit.agent.app_server import _free_port, make_pki
from tests.unit.agent.debs import build_deb, needs_dpkg
from tests.unit.lifecycle.lifecycle_support import ITOPS, ORGS

pytestmark = pytest.mark.integration

IDENTITIES = ("secops-feed", "secops-operator", "itops-operator", "secops-approver",
              "compliance-approver")
FAST = SecurityConfig(argon2_time_cost=1, argon2_memory_kib=64)
HEADER = "X-Client-Cert"


def _proxy(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """What the TLS-terminating proxy does: the handshake's verified client certificate in
    the header, a client's own header dropped."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.pop("HTTP_X_CLIENT_CERT", None)
        if environ.get("SSL_CLIENT_CERT"):
            environ["HTTP_X_CLIENT_CERT"] = quote(environ["SSL_CLIENT_CERT"])
        return app(environ, start_response)

    return wsgi


@pytest.fixture
def https_app(fabric_network: LocalNetwork, tmp_path: Path) -> Iterator[tuple[Any, str, Path]]:
    net = fabric_network
    o = net.org("itops")
    topology = net.config.topology
    config = replace(config_from_mapping({
        "org": "itops", "home": str(tmp_path / "app"), "peer": o.peer.address,
        "peer_tls_ca": str(net.ca_cert("itops")), "ca_url": f"https://{o.ca.address}",
        "ca_tls_ca": str(net.ca_cert("itops")), "registrar_msp_dir": str(net.admin_msp("itops")),
        "channel": topology.channel, "projector": "0",
        "trust": ",".join(f"{t.msp_id}={net.layout.org_msp(t.name)}" for t in topology.orgs),
        "orderer_msp": topology.orderer_org.msp_id, "agent_cert_header": HEADER,
        "dispatch_dir": str(tmp_path / "board"), "agent_poll_interval": "30",
    }), security=FAST)
    app = create_app(config)
    pki = make_pki({}, None)
    files = pki.write(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(files["cert"]), str(files["key"]))
    context.load_verify_locations(cafile=str(net.ca_cert(ITOPS)))  # host certs: ITOps' CA
    context.verify_mode = ssl.CERT_OPTIONAL  # enrollment comes without one
    server = make_server("127.0.0.1", _free_port(), _proxy(app), threaded=True,
                         ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"https://127.0.0.1:{server.server_port}", files["ca"]
    finally:
        server.shutdown()
        thread.join(timeout=5)


@dataclass
class Assigned:
    """A tested patch of plhello 1.1 approved by SecOps and Compliance, its artifact in the
    app's store, a one-time enrollment token for ``host_id`` made by an operator of the app,
    and a root with plhello 1.0 installed under the agent's state directory's dpkg backend."""

    w: World
    patch_id: str
    rollout_id: str
    host_id: str
    artifact: bytes
    token: str
    state_dir: Path
    root: Path
    backend: DpkgBackend

    def start_rollout(self, board: Board) -> None:
        """After the host enrolled: the rollout started by ITOps and the order on the
        dispatcher's board."""
        op = self.w["itops-operator"]
        op.submit("CreateRollout", {"rollout_id": self.rollout_id, "patch_id": self.patch_id,
                                    "waves": [{"hosts": [self.host_id]}]})
        op.submit("AdvanceRollout", self.rollout_id)
        board.publish_orders({self.host_id: Order("apply", self.rollout_id, self.patch_id,
                                                  sha256(self.artifact))})

    def relay_and_check(self, board: Board) -> dict[str, Any]:
        """The dispatcher's part: the inbox onto the ledger (``ReportDeployments``), every
        report accepted (a report stored twice would be refused as a replay); the
        Deployment's ledger record, which must be VERIFIED."""
        batch = [r for f in board.pending_reports() for r in f.reports]
        assert {r["report"]["host_id"] for r in batch} == {self.host_id}
        sequences = [r["report"]["sequence"] for r in batch]
        assert len(sequences) == len(set(sequences)), sequences  # each report stored once
        answer = self.w["itops-operator"].submit("ReportDeployments", batch)
        assert answer["refused"] == 0, answer["results"]
        record: dict[str, Any] = self.w["itops-operator"].evaluate(
            "GetRecord", "Deployment", f"{self.rollout_id}/{self.host_id}")
        assert record["status"] == "VERIFIED"
        return record


@contextmanager
def assigned(net: LocalNetwork, app: Any, tmp_path: Path, name: str) -> Iterator[Assigned]:
    needs_dpkg()
    debs = tmp_path / "debs"
    debs.mkdir()
    old, new = build_deb(debs, "1.0"), build_deb(debs, "1.1")
    w = open_world(net, IDENTITIES, prefix=f"{name}-")
    try:
        vuln = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", vuln)
        patch_id = f"P-{name}-{w.run}"
        digest = make_tested_patch(w, patch_id, vuln["vuln_id"], new, title="plhello 1.1")
        approve(w, patch_id, digest, "secops-approver", "compliance-approver")
        host_id = f"{name}-{w.run}"
        # an operator of the app makes the one-time token and uploads the artifact
        with app.app_context():
            db = state().sessions()
            operator = auth.create_user(db, FAST, f"op-{w.run}", "operator")
            api_token = auth.create_token(db, operator.user, "test").secret
            db.close()
        client = app.test_client()
        made = client.post("/api/v1/hosts/enrollment-tokens", json={"host_id": host_id},
                           headers={"Authorization": f"Bearer {api_token}"})
        assert made.status_code == 201, made.json
        up = client.post("/api/v1/artifacts", data=new,
                         headers={"Authorization": f"Bearer {api_token}"})
        assert up.status_code == 201 and up.json["sha256"] == sha256(new), up.json
        state_dir, root = tmp_path / "state", tmp_path / "root"
        state_dir.mkdir()
        backend = DpkgBackend(root, state_dir / "dpkg", scripts="chrootless")
        backend.install(old, "initial")
        backend.commit()
        yield Assigned(w, patch_id, f"R-{name}-{w.run}", host_id, new, made.json["secret"],
                       state_dir, root, backend)
    finally:
        w.close()


def _admins_fingerprint(net: LocalNetwork) -> str:
    return roots_fingerprint(OrgTrust.from_pem({m: net.ca_cert(m).read_bytes() for m in ORGS}))


def test_the_real_agent_enrolls_at_the_org_app_and_applies_one_assignment(
    fabric_network: LocalNetwork, https_app: tuple[Any, str, Path], tmp_path: Path
) -> None:
    net = fabric_network
    app, url, tls_ca = https_app
    with assigned(net, app, tmp_path, "agentsrv") as a:
        # the agent's own enrollment code over the network: the peers' attested roots under
        # the administrator's fingerprint, the CSR, ITOps' CA issuing, EnrollHost by the app
        verifier = attested_roots(fingerprint=_admins_fingerprint(net),
                                  channel=net.config.topology.channel,
                                  chaincode="patchledger", now=int(time.time()))
        identity = enroll(Transport(url, client_context(tls_ca), timeout=60),
                          host_id=a.host_id, token=a.token, state_dir=a.state_dir,
                          fingerprints={}, tls_ca_pem=tls_ca.read_bytes(), verifier=verifier,
                          now=int(time.time()))
        assert identity.host_id == a.host_id and identity.msp_id == ITOPS
        host = a.w["itops-operator"].evaluate("GetRecord", "Host", a.host_id)
        assert host["status"] == "ENROLLED"
        board = Board(tmp_path / "board")
        a.start_rollout(board)
        settings = DaemonSettings(server=url, state_dir=a.state_dir, backend="dpkg",
                                  target=a.root, dpkg_scripts="chrootless",
                                  inventory_source="dpkg", inventory_root=a.root,
                                  health_command=("true",),
                                  channel=net.config.topology.channel)
        stored = load_enrollment(a.state_dir)
        context = client_context(stored.tls_ca_file, stored.cert_file, stored.key_file)
        agent = Agent(settings, stored, Transport(url, context, timeout=60))
        assert agent.run(threading.Event(), once=True) == 0, agent.state.last_error
        assert a.backend.installed_version("plhello") == "1.1"
        assert agent.state.settled == {f"{a.rollout_id}/{a.patch_id}": "VERIFIED"}
        record = a.relay_and_check(board)
        assert record["inventory_sha256"] == agent.inventory_state.last()
        # a client's own certificate header is dropped by the proxy: without the handshake's
        # certificate the app refuses, whatever the header says
        pem = identity.certificate.public_bytes(serialization.Encoding.PEM).decode()
        forged = Transport(url, client_context(tls_ca), timeout=30)
        with pytest.raises(TransportError, match="HTTP 401"):
            forged.request("GET", "/api/v1/agent/poll", headers={HEADER: quote(pem)})


def test_the_installed_agent_enrolls_and_applies_and_a_resend_is_stored_once(
    fabric_network: LocalNetwork, https_app: tuple[Any, str, Path], tmp_path: Path
) -> None:
    """The ``patchledger-agent`` wheel (packaging/agent) in a fresh virtual environment with
    nothing of the app, Flask or gRPC: its console script enrolls (attested roots) and runs a
    cycle that installs plhello 1.1 with dpkg, VERIFIED on the ledger. Then the agent's reports
    are sent again, as an agent whose acknowledgement was lost does: acknowledged, stored in
    the inbox once, and the ledger accepts every report of the batch (none refused as a
    replay)."""
    net = fabric_network
    app, url, tls_ca = https_app
    venv = install_agent(build_agent_wheel(tmp_path / "build"), tmp_path / "venv")
    with assigned(net, app, tmp_path, "agentvenv") as a:
        config = tmp_path / "agent.toml"
        config.write_text(
            f'state_dir = "{a.state_dir}"\nbackend = "dpkg"\ntarget = "{a.root}"\n'
            f'dpkg_scripts = "chrootless"\ninventory_source = "dpkg"\n'
            f'inventory_root = "{a.root}"\nhealth_command = ["true"]\n'
            f'channel = "{net.config.topology.channel}"\n')
        env = {**clean_env(), "PATCHLEDGER_AGENT_CONFIG": str(config)}

        def agent(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([str(venv / "patchledger-agent"), *argv], capture_output=True,
                                  text=True, timeout=600, env=env, cwd=tmp_path, check=False)

        enrolled = agent("enroll", "--server", url, "--token", a.token, "--ca-file",
                         str(tls_ca), "--host-id", a.host_id,
                         "--roots-fingerprint", _admins_fingerprint(net))
        assert enrolled.returncode == 0, enrolled.stderr
        board = Board(tmp_path / "board")
        a.start_rollout(board)
        once = agent("once")
        assert once.returncode == 0, once.stderr
        assert a.backend.installed_version("plhello") == "1.1"
        status = agent("status", "--json")
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        assert shown["assignments"] == [{"deployment": f"{a.rollout_id}/{a.patch_id}",
                                         "state": "VERIFIED"}]
        assert shown["reports_queued"] == 0
        # the resend of an agent that never saw the acknowledgement
        stored_batch = [r for f in board.pending_reports() for r in f.reports]
        assert stored_batch
        ids = load_enrollment(a.state_dir)
        transport = Transport(url, client_context(ids.tls_ca_file, ids.cert_file,
                                                  ids.key_file), timeout=60)
        again = transport.request("POST", "/api/v1/agent/reports",
                                  document={"reports": stored_batch})
        assert again.json("POST /reports") == {"acknowledged": [r["report"]["sequence"]
                                                 for r in stored_batch]}
        assert [r for f in board.pending_reports() for r in f.reports] == stored_batch
        a.relay_and_check(board)
