"""Batched attestations (``AttestDeployments``): one endorsed answer for several agents of a
rollout. Each agent finds its own ``[host_id, nonce]`` in the proposal and in the answer; the
attacks of test_attestation.py that concern freshness and binding are performed against the
batched form: an old batch replayed, a batch without the agent's nonce, a batch of another
rollout, an answer whose entries were swapped, a host the ledger does not answer for, a
halted rollout. The ledger is the lifecycle core over a MemoryStore, endorsed exactly as
Fabric peers endorse (attestation_support).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from patchledger.agent.attestation import verify_deployment
from patchledger.agent.config import AgentConfig
from patchledger.agent.errors import (
    AttestationBindingError,
    DeploymentStateError,
    EndorsementQuorumError,
)
from patchledger.agent.rollback_order import run_rollback_order
from patchledger.agent.runner import Assignment, Outcome, run_assignment
from patchledger.agent.verify import ArtifactFacts
from patchledger.app.dispatch.relay import AttestationBatcher
from patchledger.app.errors import UserError
from patchledger.chaincode.lifecycle.attestation import (
    MAX_ATTEST_BATCH,
    attest_deployments,
    parse_requests,
)
from patchledger.chaincode.lifecycle.canonical import canonical_json
from patchledger.chaincode.lifecycle.errors import NotFoundError, ValidationError
from patchledger.chaincode.lifecycle.ledger import MemoryStore
from patchledger.chaincode.lifecycle.ops import hosts as host_ops
from patchledger.chaincode.lifecycle.ops import rollouts, vulnerabilities
from tests.unit.agent.agent_support import make_tar, sha256
from tests.unit.agent.attestation_support import (
    ALL_PEERS,
    CHAINCODE,
    CHANNEL,
    answer_of,
    bundle,
    ledger,
    peer,
    proposal,
    response_payload,
)
from tests.unit.lifecycle.lifecycle_support import (
    ITOPS,
    NOW,
    SECOPS,
    TRUST,
    bootstrap,
    host_identity,
    run,
    vuln_data,
    who,
)

ARTIFACT = make_tar({"VERSION": b"5.4.5\n"})
FACTS = ArtifactFacts(sha256(ARTIFACT), len(ARTIFACT))
HOSTS = ("h1", "h2", "h3")
NONCES = {h: f"nonce-of-{h}-" + "0" * 20 for h in HOSTS}


def _store(waves: Sequence[Any] | None = None) -> MemoryStore:
    store = MemoryStore()
    bootstrap(store)
    run(store, who(SECOPS, "feed"), vulnerabilities.record_vulnerability, vuln_data())
    for h in (*HOSTS, "h4"):  # h4 is enrolled but in no wave
        run(store, who(ITOPS, "admin"), host_ops.enroll_host, h,
            host_identity(ITOPS, h).cert_pem.decode(), trust=TRUST)
    return ledger(ARTIFACT, waves=waves or [{"hosts": list(HOSTS)}], store=store)


def batched(store: MemoryStore, pairs: Sequence[tuple[str, str]], rollout_id: str = "R-1",
            endorsers: Sequence[Any] = ALL_PEERS, answer: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """What an app relays for a batch: the endorsed AttestDeployments answer."""
    argument = json.dumps([[h, n] for h, n in pairs], separators=(",", ":"))
    prop = proposal("AttestDeployments", [rollout_id, argument])
    if answer is None:
        answer = attest_deployments(store, rollout_id, argument, now=NOW)
    return bundle(prop, response_payload(prop, canonical_json(answer)), endorsers)


def check(b: dict[str, Any], host_id: str, nonce: str, rollout_id: str = "R-1") -> Any:
    return verify_deployment(b, channel=CHANNEL, chaincode=CHAINCODE, host_id=host_id,
                             rollout_id=rollout_id, patch_id="P-1", nonce=nonce,
                             artifact=FACTS, roots=TRUST, now=NOW, min_quorum=2)


def test_one_batched_answer_verifies_for_every_host_of_the_batch() -> None:
    store = _store()
    b = batched(store, [(h, NONCES[h]) for h in HOSTS])
    for h in HOSTS:
        attested = check(b, h, NONCES[h])
        assert attested.state["host"]["host_id"] == h
        assert attested.state["deployment"]["status"] == "SCHEDULED"
        assert attested.endorsing == tuple(sorted(p.msp_id for p in ALL_PEERS))
    # the answer carries the host records without their certificates, the rollout without
    # its host lists (their sizes instead)
    answer = answer_of(b)
    assert all("cert_pem" not in e["host"] for e in answer["hosts"])
    assert answer["rollout"]["waves"] == [] and answer["rollout"]["wave_sizes"] == [3]


def test_a_host_whose_nonce_is_not_in_the_batch_is_refused() -> None:
    # an old batch replayed to h3 (its fresh nonce is not in it), or a batch without h3
    store = _store()
    b = batched(store, [("h1", NONCES["h1"]), ("h2", NONCES["h2"])])
    with pytest.raises(AttestationBindingError, match="do not hold this host's nonce"):
        check(b, "h3", NONCES["h3"])
    with pytest.raises(AttestationBindingError, match="do not hold this host's nonce"):
        check(b, "h1", "a-fresher-nonce-0000000000")


def test_a_batch_of_another_rollout_is_refused() -> None:
    store = _store()
    b = batched(store, [("h1", NONCES["h1"])])
    with pytest.raises(AttestationBindingError, match="not 'R-2'"):
        check(b, "h1", NONCES["h1"], rollout_id="R-2")


def test_entries_swapped_or_a_nonce_altered_by_the_app_are_refused() -> None:
    store = _store()
    pairs = [(h, NONCES[h]) for h in HOSTS]
    argument = json.dumps([[h, n] for h, n in pairs], separators=(",", ":"))
    honest = attest_deployments(store, "R-1", argument, now=NOW)
    swapped = json.loads(json.dumps(honest))
    swapped["hosts"][0]["nonce"], swapped["hosts"][1]["nonce"] = (
        swapped["hosts"][1]["nonce"], swapped["hosts"][0]["nonce"])
    # the app's own peer signs the altered answer; the others' signatures no longer verify
    b = batched(store, pairs, answer=swapped, endorsers=(peer(ITOPS),))
    with pytest.raises(EndorsementQuorumError):
        check(b, "h3", NONCES["h3"])
    with pytest.raises(AttestationBindingError, match="with its nonce once"):
        check(b, "h1", NONCES["h1"])


def test_a_host_the_ledger_does_not_answer_for_is_refused_the_others_pass() -> None:
    store = _store()
    b = batched(store, [("h1", NONCES["h1"]), ("h4", NONCES["h1"][::-1] + "x"),
                        ("ghost", "ghost-nonce-000000000000")])
    assert check(b, "h1", NONCES["h1"]).state["host"]["host_id"] == "h1"
    with pytest.raises(DeploymentStateError, match="in no wave of rollout 'R-1'"):
        check(b, "h4", NONCES["h1"][::-1] + "x")
    with pytest.raises(DeploymentStateError, match="no Host 'ghost'"):
        check(b, "ghost", "ghost-nonce-000000000000")


def test_a_host_of_a_later_wave_and_a_halted_rollout_are_refused() -> None:
    store = _store(waves=[{"hosts": ["h1"]}, {"hosts": ["h2", "h3"]}])
    b = batched(store, [("h1", NONCES["h1"]), ("h2", NONCES["h2"])])
    check(b, "h1", NONCES["h1"])
    with pytest.raises(DeploymentStateError, match=r"not in the current wave \(0\)"):
        check(b, "h2", NONCES["h2"])
    run(store, who(ITOPS, "operator"), rollouts.halt_rollout, "R-1")
    b = batched(store, [("h1", NONCES["h1"])])
    with pytest.raises(DeploymentStateError, match="HALTED on the ledger, not RUNNING"):
        check(b, "h1", NONCES["h1"])


@pytest.mark.parametrize("requests, why", [
    ("not json", "is not JSON"),
    ("[]", "list of 1 to"),
    (json.dumps([["h1", "short"]]), "at least 16"),
    (json.dumps([["h1", NONCES["h1"]], ["h1", NONCES["h2"]]]), "named twice"),
    (json.dumps([["h1"]]), "pair"),
    (json.dumps([[f"h{i}", NONCES["h1"]] for i in range(MAX_ATTEST_BATCH + 1)]),
     "list of 1 to"),
])
def test_malformed_requests_are_refused_naming_them(requests: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        parse_requests(requests)


def test_an_unknown_rollout_cannot_be_attested() -> None:
    with pytest.raises(NotFoundError):
        attest_deployments(_store(), "R-9", json.dumps([["h1", NONCES["h1"]]]), now=NOW)


# ------------------------------------------------------------------------- the relay's side


def test_the_batcher_answers_concurrent_agents_with_shared_batches() -> None:
    calls: list[tuple[str, list[tuple[str, str]]]] = []
    lock = threading.Lock()

    def attest(rollout_id: str, requests: Sequence[tuple[str, str]]) -> dict[str, Any]:
        with lock:
            calls.append((rollout_id, list(requests)))
        return {"rollout_id": rollout_id, "requests": list(requests)}

    batcher = AttestationBatcher(attest, linger=0.2, max_batch=8)
    answers: dict[str, Any] = {}

    def agent(i: int) -> None:
        host, nonce = f"h{i}", f"nonce-{i:020d}"
        answers[host] = (nonce, batcher.attest(host, "R-1" if i % 2 else "R-2", nonce))

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(answers) == 20
    for host, (nonce, answer) in answers.items():
        assert (host, nonce) in answer["requests"]  # each agent's own nonce is in its batch
        assert answer["rollout_id"] == ("R-1" if int(host[1:]) % 2 else "R-2")
    assert len(calls) < 20 and all(len(r) <= 8 for _, r in calls)
    assert sorted(h for _, r in calls for h, _ in r) == sorted(answers)  # each asked once


def test_a_failed_batch_fails_every_agent_of_it_and_the_next_batch_is_new() -> None:
    failing = [True]

    def attest(rollout_id: str, requests: Sequence[tuple[str, str]]) -> dict[str, Any]:
        if failing[0]:
            raise RuntimeError("peer of ComplianceMSP unreachable")
        return {"requests": list(requests)}

    batcher = AttestationBatcher(attest, linger=0.0)
    with pytest.raises(RuntimeError, match="unreachable"):
        batcher.attest("h1", "R-1", "n" * 20)
    failing[0] = False
    assert batcher.attest("h1", "R-1", "m" * 20) == {"requests": [("h1", "m" * 20)]}


def test_batcher_limits_are_checked() -> None:
    with pytest.raises(UserError, match="max_batch"):
        AttestationBatcher(lambda r, q: {}, max_batch=MAX_ATTEST_BATCH + 1)
    with pytest.raises(UserError, match="linger"):
        AttestationBatcher(lambda r, q: {}, linger=-1)


def test_a_host_applies_and_rolls_back_on_order_from_batched_answers(tmp_path: Path) -> None:
    # the runner and the rollback order both accept the batch holding their own nonce, and
    # the rollback is obeyed only once the batch shows the rollout stopped
    store = _store()

    def relay(host_id: str, rollout_id: str, nonce: str) -> dict[str, Any]:
        return batched(store, [("h2", NONCES["h2"]), (host_id, nonce)], rollout_id)

    config = AgentConfig(host_id="h1", target=tmp_path / "app", state_dir=tmp_path / "s")
    key = host_identity(ITOPS, "h1").key
    applied = run_assignment(config, Assignment("R-1", "P-1", ARTIFACT), roots=TRUST,
                             host_key=key, attestor=relay, clock=lambda: NOW)
    assert applied.outcome is Outcome.APPLIED, applied.detail
    early = run_rollback_order(config, "R-1", "P-1", roots=TRUST, host_key=key,
                               attestor=relay, clock=lambda: NOW)
    assert early.outcome is Outcome.REFUSED and "nothing orders a rollback" in early.detail
    run(store, who(ITOPS, "operator"), rollouts.halt_rollout, "R-1")
    rolled = run_rollback_order(config, "R-1", "P-1", roots=TRUST, host_key=key,
                                attestor=relay, clock=lambda: NOW)
    assert rolled.outcome is Outcome.ROLLED_BACK, rolled.detail
    # a batch replayed without this host's fresh nonce orders nothing
    old = batched(store, [("h1", NONCES["h1"])])
    replayed = run_rollback_order(config, "R-1", "P-1", roots=TRUST, host_key=key,
                                  attestor=lambda h, r, n: old, clock=lambda: NOW)
    assert replayed.outcome is Outcome.REFUSED and "nonce" in replayed.detail
