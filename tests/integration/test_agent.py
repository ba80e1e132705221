"""The host agent's verification (DESIGN.md section 5, promise 1) on a REAL approval bundle:
a patch proposed, tested and approved on the network by two organizations' approvers whose
certificates their Fabric CAs issued, fetched with ``GetApprovalBundle``, and verified by the
agent against the network organizations' CA roots as pinned at enrollment
(``LocalNetwork.ca_cert``). The same bundle with one approval dropped, or with another
artifact, is refused. (The runner no longer takes an app-served bundle: it applies only after
an endorsed attestation, tests/integration/test_attestation.py.)

Identities are enrolled from the organizations' CAs with ``LocalNetwork.enroll_user``; each
client waits for every commit on every peer, so the next transaction's endorsers see it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from patchledger.agent.errors import ArtifactMismatchError, QuorumNotMetError
from patchledger.agent.verify import ArtifactFacts, verify_patch
from patchledger.chaincode.lifecycle.policy import Policy
from patchledger.chaincode.lifecycle.trust import OrgTrust
from tests.integration.lifecycle_world import (
    approve,
    kev_entry,
    make_tested_patch,
    open_world,
    vulnerability_of,
)
from tests.support.network import LocalNetwork
from tests.unit.agent.agent_support import make_tar
from tests.unit.lifecycle.lifecycle_support import COMPLIANCE, ORGS, SECOPS

pytestmark = pytest.mark.integration

#: The identities of lifecycle_world.IDENTITIES this module enrolls (as ``agent-<name>-<run>``).
AGENT_IDENTITIES = (
    "secops-feed", "secops-operator", "itops-operator", "secops-approver", "compliance-approver",
)


@dataclass(frozen=True)
class Approved:
    """A patch approved on the network, what the agent fetched, and the pinned roots."""

    patch_id: str
    artifact: bytes
    bundle: dict[str, Any]
    policy: Policy
    roots: OrgTrust


@pytest.fixture(scope="module")
def approved(fabric_network: LocalNetwork) -> Iterator[Approved]:
    net = fabric_network
    w = open_world(net, AGENT_IDENTITIES, prefix="agent-")
    try:
        vuln = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", vuln)
        patch_id = f"P-agent-{w.run}"
        artifact = make_tar({"VERSION": f"patched {w.run}\n".encode()})
        digest = make_tested_patch(w, patch_id, vuln["vuln_id"], artifact,
                                   title="agent test patch")
        approve(w, patch_id, digest, "secops-approver", "compliance-approver",
                comment="reviewed for the agent test")
        reader = w["itops-operator"]  # the host's organization's app serves the agent
        bundle = reader.evaluate("GetApprovalBundle", patch_id)
        policy = Policy.from_dict(reader.evaluate("GetRecord", "Policy", "default"))
        roots = OrgTrust.from_pem({msp: net.ca_cert(msp).read_bytes() for msp in ORGS})
        yield Approved(patch_id, artifact, bundle, policy, roots)
    finally:
        w.close()


def _facts(data: bytes) -> ArtifactFacts:
    return ArtifactFacts(hashlib.sha256(data).hexdigest(), len(data))


def test_the_agent_accepts_a_real_bundle_with_the_pinned_roots(approved: Approved) -> None:
    assert approved.bundle["patch"]["status"] == "APPROVED"
    assert len(approved.bundle["approvals"]) == 2
    verdict = verify_patch(patch_id=approved.patch_id, bundle=approved.bundle,
                           artifact=_facts(approved.artifact), policy=approved.policy,
                           roots=approved.roots, now=int(time.time()))
    assert verdict.approving == (COMPLIANCE, SECOPS)
    assert verdict.needed == 2


def test_the_agent_refuses_the_real_bundle_with_one_approval_dropped(approved: Approved) -> None:
    for kept in approved.bundle["approvals"]:
        below = {**approved.bundle, "approvals": [kept]}
        with pytest.raises(QuorumNotMetError, match="1 distinct organization"):
            verify_patch(patch_id=approved.patch_id, bundle=below,
                         artifact=_facts(approved.artifact), policy=approved.policy,
                         roots=approved.roots, now=int(time.time()))


def test_the_agent_refuses_another_artifact(approved: Approved) -> None:
    other = make_tar({"VERSION": b"something else\n"})
    with pytest.raises(ArtifactMismatchError, match="sha256"):
        verify_patch(patch_id=approved.patch_id, bundle=approved.bundle, artifact=_facts(other),
                     policy=approved.policy, roots=approved.roots, now=int(time.time()))

