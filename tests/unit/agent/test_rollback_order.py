"""Rolling back on order, against a ledger run by the lifecycle core with attestations endorsed
as Fabric peers endorse (tests/unit/agent/attestation_support.py): the agent undoes a patch
only when a fresh attestation shows its rollout stopped (or the patch revoked) and its own
state shows it installed that patch in that rollout. An app ordering a rollback of a running
rollout, endorsing with its own peer only, or ordering a patch the host never installed
changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchledger.agent.config import AgentConfig
from patchledger.agent.health import HealthResult
from patchledger.agent.rollback_order import run_rollback_order
from patchledger.agent.runner import Assignment, Outcome, run_assignment
from patchledger.chaincode.lifecycle.ledger import MemoryStore
from patchledger.chaincode.lifecycle.ops import deployments, rollouts
from patchledger.chaincode.lifecycle.queries import get_record
from tests.unit.agent.agent_support import make_tar
from tests.unit.agent.attestation_support import HOST, App, ledger, peer
from tests.unit.lifecycle.lifecycle_support import ITOPS, NOW, TRUST, run, who

ARTIFACT = make_tar({"VERSION": b"patched\n"})


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    target = tmp_path / "app"
    target.mkdir()
    (target / "VERSION").write_bytes(b"old\n")
    return AgentConfig(host_id="h1", target=target, state_dir=tmp_path / "state")


def applied(config: AgentConfig) -> MemoryStore:
    """The ledger after h1 applied P-1 in R-1 and its VERIFIED report was recorded."""
    store = ledger(ARTIFACT)
    result = run_assignment(config, Assignment("R-1", "P-1", ARTIFACT), roots=TRUST,
                            host_key=HOST.key, attestor=App(store), clock=lambda: NOW,
                            health=lambda target: HealthResult(True, "ok"))
    assert result.outcome is Outcome.VERIFIED
    run(store, HOST, deployments.report_deployments, list(result.reports))
    return store


def order(config: AgentConfig, store: MemoryStore, app: App | None = None,
          patch_id: str = "P-1") -> tuple[Outcome, str, list[dict[str, object]]]:
    result = run_rollback_order(config, "R-1", patch_id, roots=TRUST, host_key=HOST.key,
                                attestor=app or App(store), clock=lambda: NOW)
    return result.outcome, result.detail, list(result.reports)


def test_a_halted_rollout_is_rolled_back_and_the_core_accepts_the_report(
    config: AgentConfig,
) -> None:
    store = applied(config)
    run(store, who(ITOPS, "operator"), rollouts.halt_rollout, "R-1")
    outcome, detail, reports = order(config, store)
    assert (outcome, detail) == (Outcome.ROLLED_BACK, "rolled back on order")
    assert (config.target / "VERSION").read_bytes() == b"old\n"
    results = run(store, HOST, deployments.report_deployments, reports).results
    assert [r.accepted for r in results] == [True]
    assert get_record(store, "Deployment", "R-1", "h1").state == "ROLLED_BACK"
    again, why, _ = order(config, store)
    assert (again, why) == (Outcome.REFUSED, "rollback refused: the deployment is already "
                            "ROLLED_BACK")


def test_an_order_for_a_running_rollout_is_refused(config: AgentConfig) -> None:
    store = applied(config)
    outcome, detail, reports = order(config, store)
    assert outcome is Outcome.REFUSED and "nothing orders a rollback" in detail
    assert (config.target / "VERSION").read_bytes() == b"patched\n"
    assert reports == []


def test_the_apps_own_peer_alone_cannot_order_a_rollback(config: AgentConfig) -> None:
    store = applied(config)  # the rollout is RUNNING: the app forges "HALTED"
    forged = App(store, tamper=lambda a: {**a, "rollout": {**a["rollout"], "status": "HALTED"}},
                 endorsers=[peer(ITOPS)])
    outcome, detail, _ = order(config, store, forged)
    assert outcome is Outcome.REFUSED and "1 distinct organization" in detail
    assert (config.target / "VERSION").read_bytes() == b"patched\n"


def test_a_patch_this_host_never_installed_is_not_rolled_back(config: AgentConfig) -> None:
    store = ledger(ARTIFACT)  # the rollout started, the host applied nothing
    run(store, who(ITOPS, "operator"), rollouts.halt_rollout, "R-1")
    outcome, detail, reports = order(config, store)
    assert outcome is Outcome.REFUSED
    assert detail == "rollback refused: this host did not install 'P-1' in rollout 'R-1'"
    assert (config.target / "VERSION").read_bytes() == b"old\n" and reports == []
