"""The host agent's verification (DESIGN.md section 5, promise 1) on a REAL approval bundle:
a patch proposed, tested and approved on the network by two organizations' approvers whose
certificates their Fabric CAs issued, fetched with ``GetApprovalBundle``, and verified by the
agent against the network organizations' CA roots as pinned at enrollment
(``LocalNetwork.ca_cert``). The same bundle with one approval dropped, or with another
artifact, is refused; the runner applies the genuine one to a file tree.

Identities are enrolled from the organizations' CAs with ``LocalNetwork.enroll_user``; each
client waits for every commit on every peer, so the next transaction's endorsers see it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from agent.config import AgentConfig
from agent.errors import ArtifactMismatchError, QuorumNotMetError
from agent.health import HealthResult
from agent.runner import Assignment, Outcome, run_assignment
from agent.verify import ArtifactFacts, verify_patch
from app.fabric import (
    CommitError,
    EcdsaSigner,
    EndorseError,
    Gateway,
    GatewayError,
    Identity,
    connect,
    create_channel,
)
from app.feeds.formats import parse_bytes
from chaincode.lifecycle.policy import Policy
from chaincode.lifecycle.signatures import encode_b64
from chaincode.lifecycle.statement import ApprovalStatement
from chaincode.lifecycle.trust import OrgTrust
from network.config import REPO_ROOT
from network.testing import EnrolledUser, LocalNetwork

pytestmark = pytest.mark.integration

SECOPS, ITOPS, COMPLIANCE = "SecOpsMSP", "ITOpsMSP", "ComplianceMSP"
ORGS = (SECOPS, ITOPS, COMPLIANCE)
DAY = 86_400
POLICY = {
    "organizations": list(ORGS),
    "quorum": {"critical": 2, "high": 2, "medium": 2, "low": 1},
    "rejection": "any",
    "change_quorum": 2,
    "revocation_quorum": 2,
    "exception_quorum": 2,
    "max_statement_validity": 30 * DAY,
    "failure_threshold_pct": 0,
    "soak_seconds": 0,
    "remediation_days": {"critical": 7, "high": 30, "medium": 90, "low": 180},
}
#: name -> (organization, role)
IDENTITIES = {
    "secops-feed": (SECOPS, "feed"),
    "secops-operator": (SECOPS, "operator"),
    "itops-operator": (ITOPS, "operator"),
    "secops-approver": (SECOPS, "approver"),
    "compliance-approver": (COMPLIANCE, "approver"),
}


def tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass
class Client:
    """A CA-issued identity with a gateway on its own peer and gateways on the others."""

    user: EnrolledUser
    gateway: Gateway
    channel: str
    others: list[Gateway] = field(default_factory=list)

    def _contract(self) -> Any:
        return self.gateway.get_network(self.channel).get_contract("patchledger")

    def submit(self, function: str, *args: Any) -> Any:
        """Submit, wait for the commit on every peer; the JSON result."""
        submitted = self._contract().submit_async(function, [_arg(a) for a in args])
        status = submitted.get_status()
        if not status.successful:
            raise CommitError(status.transaction_id, status.code, status.code_name,
                              status.block_number)
        for other in self.others:
            other.new_commit(submitted.bytes).get_status()
        return json.loads(submitted.result) if submitted.result else None

    def evaluate(self, function: str, *args: Any) -> Any:
        raw = self._contract().evaluate(function, [_arg(a) for a in args])
        return json.loads(raw) if raw else None

    def approve(self, patch_id: str, digest: str) -> None:
        """Sign an approval statement with this approver's enrollment key and submit it."""
        body = ApprovalStatement(
            patch_id=patch_id, artifact_sha256=digest, decision="approve",
            msp_id=self.user.identity.msp_id, approver=self.user.identity.enrollment_id,
            expires_at=int(time.time()) + DAY, comment="reviewed for the agent test",
        )
        signature = encode_b64(self.user.signer(hashlib.sha256(body.to_json()).digest()))
        self.submit("Approve", {"statement": body.to_dict(), "signature": signature})


def _arg(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _bootstrap_policy(net: LocalNetwork, channel: grpc.Channel, name: str) -> None:
    """InitLedger as the SecOps admin unless a policy exists (another module may have set
    it on this session's network)."""
    admin = net.admin_msp(SECOPS)
    gateway = connect(Identity.from_msp_dir(admin, SECOPS), EcdsaSigner.from_msp_dir(admin),
                      channel, endpoint=net.org(SECOPS).peer.address)
    contract = gateway.get_network(name).get_contract("patchledger")
    deadline = time.monotonic() + 60
    while True:
        try:
            contract.evaluate("GetRecord", ["Policy", "default"])
            return
        except GatewayError as exc:
            if "does not exist" not in str(exc):
                raise
        try:
            contract.submit("InitLedger", [json.dumps(POLICY)])
            return
        except EndorseError as exc:
            if exc.code != grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _kev_vulnerability() -> dict[str, Any]:
    """The most recent entry of the real KEV catalog as RecordVulnerability's argument."""
    configured = os.environ.get("PATCHLEDGER_FEEDS_DIR")
    feeds = Path(configured) if configured else REPO_ROOT.parent / "shared" / "feeds"
    path = feeds / "kev" / "known_exploited_vulnerabilities.json"
    if not path.is_file():
        pytest.skip(f"no KEV catalog at {path} (set PATCHLEDGER_FEEDS_DIR)")
    advisories = parse_bytes(path.read_bytes(), str(path), expected="kev").advisories
    entry = max((a for a in advisories if a.kev is not None),
                key=lambda a: (a.kev.date_added if a.kev else None, a.id))
    assert entry.kev is not None
    return {"vuln_id": entry.id, "severity": "critical", "title": entry.summary[:1024],
            "known_exploited": True, "kev_due_date": entry.kev.due_date.isoformat(),
            "sources": [{"name": "cisa-kev", "reference": entry.id}]}


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
    run = secrets.token_hex(3)
    channels = {msp: create_channel(net.org(msp).peer.address,
                                    tls_root_certificates=net.ca_cert(msp).read_bytes())
                for msp in ORGS}
    try:
        channel_name = net.config.topology.channel
        clients: dict[str, Client] = {}
        for name, (msp, role) in IDENTITIES.items():
            user = net.enroll_user(msp, f"agent-{name}-{run}", role)
            gateways = {m: connect(user.identity, user.signer, channels[m],
                                   endpoint=net.org(m).peer.address) for m in ORGS}
            clients[name] = Client(user, gateways[msp], channel_name,
                                   [gw for m, gw in gateways.items() if m != msp])
        _bootstrap_policy(net, channels[SECOPS], channel_name)
        vuln = _kev_vulnerability()
        clients["secops-feed"].submit("RecordVulnerability", vuln)
        patch_id = f"P-agent-{run}"
        artifact = tar_gz({"VERSION": f"patched {run}\n".encode()})
        digest = hashlib.sha256(artifact).hexdigest()
        clients["secops-operator"].submit("ProposePatch", {
            "patch_id": patch_id, "title": "agent test patch", "vendor": "Debian",
            "artifact_sha256": digest, "artifact_size": len(artifact),
            "artifact_uri": f"https://artifacts.example/{digest}",
            "fixes": [vuln["vuln_id"]], "targets": ["pkg:deb/debian/xz-utils"],
        })
        clients["itops-operator"].submit("AttachTestEvidence", patch_id, {
            "report_sha256": hashlib.sha256(b"ci " + patch_id.encode()).hexdigest(),
            "uri": f"https://ci.example/{patch_id}", "summary": "all suites pass",
            "passed": True,
        })
        clients["secops-approver"].approve(patch_id, digest)
        clients["compliance-approver"].approve(patch_id, digest)
        reader = clients["itops-operator"]  # the host's organization's app serves the agent
        bundle = reader.evaluate("GetApprovalBundle", patch_id)
        policy = Policy.from_dict(reader.evaluate("GetRecord", "Policy", "default"))
        roots = OrgTrust.from_pem({msp: net.ca_cert(msp).read_bytes() for msp in ORGS})
        yield Approved(patch_id, artifact, bundle, policy, roots)
    finally:
        for channel in channels.values():
            channel.close()


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
    other = tar_gz({"VERSION": b"something else\n"})
    with pytest.raises(ArtifactMismatchError, match="sha256"):
        verify_patch(patch_id=approved.patch_id, bundle=approved.bundle, artifact=_facts(other),
                     policy=approved.policy, roots=approved.roots, now=int(time.time()))


def test_the_runner_applies_the_real_bundle(approved: Approved, tmp_path: Path) -> None:
    config = AgentConfig(host_id="h-agent", target=tmp_path / "app", state_dir=tmp_path / "s")
    job = Assignment("R-agent", approved.patch_id, approved.bundle, approved.policy,
                     approved.artifact)
    key = ec.generate_private_key(ec.SECP256R1())  # the report is not submitted here
    result = run_assignment(config, job, roots=approved.roots, host_key=key,
                            health=lambda target: HealthResult(True, "ok"))
    assert result.outcome is Outcome.VERIFIED, result.detail
    assert (tmp_path / "app" / "VERSION").read_bytes().startswith(b"patched ")
