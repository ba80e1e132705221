"""The real ITOps org app served over HTTPS with mutual TLS, and real ``patchledger-agent``
processes talking to it, for tests on the real network.

- :class:`OrgAppServer`: the app (``create_app`` on the running network's ITOps peer and CA,
  a SQLite database and the dispatcher board under ``home``) served by werkzeug with TLS on a
  given address; a small WSGI layer stands in for the TLS-terminating proxy of docs/agent.md
  (:func:`proxy`). :meth:`OrgAppServer.restart` stops the server and builds the app anew on
  the same home and port, as a process restart does (the nonce memory is lost, the database
  and the board stay).
- :func:`agent_settings_toml`, :func:`enroll_command`, :func:`run_command`: the agent's
  console script as a host runs it (the enrollment with a one-time token, then ``run``).
- :class:`ReportPump`: the dispatcher's report step (``Dispatcher.flush_reports``) in a
  thread, so the agents' reports reach the ledger as in production.
"""

from __future__ import annotations

import json
import logging
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from apiflask import APIFlask
from werkzeug.serving import BaseWSGIServer, make_server

from patchledger.app.dispatch.dispatcher import Dispatcher, StepReport
from patchledger.app.dispatch.ledger import LedgerPort
from patchledger.app.web import auth
from patchledger.app.web.config import AppConfig, SecurityConfig, config_from_mapping
from patchledger.app.web.factory import create_app, state
from patchledger.app.web.projection import ProjectionRunner, start_projection
from tests.support.chaincode_runtime import IssuedCertificate, make_certificate
from tests.support.netns import Host, NetLab
from tests.support.network import LocalNetwork

__all__ = [
    "CERT_HEADER",
    "FAST",
    "AgentHost",
    "OrgAppServer",
    "ReportPump",
    "agent_settings_toml",
    "app_config",
    "enroll_agents",
    "enroll_command",
    "issued_sequences",
    "make_tls_server",
    "proxy",
    "report_sequences",
    "run_command",
    "start_agents",
    "stop_agents",
    "wait_for",
]

log = logging.getLogger(__name__)

FAST = SecurityConfig(argon2_time_cost=1, argon2_memory_kib=64)
CERT_HEADER = "X-Client-Cert"
AGENT = str(Path(sys.executable).with_name("patchledger-agent"))


def proxy(app: Callable[..., Iterable[bytes]], clients: set[str] | None = None
          ) -> Callable[..., Iterable[bytes]]:
    """What the TLS-terminating proxy does: the handshake's verified client certificate in
    the header, a client's own header dropped (``clients``: each client address is added)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if clients is not None:
            clients.add(str(environ.get("REMOTE_ADDR", "")))
        environ.pop("HTTP_X_CLIENT_CERT", None)
        if environ.get("SSL_CLIENT_CERT"):
            environ["HTTP_X_CLIENT_CERT"] = quote(environ["SSL_CLIENT_CERT"])
        return app(environ, start_response)

    return wsgi


def make_tls_server(app: Callable[..., Iterable[bytes]], address: str, port: int,
                    context: ssl.SSLContext, **kwargs: Any) -> BaseWSGIServer:
    """werkzeug's threaded server over TLS with each handshake in its connection's thread.

    werkzeug wraps the listening socket with the handshake done in ``accept()``, in the one
    accepting thread: a client slow to finish its handshake (a lossy path, a loaded machine)
    held up every other connection (seconds-long stalls under load, bench_agent_poll.py). A
    TLS-terminating proxy (docs/agent.md) does not serialize handshakes either.
    """
    server = make_server(address, port, app, threaded=True, **kwargs)
    server.socket = context.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    server.ssl_context = context
    return server


def app_config(net: LocalNetwork, home: Path, *, poll_interval: int, projector: bool
               ) -> AppConfig:
    """The ITOps app's configuration on the running network (``home``: its files)."""
    o = net.org("itops")
    topology = net.config.topology
    return replace(config_from_mapping({
        "org": "itops", "home": str(home), "peer": o.peer.address,
        "peer_tls_ca": str(net.ca_cert("itops")), "ca_url": f"https://{o.ca.address}",
        "ca_tls_ca": str(net.ca_cert("itops")), "registrar_msp_dir": str(net.admin_msp("itops")),
        "channel": topology.channel, "projector": "1" if projector else "0",
        "trust": ",".join(f"{t.msp_id}={net.layout.org_msp(t.name)}" for t in topology.orgs),
        "orderer_msp": topology.orderer_org.msp_id, "agent_cert_header": CERT_HEADER,
        "dispatch_dir": str(home / "board"), "agent_poll_interval": str(poll_interval),
    }), security=FAST)


@dataclass
class OrgAppServer:
    """The ITOps app over HTTPS on ``address:port`` (module docstring).

    Attributes:
        config: the app's configuration.
        address, port: where it listens.
        tls_dir: the server's TLS certificate, key and the CA the agents pin (``tls-ca.pem``).
        host_ca: the organization CA whose host certificates the handshake accepts.
        projector: feed the read model from the peer's blocks while serving.
    """

    config: AppConfig
    address: str
    port: int
    tls_dir: Path
    host_ca: Path
    projector: bool = True
    app: APIFlask | None = None
    restarts: int = 0
    clients: set[str] = field(default_factory=set)
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None
    _runner: ProjectionRunner | None = None
    _tls: IssuedCertificate | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"

    @property
    def tls_ca(self) -> Path:
        return self.tls_dir / "tls-ca.pem"

    def _write_tls(self) -> None:
        ca = make_certificate("tls-ca.itops", is_ca=True)
        server = make_certificate("app.itops", issuer=ca,
                                  sans=sorted({self.address, "127.0.0.1", "localhost"}))
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        (self.tls_dir / "tls-ca.pem").write_bytes(ca.cert_pem)
        (self.tls_dir / "server.pem").write_bytes(server.cert_pem)
        (self.tls_dir / "server.key").write_bytes(server.key_pem)

    def start(self) -> None:
        """Build the app and serve it (a TLS certificate is made on the first start).

        Raises:
            OSError: the address cannot be bound.
        """
        if not self.tls_ca.exists():
            self._write_tls()
        self.app = create_app(self.config)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.tls_dir / "server.pem"),
                                str(self.tls_dir / "server.key"))
        context.load_verify_locations(cafile=str(self.host_ca))
        context.verify_mode = ssl.CERT_OPTIONAL  # enrollment comes without one
        self._server = make_tls_server(proxy(self.app, self.clients), self.address, self.port,
                                       context)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"org-app-{self.port}")
        self._thread.start()
        if self.projector:
            self._runner = start_projection(self.app)

    def stop(self) -> None:
        """Stop serving (open connections are cut) and the projector."""
        if self._runner is not None:
            self._runner.stop()
            self._runner = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.app is not None:
            state_ = self.app.extensions["patchledger"]
            state_.engine.dispose()

    def restart(self) -> None:
        """Stop, then start a new app on the same home and port (a process restart)."""
        self.stop()
        self.restarts += 1
        self.start()

    def api_token(self, username: str, role: str = "operator") -> str:
        """An API token of a new user of ``role``."""
        assert self.app is not None
        with self.app.app_context():
            db = state().sessions()
            try:
                user = auth.create_user(db, FAST, username, role)
                return auth.create_token(db, user.user, "test").secret
            finally:
                db.close()

    def client_call(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        """A request through the app's test client (the operator's side, not the agents')."""
        assert self.app is not None
        client = self.app.test_client()
        return client.open(path, method=method,
                           headers={"Authorization": f"Bearer {token}"}, **kwargs)


def agent_settings_toml(*, server: str, state_dir: Path, target: Path, channel: str,
                        poll_interval: float = 2.0, backoff_base: float = 1.0,
                        backoff_cap: float = 8.0, request_timeout: float = 20.0) -> str:
    """The agent's settings file: the file-tree backend on ``target``, the machine's dpkg
    inventory, a fast schedule (tests)."""
    return "\n".join([
        f'server = "{server}"', f'state_dir = "{state_dir}"', 'backend = "filetree"',
        f'target = "{target}"', 'inventory_source = "dpkg"', 'inventory_root = "/"',
        f'channel = "{channel}"', f"poll_interval = {poll_interval}",
        "min_poll_interval = 0.5", f"backoff_base = {backoff_base}",
        f"backoff_cap = {backoff_cap}", f"request_timeout = {request_timeout}",
        'health_command = ["true"]', ""])


def enroll_command(config: Path, *, server: str, token: str, ca_file: Path, host_id: str,
                   roots_fingerprint: str) -> list[str]:
    """``patchledger-agent enroll`` as an administrator runs it on the host."""
    return [AGENT, "--config", str(config), "enroll", "--server", server, "--token", token,
            "--ca-file", str(ca_file), "--host-id", host_id,
            "--roots-fingerprint", roots_fingerprint]


def run_command(config: Path) -> list[str]:
    """``patchledger-agent run``: the daemon in the foreground."""
    return [AGENT, "--config", str(config), "run"]


@dataclass
class ReportPump:
    """The dispatcher's report step every ``interval`` seconds in a thread (module
    docstring); failures (a peer down) are logged and retried, as the dispatcher does."""

    dispatcher: Dispatcher
    interval: float = 0.5
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="report-pump")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatcher.flush_reports(StepReport(), force=True)
            except Exception as exc:  # a peer down mid-submit: the files stay, retried
                self.errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("report pump: %s", exc)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop, after one last flush."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.dispatcher.flush_reports(StepReport(), force=True)


@dataclass
class AgentHost:
    """One host of a lab running the real agent: its namespace, id, files and process."""

    host: Host
    host_id: str
    home: Path
    process: subprocess.Popen[Any] | None = None

    @property
    def config(self) -> Path:
        return self.home / "agent.toml"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def target(self) -> Path:
        return self.home / "target" / "app"

    @property
    def log(self) -> Path:
        return self.home / "agent.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def enroll_agents(lab: NetLab, server: OrgAppServer, operator_token: str, root: Path,
                  host_ids: Sequence[str], *, server_url: str, channel: str,
                  roots_fingerprint: str, timeout: float = 240) -> list[AgentHost]:
    """A namespace per host id, each enrolled by ``patchledger-agent enroll`` with a token
    the operator made in the app, over the lab's network to ``server_url``.

    Raises:
        AssertionError: a token was refused or an enrollment failed (its output shown).
    """
    out = []
    for host_id in host_ids:
        made = server.client_call("POST", "/api/v1/hosts/enrollment-tokens", operator_token,
                                  json={"host_id": host_id})
        assert made.status_code == 201, made.json
        agent = AgentHost(lab.add_host(), host_id, root / host_id)
        agent.state_dir.mkdir(parents=True)
        agent.target.mkdir(parents=True)
        agent.config.write_text(agent_settings_toml(
            server=server_url, state_dir=agent.state_dir, target=agent.target,
            channel=channel))
        done = subprocess.run(lab.command(agent.host, enroll_command(
            agent.config, server=server_url, token=made.json["secret"], ca_file=server.tls_ca,
            host_id=host_id, roots_fingerprint=roots_fingerprint)),
            capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (host_id, done.stdout[-2000:], done.stderr[-4000:])
        out.append(agent)
    return out


def start_agents(lab: NetLab, agents: Sequence[AgentHost]) -> None:
    """``patchledger-agent run`` in each host's namespace, its output in its log."""
    for agent in agents:
        with agent.log.open("ab") as log_file:
            agent.process = lab.spawn(agent.host, run_command(agent.config),
                                      stdout=log_file, stderr=subprocess.STDOUT)


def stop_agents(agents: Sequence[AgentHost], timeout: float = 60) -> dict[str, int | None]:
    """SIGTERM to each agent; their exit statuses (``None``: killed after ``timeout``)."""
    for agent in agents:
        if agent.process is not None and agent.process.poll() is None:
            agent.process.terminate()
    codes: dict[str, int | None] = {}
    for agent in agents:
        if agent.process is None:
            continue
        try:
            codes[agent.host_id] = agent.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            agent.process.kill()
            agent.process.wait(timeout=10)
            codes[agent.host_id] = None
    return codes


def wait_for(what: str, check: Callable[[], bool], timeout: float, *,
             detail: Callable[[], str] = lambda: "") -> None:
    """Poll ``check`` every half second.

    Raises:
        AssertionError: still false after ``timeout`` seconds (``detail()`` appended).
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                                 f": {detail()}")
        time.sleep(0.5)


def report_sequences(ledger: LedgerPort, rollout_id: str, host_id: str) -> list[int]:
    """The report sequence numbers the ledger's versions of the host's Deployment carry, in
    order (one per accepted report; the versions a report did not make are left out)."""
    history = ledger.evaluate("GetHistory", "Deployment", f"{rollout_id}/{host_id}")
    sequences = [v["record"].get("report_sequence", 0) for v in history]
    return [s for i, s in enumerate(sequences) if s and (i == 0 or s != sequences[i - 1])]


def issued_sequences(agent: AgentHost) -> int:
    """The last report sequence number the agent handed out (its durable counter)."""
    path = agent.state_dir / "report-sequence.json"
    if not path.exists():
        return 0
    doc = json.loads(path.read_text())
    return int(doc["last"] if isinstance(doc, dict) else doc)
