"""``patchledger demo up`` run as CI would run it (``CI=true``, no standard input), on its own
network (port base ``PATCHLEDGER_TEST_PORT_BASE + 300``), app ports
(``PATCHLEDGER_TEST_PORT_BASE + 800``...) and state directories in tmp, with a fleet of six
simulated hosts; its outcome then checked on the ledger, on every organization's peer, as
each organization's admin: the patch RELEASED, every host's deployment settled, VERIFIED on
every host but the one whose health check fails, which is ROLLED_BACK; the rollout COMPLETED.
A second ``demo up`` changes nothing on the ledger (idempotent); ``demo totp`` prints a code;
``demo down`` stops every process the demo started, by the pids its files record. Always
torn down (``demo down --reset``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchledger.app.demo import scenario
from patchledger.app.demo.settings import settings_from_env
from patchledger.app.dispatch.connect import local_peers, open_ledger
from patchledger.app.fabric import EcdsaSigner, Identity
from patchledger.network.config import StateLayout, config_from_env
from patchledger.network.process import ProcState, info
from tests.support.network import TEST_PORT_BASE

pytestmark = pytest.mark.integration

HOSTS = 6
BASE = int(os.environ.get("PATCHLEDGER_TEST_PORT_BASE", TEST_PORT_BASE))
PATCHLEDGER = str(Path(sys.executable).parent / "patchledger")


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHLEDGER_")}
    env.update({
        "CI": "true",
        "PATCHLEDGER_STATE_DIR": str(root / "network"),
        "PATCHLEDGER_PORT_BASE": str(BASE + 300),
        "PATCHLEDGER_DEMO_DIR": str(root / "demo"),
        "PATCHLEDGER_DEMO_APP_PORT_BASE": str(BASE + 800),
        "PATCHLEDGER_DEMO_HOSTS": str(HOSTS),
        "PATCHLEDGER_DEMO_TIMEOUT": "200",
    })
    for key in ("PATCHLEDGER_FEEDS_DIR", "PATCHLEDGER_FABRIC_HOME", "PATCHLEDGER_CACHE"):
        if key in os.environ:
            env[key] = os.environ[key]
    settings = settings_from_env(env)
    if not settings.kev_catalog.is_file():
        pytest.skip(f"no KEV catalog at {settings.kev_catalog} (set PATCHLEDGER_FEEDS_DIR)")
    try:
        yield env
    finally:
        subprocess.run([PATCHLEDGER, "demo", "down", "--reset"], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)


def _demo(env: dict[str, str], *args: str, timeout: float = 420) -> str:
    done = subprocess.run([PATCHLEDGER, "demo", *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (args, done.stdout[-4000:], done.stderr[-4000:])
    return done.stdout


def _on_every_peer(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per organization (its admin on its own peer): the patch, the rollout, the deployments."""
    config = config_from_env(dict(env))
    layout = StateLayout(config.state_dir)
    out: dict[str, dict[str, Any]] = {}
    for org in config.topology.peer_orgs:
        msp = layout.user_dir(org.name, "admin") / "msp"
        with open_ledger(Identity.from_msp_dir(msp, org.msp_id), EcdsaSigner.from_msp_dir(msp),
                         local_peers(config), channel=config.topology.channel) as ledger:
            out[org.msp_id] = {
                "patch": ledger.evaluate("GetRecord", "Patch", scenario.PATCH_ID),
                "rollout": ledger.evaluate("GetRecord", "Rollout", scenario.ROLLOUT_ID),
                "deployments": {d["host_id"]: d for d in ledger.records("Deployment")
                                if d.get("rollout_id") == scenario.ROLLOUT_ID},
                "height": ledger.evaluate("GetRecord", "Vulnerability", scenario.VULN_ID),
            }
    return out


def test_demo_runs_the_scenario_without_interaction(demo_env: dict[str, str]) -> None:
    first = _demo(demo_env, "up")
    settings = settings_from_env(demo_env)
    failing = scenario.failing_host(settings)
    assert "patchledger demo is running" in first and "demo totp --user" in first
    seen = _on_every_peer(demo_env)
    assert set(seen) == {"SecOpsMSP", "ITOpsMSP", "ComplianceMSP"}
    for msp, view in seen.items():
        deployments = view["deployments"]
        assert view["patch"]["status"] == "RELEASED", (msp, view["patch"])
        assert view["rollout"]["status"] == "COMPLETED", (msp, view["rollout"])
        assert view["height"]["known_exploited"] is True
        assert len(deployments) == HOSTS, (msp, sorted(deployments))
        assert deployments[failing]["status"] == "ROLLED_BACK", (msp, deployments[failing])
        assert all(d["status"] == "VERIFIED" for h, d in deployments.items() if h != failing), \
            (msp, {h: d["status"] for h, d in deployments.items()})
    assert seen["SecOpsMSP"] == seen["ComplianceMSP"] == seen["ITOpsMSP"]

    # running it again is safe: it finds everything done and the ledger unchanged
    again = _demo(demo_env, "up", timeout=240)
    assert "patchledger demo is running" in again
    assert _on_every_peer(demo_env) == seen

    code = _demo(demo_env, "totp", "--user", "compliance/cora").split()
    assert len(code) == 1 and code[0].isdigit() and len(code[0]) == 6

    names = [f"app-{o}" for o in ("secops", "itops", "compliance")] + \
        ["dispatch-itops", "fleet-itops"]
    pids = {n: info(settings.layout, n) for n in names}
    assert all(p.state is ProcState.RUNNING for p in pids.values()), pids
    _demo(demo_env, "down", timeout=120)
    for name, proc in pids.items():
        assert info(settings.layout, name).state is ProcState.STOPPED, name
        assert not Path(f"/proc/{proc.pid}").exists() or \
            "zombie" in Path(f"/proc/{proc.pid}/status").read_text().lower(), name
