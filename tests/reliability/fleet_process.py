"""The simulated fleet as a process of its own, talking to the org app over HTTP, so that a
test can kill it with SIGKILL while agents are in the middle of a change and start it again.

    python -m tests.reliability.fleet_process CONFIG.json

``CONFIG.json``: ``fleet_dir`` (hosts enrolled there by :func:`app.fleet.enroll.enroll_fleet`),
``hosts`` (:class:`HostSpec` fields), ``channel``, ``roots`` (MSP id -> PEM: the roots the
agents pinned, checked by the test against the administrator's fingerprint), ``url`` (the
app), ``header`` (the app's ``agent_cert_header``), ``workers``, ``interval``. SIGTERM stops
it after the current tick.

:class:`HttpRelay` is the simulator's relay over the app's agent endpoints (docs/agent.md):
each call carries the protocol's nonce and time, and the host's certificate in the header the
TLS-terminating proxy would set (the test talks to the app on the loopback, standing in for
that proxy; the mutual-TLS handshake itself is shown by tests/integration/test_agent_server.py).
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from patchledger.app.dispatch.board import Order
from patchledger.app.fleet.enroll import load_host
from patchledger.app.fleet.simulator import Fleet, HostSpec, SimulatedHost
from patchledger.chaincode.lifecycle.trust import OrgTrust

API = "/api/v1/agent"


class RelayUnavailable(Exception):
    """The app did not answer, or refused; the message names the request."""


class HttpRelay:
    """The simulator's :class:`~app.fleet.simulator.Relay` over the org app's HTTP agent API."""

    def __init__(self, url: str, header: str, certificates: Mapping[str, str],
                 timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._header = header
        self._certs = {h: quote(pem) for h, pem in certificates.items()}
        self._timeout = timeout
        self._current = threading.local()  # the host that polled last in this thread

    def _call(self, method: str, path: str, host_id: str, document: Any = None) -> bytes:
        body = None if document is None else json.dumps(document).encode()
        headers = {"X-Patchledger-Nonce": secrets.token_hex(16),
                   "X-Patchledger-Time": str(int(time.time())),
                   self._header: self._certs[host_id]}
        if body is not None:
            headers["Content-Type"] = "application/json"
        where = f"{method} {path} for {host_id}"
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.request(method, API + path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            raise RelayUnavailable(f"{where}: no answer: {type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()
        if answer.status != 200:
            raise RelayUnavailable(f"{where}: HTTP {answer.status}: {data[:300]!r}")
        return data

    def poll(self, host_id: str) -> Order | None:
        self._current.host_id = host_id
        doc = json.loads(self._call("GET", "/desired-state", host_id))
        for entry in doc.get("assignments", []):
            return Order("apply", entry["rollout_id"], entry["patch_id"],
                         entry["artifact"]["sha256"])
        return None

    def download(self, order: Order) -> bytes:
        """The artifact, as the host that polled last in this thread (the simulator asks
        for it right after that host's poll)."""
        return self._call("GET", f"/artifacts/{order.artifact_sha256}", self._current.host_id)

    def attest(self, host_id: str, rollout_id: str, nonce: str) -> Mapping[str, Any]:
        doc: dict[str, Any] = json.loads(self._call(
            "POST", "/attestations/deployment", host_id, {"rollout_id": rollout_id,
                                                          "nonce": nonce}))
        return doc

    def report(self, reports: Sequence[Mapping[str, Any]]) -> None:
        host_id = str(reports[0]["report"]["host_id"])
        doc = json.loads(self._call("POST", "/reports", host_id, {"reports": list(reports)}))
        wanted = sorted(int(r["report"]["sequence"]) for r in reports)
        if sorted(doc.get("acknowledged", [])) != wanted:
            raise RelayUnavailable(f"reports of {host_id}: acknowledged {doc} for {wanted}")

    def flush_seen(self) -> None:
        """Nothing: the app notes each poll itself."""


def certificate_of(fleet_dir: Path, host_id: str) -> str:
    """The host's certificate (PEM) from its MSP directory."""
    return (fleet_dir / host_id / "msp" / "signcerts" / "cert.pem").read_text()


def load_fleet(config: Mapping[str, Any]) -> Fleet:
    """The fleet the configuration describes (module docstring).

    Raises:
        ValueError: a host of the configuration was never enrolled.
    """
    fleet_dir = Path(config["fleet_dir"])
    hosts: list[SimulatedHost] = []
    for raw in config["hosts"]:
        spec = HostSpec(**{**raw, "groups": tuple(raw.get("groups", ()))})
        host = load_host(spec, fleet_dir, config["channel"])
        if host is None:
            raise ValueError(f"host {spec.host_id} is not enrolled under {fleet_dir}")
        hosts.append(host)
    relay = HttpRelay(config["url"], config["header"],
                      {h.spec.host_id: certificate_of(fleet_dir, h.spec.host_id) for h in hosts})
    return Fleet(hosts, relay, OrgTrust.from_pem(config["roots"]),
                 workers=int(config.get("workers", 8)), parallel_polls=True)


def main(argv: Sequence[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = json.loads(Path(argv[1]).read_text())
    fleet = load_fleet(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"fleet of {len(fleet.hosts)} hosts polling {config['url']}", flush=True)
    fleet.run(stop, float(config.get("interval", 0.5)))
    print(json.dumps({"outcomes": dict(fleet.outcomes)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
