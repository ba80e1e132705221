"""The daemon killed at every point between its durable steps, in a real child process, then
restarted: the host ends with the new package (never half-installed), and the app holds
exactly one report of the deployment, APPLIED, whatever was lost or sent twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchledger.agent.backends.dpkg import DpkgBackend
from patchledger.agent.daemon import Agent
from patchledger.agent.enroll import attested_roots, enroll, load_enrollment
from patchledger.agent.settings import DaemonSettings
from patchledger.agent.transport import Transport, client_context
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from tests.unit.agent.agent_support import sha256
from tests.unit.agent.app_server import AppServer, ledger_pki, roots_attestation, running
from tests.unit.agent.attestation_support import CHAINCODE, CHANNEL, App, ledger
from tests.unit.agent.debs import build_deb, needs_dpkg
from tests.unit.lifecycle.lifecycle_support import NOW, TRUST

#: The child: the real Agent with the test's clock, dying (os._exit: no cleanup, no flush) at
#: the point named in argv[2].
CHILD = """
import json, os, sys
from pathlib import Path
from patchledger.agent.daemon import Agent
from patchledger.agent.enroll import load_enrollment
from patchledger.agent.settings import DaemonSettings
from patchledger.agent.transport import Transport, client_context
import threading

doc = json.loads(sys.argv[1])
point = sys.argv[2]
settings = DaemonSettings(**{k: (Path(v) if k in ("state_dir", "target", "inventory_root")
                                 else v) for k, v in doc.items()})
identity = load_enrollment(settings.state_dir)
context = client_context(identity.tls_ca_file, identity.cert_file, identity.key_file)
agent = Agent(settings, identity, Transport(settings.server, context, timeout=10),
              clock=lambda: int(sys.argv[3]))

def die_after(obj, name):
    real = getattr(obj, name)
    def wrapper(*args, **kwargs):
        real(*args, **kwargs)
        os._exit(137)
    setattr(obj, name, wrapper)

if point == "downloaded":
    die_after(agent.downloader, "fetch")
elif point == "applied":
    die_after(agent, "_run_one")
elif point == "queued":
    die_after(agent.outbox, "add")
elif point == "sent":
    agent.outbox.acknowledge = lambda seqs: os._exit(137)
sys.exit(agent.run(threading.Event(), once=True))
"""

#: 1.1's postinst hangs the first time (the test kills everything then), not afterwards.
HANGING_ONCE = """#!/bin/sh
if [ ! -e "$DPKG_ROOT/hung-once" ]; then
    touch "$DPKG_ROOT/hung-once"
    sleep 60
fi
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[AppServer, dict[str, str]]]:
    needs_dpkg()
    with running(tmp_path, ledger_pki()) as (srv, ca):
        srv.state.tokens["tok"] = time.time() + 600
        srv.state.attest_roots = roots_attestation
        verifier = attested_roots(fingerprint=roots_fingerprint(TRUST), channel=CHANNEL,
                                  chaincode=CHAINCODE, now=int(time.time()))
        enroll(Transport(srv.url, client_context(ca)), host_id="h1", token="tok",
               state_dir=tmp_path / "state", fingerprints={}, verifier=verifier,
               tls_ca_pem=ca.read_bytes(), now=int(time.time()))
        out = tmp_path / "debs"
        out.mkdir()
        root = tmp_path / "root"
        old = DpkgBackend(root, tmp_path / "state" / "dpkg", scripts="chrootless")
        old.install(build_deb(out, "1.0"), "P-0")
        old.commit()
        new = build_deb(out, "1.1", postinst=HANGING_ONCE)
        srv.state.desired = {"assignments": [{"rollout_id": "R-1", "patch_id": "P-1",
                                              "artifact": {"sha256": sha256(new),
                                                           "size": len(new)}}]}
        srv.state.artifacts[sha256(new)] = new
        srv.state.attest_deployment = App(ledger(new))
        (root / "hung-once").touch()  # only the kill-in-postinst case removes it
        settings = {"server": srv.url, "state_dir": str(tmp_path / "state"),
                    "target": str(root), "backend": "dpkg", "dpkg_scripts": "chrootless",
                    "inventory_source": "dpkg", "inventory_root": str(root)}
        yield srv, settings


def restart(settings: dict[str, str]) -> Agent:
    typed = {k: (Path(v) if k in ("state_dir", "target", "inventory_root") else v)
             for k, v in settings.items()}
    config = DaemonSettings(**typed)  # type: ignore[arg-type]
    identity = load_enrollment(config.state_dir)
    context = client_context(identity.tls_ca_file, identity.cert_file, identity.key_file)
    return Agent(config, identity, Transport(config.server, context, timeout=10),
                 clock=lambda: NOW)


def check_consistent(srv: AppServer, settings: dict[str, str]) -> None:
    agent = restart(settings)
    assert agent.run(threading.Event(), once=True) == 0, agent.state.last_error
    root = Path(settings["target"])
    dpkg = DpkgBackend(root, Path(settings["state_dir"]) / "dpkg", scripts="chrootless")
    assert dpkg.installed_version("plhello") == "1.1"
    assert dpkg.checkpoint() is None
    assert (root / "usr/share/plhello/version").read_text() == "hello 1.1\n"
    reports = [r["report"] for r in srv.state.reports.values()]
    assert [(r["rollout_id"], r["patch_id"], r["outcome"]) for r in reports] == [
        ("R-1", "P-1", "APPLIED")]
    assert agent.outbox.pending() == []
    assert agent.state.settled == {"R-1/P-1": "APPLIED"}
    assert restart(settings).cycle().results == ()  # and it is not run again


@pytest.mark.parametrize("point", ["downloaded", "applied", "queued", "sent"])
def test_killed_between_durable_steps(world, point: str) -> None:
    srv, settings = world
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings), point, str(NOW)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 137, done.stderr
    check_consistent(srv, settings)


def test_killed_inside_dpkg(world) -> None:
    srv, settings = world
    root = Path(settings["target"])
    (root / "hung-once").unlink()
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(settings), "none", str(NOW)],
                             start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (root / "hung-once").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (root / "hung-once").exists(), "the postinst never started"
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert srv.state.reports == {}
    check_consistent(srv, settings)
