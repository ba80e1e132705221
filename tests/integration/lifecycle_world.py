"""Support shared by the integration tests that drive the patch-lifecycle contract on the real
network (test_patch_lifecycle.py, test_agent.py, test_attestation.py, ...): the default policy,
the identities and their roles, a real KEV entry as the vulnerability, clients that wait for
every commit on every peer, the steps that bring a patch to TESTED and APPROVED, and a running
rollout with the roots an agent pins (:func:`running_rollout`). No tests here.

Every identity is registered by its organization's admin and enrolled from its organization's
CA (``LocalNetwork.enroll_user``) with ``role`` (and ``host_id``) attributes; a client is our
Gateway client (app.fabric) on the identity's own organization's peer.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from patchledger.agent.attestation import verify_channel_roots, verify_deployment
from patchledger.agent.verify import ArtifactFacts
from patchledger.app.fabric import (
    CommitError,
    Contract,
    EcdsaSigner,
    EndorseError,
    Gateway,
    GatewayError,
    Identity,
    connect,
    create_channel,
)
from patchledger.app.fabric.attest import attest_channel_roots, attest_deployment
from patchledger.app.feeds.formats import parse_bytes
from patchledger.app.feeds.model import Advisory
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from patchledger.chaincode.lifecycle.signatures import encode_b64
from patchledger.chaincode.lifecycle.statement import ApprovalStatement
from patchledger.chaincode.lifecycle.trust import OrgTrust
from patchledger.network.bootstrap import every_admins_consent
from patchledger.network.config import REPO_ROOT
from tests.support.network import EnrolledUser, LocalNetwork
from tests.unit.agent.agent_support import make_tar
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    DAY,
    ITOPS,
    ORGS,
    SECOPS,
    policy_data,
)

#: The policy InitLedger sets: the unit tests' three-organization policy, no failures allowed.
POLICY = policy_data(failure_threshold_pct=0)
#: What a patch proposed by :func:`make_tested_patch` names as its artifact by default.
ARTIFACT = b"xz-utils_5.4.5-0.3_amd64.deb (test artifact)"
#: The comment of the approval statements of :func:`signed_statement` by default.
REVIEWED = "reviewed the diff and the test evidence"

#: name -> (organization, role, extra attributes); enrollment ids get the run suffix.
IDENTITIES: dict[str, tuple[str, str, dict[str, str]]] = {
    "secops-feed": (SECOPS, "feed", {}),
    "secops-admin": (SECOPS, "admin", {}),
    "itops-admin": (ITOPS, "admin", {}),
    "secops-operator": (SECOPS, "operator", {}),
    "secops-approver": (SECOPS, "approver", {}),
    "secops-approver2": (SECOPS, "approver", {}),
    "itops-operator": (ITOPS, "operator", {}),
    "itops-approver": (ITOPS, "approver", {}),
    "compliance-approver": (COMPLIANCE, "approver", {}),
    "compliance-operator": (COMPLIANCE, "operator", {}),
    **{f"host-{h}": (ITOPS, "host", {"host_id": h}) for h in ("h1", "h2", "h3", "a1", "a2")},
    "host-c1": (COMPLIANCE, "host", {"host_id": "c1"}),
}


# ---------------------------------------------------------------------------- feeds


def feeds_dir() -> Path:
    """``$PATCHLEDGER_FEEDS_DIR`` or the shared feeds next to the repository."""
    configured = os.environ.get("PATCHLEDGER_FEEDS_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "feeds"


def kev_entry() -> Advisory:
    """The most recently added entry of the real KEV catalog, parsed by app.feeds (the test
    is skipped without the catalog)."""
    path = feeds_dir() / "kev" / "known_exploited_vulnerabilities.json"
    if not path.is_file():
        pytest.skip(f"no KEV catalog at {path} (set PATCHLEDGER_FEEDS_DIR)")
    result = parse_bytes(path.read_bytes(), str(path), expected="kev")
    entries = [a for a in result.advisories if a.kev is not None]
    assert entries, f"{path}: no KEV entries parsed"
    return max(entries, key=lambda a: (a.kev.date_added if a.kev else None, a.id))


def vulnerability_of(advisory: Advisory) -> dict[str, Any]:
    """The RecordVulnerability argument for a KEV entry (known exploited: critical)."""
    assert advisory.kev is not None
    return {
        "vuln_id": advisory.id,
        "severity": "critical",
        "title": advisory.summary[:1024],
        "known_exploited": True,
        "kev_due_date": advisory.kev.due_date.isoformat(),
        "sources": [{"name": "cisa-kev", "reference": advisory.id}],
    }


# ---------------------------------------------------------------------------- clients


@dataclass
class Client:
    """One CA-issued identity with a gateway on its organization's peer (``gateway``) and
    gateways on the other organizations' peers (``peers``), used to wait for each commit
    everywhere, so the next transaction's endorsers all see it."""

    user: EnrolledUser
    gateway: Gateway
    channel: str
    peers: list[Gateway] = field(default_factory=list)

    @property
    def msp_id(self) -> str:
        return self.user.identity.msp_id

    @property
    def name(self) -> str:
        return self.user.identity.enrollment_id

    def submit(self, function: str, *args: Any, endorsing: Sequence[str] = ()) -> Any:
        """Submit, wait for the commit on every peer; return the JSON result.

        Raises:
            EndorseError: refused by the chaincode (or endorsement failed).
            CommitError: committed invalid (e.g. ENDORSEMENT_POLICY_FAILURE).
        """
        contract = self.gateway.get_network(self.channel).get_contract("patchledger")
        submitted = contract.submit_async(
            function, [_arg(a) for a in args], endorsing_organizations=endorsing
        )
        status = submitted.get_status()
        if not status.successful:
            raise CommitError(status.transaction_id, status.code, status.code_name,
                              status.block_number)
        for other in self.peers:
            other.new_commit(submitted.bytes).get_status()
        return json.loads(submitted.result) if submitted.result else None

    def evaluate(self, function: str, *args: Any) -> Any:
        """Evaluate on the organization's peer; return the JSON result."""
        raw = self.gateway.get_network(self.channel).get_contract("patchledger").evaluate(
            function, [_arg(a) for a in args]
        )
        return json.loads(raw) if raw else None

    def sign(self, payload: bytes) -> str:
        """Base64 DER ECDSA signature (low S) of ``payload`` with this identity's key."""
        return encode_b64(self.user.signer(hashlib.sha256(payload).digest()))


def _arg(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class World:
    """The identities of a test module and a unique suffix for the records it creates."""

    net: LocalNetwork
    run: str
    clients: dict[str, Client] = field(default_factory=dict)
    channels: list[grpc.Channel] = field(default_factory=list)

    def __getitem__(self, name: str) -> Client:
        return self.clients[name]

    def close(self) -> None:
        """Close the gRPC channels to the peers."""
        for channel in self.channels:
            channel.close()


def open_world(net: LocalNetwork, names: Iterable[str], *, prefix: str = "") -> World:
    """The identities ``names`` (keys of :data:`IDENTITIES`) enrolled from their orgs' CAs as
    ``<prefix><name>-<run>`` (host ids get the run suffix as well), gateways opened on every
    peer, the default policy set. The caller closes it (:meth:`World.close`)."""
    w = World(net, secrets.token_hex(3))
    channels = {msp: create_channel(net.org(msp).peer.address,
                                    tls_root_certificates=net.ca_cert(msp).read_bytes())
                for msp in ORGS}
    w.channels = list(channels.values())

    def enroll(name: str) -> tuple[str, EnrolledUser]:
        msp, role, attrs = IDENTITIES[name]
        host_id = attrs.get("host_id")
        # Host ids are record ids on the ledger: make them unique per run as well.
        attrs = {"host_id": f"{host_id}-{w.run}"} if host_id else {}
        return name, net.enroll_user(msp, f"{prefix}{name}-{w.run}", role, attrs)

    try:
        with ThreadPoolExecutor(6) as pool:
            users = dict(pool.map(enroll, names))
        channel_name = net.config.topology.channel
        for name, user in users.items():
            own = user.identity.msp_id
            gateways = {msp: connect(user.identity, user.signer, channels[msp],
                                     endpoint=net.org(msp).peer.address) for msp in ORGS}
            others = [gw for msp, gw in gateways.items() if msp != own]
            w.clients[name] = Client(user, gateways[own], channel_name, others)
        bootstrap_policy(net, channels[SECOPS], channel_name)
    except BaseException:
        w.close()
        raise
    return w


def bootstrap_policy(net: LocalNetwork, channel: grpc.Channel, channel_name: str) -> None:
    """InitLedger as the SecOps admin (role=admin) with every organization admin's signed
    consent, collected as the network tool collects them at creation
    (:func:`patchledger.network.bootstrap.every_admins_consent`), unless the policy exists (another
    module may have set it on this session's network); waits for the gateway's discovery to
    know the chaincode's peers."""
    admin = net.admin_msp(SECOPS)
    gateway = connect(Identity.from_msp_dir(admin, SECOPS), EcdsaSigner.from_msp_dir(admin),
                      channel, endpoint=net.org(SECOPS).peer.address)
    contract = gateway.get_network(channel_name).get_contract("patchledger")
    consents = every_admins_consent(net.config, POLICY)
    deadline = time.monotonic() + 60
    while True:
        try:
            contract.evaluate("GetRecord", ["Policy", "default"])
            return
        except GatewayError as exc:
            if "does not exist" not in str(exc):
                raise
        try:
            contract.submit("InitLedger", [json.dumps(POLICY), json.dumps(consents)])
            return
        except EndorseError as exc:
            if exc.code != grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# ---------------------------------------------------------------------------- patches


def signed_statement(
    signer: Client,
    patch_id: str,
    artifact_sha256: str,
    decision: str = "approve",
    *,
    msp_id: str | None = None,
    comment: str = REVIEWED,
    expires_at: int | None = None,
) -> dict[str, Any]:
    """A statement signed with ``signer``'s enrollment key (fields overridable for attacks;
    expiring a day from now by default)."""
    body = ApprovalStatement(
        patch_id=patch_id,
        artifact_sha256=artifact_sha256,
        decision=decision,
        msp_id=msp_id or signer.msp_id,
        approver=signer.name,
        expires_at=int(time.time()) + DAY if expires_at is None else expires_at,
        comment=comment,
    )
    return {"statement": body.to_dict(), "signature": signer.sign(body.to_json())}


def make_tested_patch(
    w: World,
    patch_id: str,
    vuln_id: str,
    artifact: bytes | None = None,
    *,
    title: str = "xz-utils security update",
) -> str:
    """Patch ``patch_id`` fixing ``vuln_id``, proposed by SecOps and TESTED by ITOps; return
    its artifact digest. The artifact is ``artifact``, or by default :data:`ARTIFACT` with a
    digest made unique per patch."""
    if artifact is None:
        digest, size = hashlib.sha256(ARTIFACT + patch_id.encode()).hexdigest(), len(ARTIFACT)
    else:
        digest, size = hashlib.sha256(artifact).hexdigest(), len(artifact)
    w["secops-operator"].submit("ProposePatch", {
        "patch_id": patch_id,
        "title": title,
        "vendor": "Debian",
        "artifact_sha256": digest,
        "artifact_size": size,
        "artifact_uri": f"https://artifacts.example/{digest}",
        "fixes": [vuln_id],
        "targets": ["pkg:deb/debian/xz-utils"],
    })
    w["itops-operator"].submit("AttachTestEvidence", patch_id, {
        "report_sha256": hashlib.sha256(b"ci report " + patch_id.encode()).hexdigest(),
        "uri": f"https://ci.example/{patch_id}", "summary": "all suites pass", "passed": True,
    })
    return digest


def approve(w: World, patch_id: str, digest: str, *approvers: str,
            comment: str = REVIEWED) -> None:
    """Each of ``approvers`` signs an approval statement of the patch and submits it."""
    for name in approvers:
        w[name].submit("Approve", signed_statement(w[name], patch_id, digest, comment=comment))


# ---------------------------------------------------------------------------- rollouts


@dataclass
class Rollout:
    """A patch approved by SecOps' and Compliance's approvers, its rollout started by ITOps
    over hosts enrolled on the ledger, and what the agent needs: the roots it pinned from the
    peers' ``AttestChannelRoots`` answer and the ITOps app's contract (its operator, its own
    peer) that relays attestations."""

    w: World
    patch_id: str
    rollout_id: str
    artifact: bytes
    digest: str
    hosts: dict[str, str]  # short name -> ledger host id
    roots: OrgTrust
    app: Contract

    @property
    def channel(self) -> str:
        return self.w.net.config.topology.channel

    def attest(self, host_id: str, rollout_id: str, nonce: str,
               orgs: tuple[str, ...] = ORGS) -> dict[str, Any]:
        """``AttestDeployment`` endorsed by the peers of ``orgs`` through the ITOps app."""
        return attest_deployment(self.app, host_id, rollout_id, nonce,
                                 endorsing_organizations=orgs)

    def verify(self, bundle: dict[str, Any], host: str, nonce: str) -> Any:
        """The agent's verification of ``bundle`` for host ``host`` (a short name)."""
        return verify_deployment(
            bundle, channel=self.channel, chaincode="patchledger", host_id=self.hosts[host],
            rollout_id=self.rollout_id, patch_id=self.patch_id, nonce=nonce,
            artifact=ArtifactFacts(hashlib.sha256(self.artifact).hexdigest(),
                                   len(self.artifact)),
            roots=self.roots, now=int(time.time()), min_quorum=2)


@contextmanager
def running_rollout(net: LocalNetwork, identities: Iterable[str], *, name: str,
                    waves: Sequence[Sequence[str]], groups: Sequence[str] = (),
                    ) -> Iterator[Rollout]:
    """A :class:`Rollout` of a tar artifact over the hosts of ``waves`` (short names ``x`` of
    ``host-x`` identities in ``identities``), each enrolled with ``groups``, its first wave
    started; the patch and rollout ids are ``P-<name>-<run>``, ``R-<name>-<run>``. The
    identities are closed on exit."""
    w = open_world(net, identities, prefix=f"{name}-")
    try:
        vuln = vulnerability_of(kev_entry())
        w["secops-feed"].submit("RecordVulnerability", vuln)
        patch_id, rollout_id = f"P-{name}-{w.run}", f"R-{name}-{w.run}"
        artifact = make_tar({"VERSION": f"patched {w.run}\n".encode()})
        digest = make_tested_patch(w, patch_id, vuln["vuln_id"], artifact,
                                   title=f"{name} test patch")
        approve(w, patch_id, digest, "secops-approver", "compliance-approver")
        op = w["itops-operator"]
        hosts = {short: f"{short}-{w.run}" for wave in waves for short in wave}
        for short, host_id in hosts.items():
            enrolled: dict[str, Any] = {"host_id": host_id,
                                        "cert_pem": w[f"host-{short}"].user.cert_pem.decode()}
            if groups:
                enrolled["groups"] = list(groups)
            op.submit("EnrollHost", enrolled)
        op.submit("CreateRollout", {"rollout_id": rollout_id, "patch_id": patch_id,
                                    "waves": [{"hosts": [hosts[s] for s in wave]}
                                              for wave in waves]})
        op.submit("AdvanceRollout", rollout_id)
        app = op.gateway.get_network(op.channel).get_contract("patchledger")
        # Enrollment: pin the roots from an attested bundle, checked against the
        # administrator's fingerprint of the channel's roots (here: the CAs' certificates).
        admin_view = OrgTrust.from_pem({m: net.ca_cert(m).read_bytes() for m in ORGS})
        nonce = secrets.token_hex(32)
        roots = verify_channel_roots(
            attest_channel_roots(app, nonce, endorsing_organizations=ORGS),
            channel=net.config.topology.channel, chaincode="patchledger", nonce=nonce,
            fingerprint=roots_fingerprint(admin_view), now=int(time.time()))
        yield Rollout(w, patch_id, rollout_id, artifact, digest, hosts, roots, app)
    finally:
        w.close()
