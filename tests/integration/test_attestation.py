"""Issue 11 section 1 on the real network: the agent acts only on a fresh attestation of the
ledger, endorsed by peers of distinct organizations, carrying its own nonce.

The ITOps app (its operator's identity, its own peer's Gateway) relays ``AttestDeployment``
through Endorse, never Submit (``app.fabric.attest``); the agent verifies the bundle offline
against the organizations' roots, which it pins from a real ``AttestChannelRoots`` bundle
checked against the administrator's fingerprint. Honest rollout: applied, and the ledger accepts
the host's signed VERIFIED report. A compromised ITOps app (only ITOps identities): endorsed by
its own peer alone, a genuine bundle for another question, an altered payload: refused. A
revocation during the rollout: the next fresh attestation says REVOKED and the agent refuses.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.agent.config import AgentConfig
from patchledger.agent.errors import (
    AttestationBindingError,
    DeploymentStateError,
    EndorsementError,
    EndorsementQuorumError,
)
from patchledger.agent.health import HealthResult
from patchledger.agent.runner import Assignment, Outcome, run_assignment
from patchledger.app.fabric._protos import proposal_pb2, proposal_response_pb2
from tests.integration.lifecycle_world import (
    Rollout,
    World,
    running_rollout,
)
from tests.support.network import LocalNetwork
from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, ITOPS, ORGS, SECOPS

pytestmark = pytest.mark.integration

IDENTITIES = (
    "secops-feed", "secops-operator", "itops-operator", "secops-approver",
    "compliance-approver", "host-a1", "host-a2", "host-h3",
)


def _now() -> int:
    return int(time.time())


def _nonce() -> str:
    return secrets.token_hex(32)


def _host_key(w: World, short: str) -> ec.EllipticCurvePrivateKey:
    pem = (w[f"host-{short}"].user.msp_dir / "keystore" / "priv_sk").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


@pytest.fixture(scope="module")
def rollout(fabric_network: LocalNetwork) -> Iterator[Rollout]:
    with running_rollout(fabric_network, IDENTITIES, name="attest",
                         waves=[["a1", "a2"], ["h3"]], groups=["attest"]) as r:
        yield r


def test_enrollment_pinned_every_organizations_root(rollout: Rollout) -> None:
    assert rollout.roots.organizations == tuple(sorted(ORGS))


def test_an_honest_attestation_verifies_and_the_assignment_applies(
    rollout: Rollout, tmp_path: Path
) -> None:
    r = rollout
    nonce = _nonce()
    attested = r.verify(r.attest(r.hosts["a1"], r.rollout_id, nonce), "a1", nonce)
    assert attested.endorsing == tuple(sorted(ORGS))
    assert attested.state["patch"]["status"] == "RELEASED"
    assert attested.verdict.approving == (COMPLIANCE, SECOPS)

    config = AgentConfig(host_id=r.hosts["a1"], target=tmp_path / "app",
                         state_dir=tmp_path / "state", channel=r.channel)
    result = run_assignment(config, Assignment(r.rollout_id, r.patch_id, r.artifact),
                            roots=r.roots, host_key=_host_key(r.w, "a1"), attestor=r.attest,
                            health=lambda target: HealthResult(True, "ok"))
    assert result.outcome is Outcome.VERIFIED, result.detail
    assert (tmp_path / "app" / "VERSION").read_bytes().startswith(b"patched ")
    batch = r.w["host-a1"].submit("ReportDeployments", list(result.reports))
    assert (batch["accepted"], batch["refused"]) == (1, 0), batch["results"]


def test_the_apps_own_peer_alone_is_not_enough(rollout: Rollout) -> None:
    r = rollout
    nonce = _nonce()
    own_only = r.attest(r.hosts["a2"], r.rollout_id, nonce, orgs=(ITOPS,))
    assert len(own_only["endorsements"]) == 1
    with pytest.raises(EndorsementQuorumError, match=r"1 distinct organization\(s\) \(ITOpsMSP\)"):
        r.verify(own_only, "a2", nonce)


def test_a_genuine_bundle_for_another_question_is_refused(rollout: Rollout) -> None:
    r = rollout
    nonce = _nonce()
    stale = r.attest(r.hosts["a2"], r.rollout_id, _nonce())  # an earlier nonce: a replay
    with pytest.raises(AttestationBindingError, match="replay"):
        r.verify(stale, "a2", nonce)
    other_host = r.attest(r.hosts["a1"], r.rollout_id, nonce)  # a1's answer served to a2
    with pytest.raises(AttestationBindingError):
        r.verify(other_host, "a2", nonce)


def test_an_altered_payload_is_refused(rollout: Rollout) -> None:
    r = rollout
    nonce = _nonce()
    genuine = r.attest(r.hosts["a2"], r.rollout_id, nonce)
    prp = proposal_response_pb2.ProposalResponsePayload.FromString(
        base64.b64decode(genuine["response_payload"]))
    action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
    answer = json.loads(action.response.payload)
    answer["quorum"], answer["patch"]["severity"] = 1, "low"
    action.response.payload = json.dumps(answer).encode()
    prp.extension = action.SerializeToString()
    altered = {**genuine,
               "response_payload": base64.b64encode(prp.SerializeToString()).decode()}
    with pytest.raises(EndorsementError, match="does not verify"):
        r.verify(altered, "a2", nonce)


def test_a_host_of_a_later_wave_is_refused(rollout: Rollout) -> None:
    r = rollout
    nonce = _nonce()
    with pytest.raises(DeploymentStateError, match="not in the current wave"):
        r.verify(r.attest(r.hosts["h3"], r.rollout_id, nonce), "h3", nonce)


def test_a_rollout_that_does_not_exist_is_not_attested(rollout: Rollout) -> None:
    from patchledger.app.fabric import EndorseError

    r = rollout
    with pytest.raises(EndorseError) as excinfo:
        r.attest(r.hosts["a2"], f"R-none-{r.w.run}", _nonce())
    assert "does not exist" in (str(excinfo.value)
                                + " ".join(d.message for d in excinfo.value.details))


def test_a_revocation_during_the_rollout_stops_the_agent(
    rollout: Rollout, tmp_path: Path
) -> None:
    r = rollout
    nonce = _nonce()
    assert r.verify(r.attest(r.hosts["a2"], r.rollout_id, nonce), "a2", nonce)
    for approver in ("secops-approver", "compliance-approver"):
        r.w[approver].submit("RevokePatch", r.patch_id, "backdoored build")
    config = AgentConfig(host_id=r.hosts["a2"], target=tmp_path / "app",
                         state_dir=tmp_path / "state", channel=r.channel)
    result = run_assignment(config, Assignment(r.rollout_id, r.patch_id, r.artifact),
                            roots=r.roots, host_key=_host_key(r.w, "a2"), attestor=r.attest,
                            health=lambda target: HealthResult(True, "ok"))
    assert result.outcome is Outcome.REFUSED
    assert "REVOKED" in result.detail
    assert not (tmp_path / "app" / "VERSION").exists()
