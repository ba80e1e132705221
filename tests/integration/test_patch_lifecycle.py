"""The patch-lifecycle contract on the real network (issue 3), with identities issued by the
organizations' CAs: the whole life of a patch from a real KEV entry, and the attacks of
DESIGN.md section 5, each refused with a clear error.

Every identity is registered by its organization's admin and enrolled from its organization's
CA (``LocalNetwork.enroll_user``) with ``role`` (and ``host_id``) attributes; clients are our
Gateway client (app.fabric) on the identity's own organization's peer (see lifecycle_world).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.app.dispatch.audit import audit_rollout
from patchledger.app.dispatch.dispatcher import Dispatcher
from patchledger.app.dispatch.ledger import FabricLedger
from patchledger.app.dispatch.planner import RolloutPlan, WavePlan
from patchledger.app.fabric import (
    CommitError,
    EcdsaSigner,
    EndorseError,
    GatewayError,
    Identity,
    Transaction,
    connect,
    create_channel,
)
from patchledger.app.fabric._protos import (
    common_pb2,
    gateway_pb2,
    identities_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from patchledger.chaincode.lifecycle.consent import new_consent
from patchledger.chaincode.lifecycle.host_report import HostReport
from patchledger.chaincode.lifecycle.signatures import sign
from patchledger.chaincode.lifecycle.statement import SignedStatement, verify_statement
from patchledger.network.bootstrap import admin_consent
from tests.integration.lifecycle_world import (
    IDENTITIES,
    POLICY,
    Client,
    World,
    approve,
    kev_entry,
    make_tested_patch,
    open_world,
    signed_statement,
    vulnerability_of,
)
from tests.support.network import LocalNetwork
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    DAY,
    ITOPS,
    SECOPS,
    OrgCA,
    make_certificate,
)

pytestmark = pytest.mark.integration

rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.rwset_pb2")
kv_rwset_pb2: Any = import_module("fabric_protos.ledger.rwset.kvrwset.kv_rwset_pb2")

INVENTORY = hashlib.sha256(b"dpkg -l after the patch").hexdigest()


@pytest.fixture(scope="module")
def world(fabric_network: LocalNetwork) -> Iterator[World]:
    """Every identity enrolled from its org's CA, gateways opened, the default policy set."""
    w = open_world(fabric_network, IDENTITIES)
    try:
        yield w
    finally:
        w.close()


# ---------------------------------------------------------------------------- documents


def signed_report(
    signer: Client, host_id: str, rollout_id: str, patch_id: str, outcome: str, sequence: int
) -> dict[str, Any]:
    """A deployment report signed with ``signer``'s (a host's) enrollment key."""
    body = HostReport(
        host_id=host_id,
        rollout_id=rollout_id,
        patch_id=patch_id,
        outcome=outcome,
        sequence=sequence,
        inventory_sha256=INVENTORY,
        reported_at=int(time.time()),
    )
    return {"report": body.to_dict(), "signature": signer.sign(body.to_json())}


def host_id(w: World, short: str) -> str:
    return f"{short}-{w.run}"


def enroll_host(w: World, enrolling: Client, short: str, groups: list[str]) -> str:
    """Enroll host ``short`` with its CA-issued certificate (once); return its ledger id."""
    hid = host_id(w, short)
    if _exists(w, "Host", hid):
        return hid
    cert = w[f"host-{short}"].user.cert_pem.decode()
    enrolling.submit("EnrollHost", {"host_id": hid, "cert_pem": cert, "groups": groups,
                                    "maintenance_window": "Sun 02:00-04:00"})
    return hid


@pytest.fixture(scope="module")
def vuln_id(world: World) -> str:
    """A real KEV entry, recorded by the SecOps feed (idempotently)."""
    vuln = vulnerability_of(kev_entry())
    first = world["secops-feed"].submit("RecordVulnerability", vuln)
    again = world["secops-feed"].submit("RecordVulnerability", vuln)
    assert again["changes"] == []  # re-recording the same data changes nothing
    assert first["changes"] in ([], [{"record_type": "Vulnerability", "record_id": vuln["vuln_id"],
                                       "from": "", "to": "OPEN"}])
    return str(vuln["vuln_id"])


def refused(excinfo: pytest.ExceptionInfo[EndorseError]) -> str:
    """The chaincode's refusal messages carried by an endorsement failure."""
    return "\n".join(d.message for d in excinfo.value.details) or str(excinfo.value)


# ---------------------------------------------------------------------------- the life of a patch


def test_the_whole_life_of_a_patch(world: World, vuln_id: str) -> None:
    w = world
    patch_id, rollout_id = f"P-{w.run}", f"R-{w.run}"
    digest = make_tested_patch(w, patch_id, vuln_id)
    w["secops-approver"].submit("Approve", signed_statement(w["secops-approver"], patch_id, digest))
    approved = w["compliance-approver"].submit(
        "Approve", signed_statement(w["compliance-approver"], patch_id, digest)
    )
    assert {"record_type": "Patch", "record_id": patch_id, "from": "TESTED",
            "to": "APPROVED"} in approved["changes"]

    op = w["itops-operator"]
    h1 = enroll_host(w, op, "h1", ["canary"])
    h2 = enroll_host(w, op, "h2", ["web"])
    h3 = enroll_host(w, op, "h3", ["web"])
    op.submit("CreateRollout", {"rollout_id": rollout_id, "patch_id": patch_id,
                                "waves": [{"hosts": [h1]}, {"groups": ["web"]}]})
    op.submit("AdvanceRollout", rollout_id)
    # Wave 0: the canary reports for itself.
    own = w["host-h1"].submit("ReportDeployments", [
        signed_report(w["host-h1"], h1, rollout_id, patch_id, "APPLIED", 1),
        signed_report(w["host-h1"], h1, rollout_id, patch_id, "VERIFIED", 2),
    ])
    assert (own["accepted"], own["refused"]) == (2, 0), own["results"]
    op.submit("AdvanceRollout", rollout_id)
    # Wave 1: the operator relays one batch of the hosts' signed reports.
    batch = [
        signed_report(w[f"host-{s}"], hid, rollout_id, patch_id, outcome, seq)
        for seq, outcome in ((1, "DISPATCHED"), (2, "APPLIED"), (3, "VERIFIED"))
        for s, hid in (("h2", h2), ("h3", h3))
    ]
    relayed = op.submit("ReportDeployments", batch)
    assert (relayed["accepted"], relayed["refused"]) == (6, 0), relayed["results"]
    completed = op.submit("CompleteRollout", rollout_id)
    assert completed["changes"][-1]["to"] == "COMPLETED"

    auditor = w["compliance-approver"]
    for hid in (h1, h2, h3):
        deployment = auditor.evaluate("GetRecord", "Deployment", f"{rollout_id}/{hid}")
        assert deployment["status"] == "VERIFIED" and deployment["inventory_sha256"] == INVENTORY
    listed = auditor.evaluate("ListRecords", "Deployment", "VERIFIED", 200, "")
    assert {d["host_id"] for d in listed["records"] if d["rollout_id"] == rollout_id} == {
        h1, h2, h3}

    history = auditor.evaluate("GetHistory", "Patch", patch_id)
    assert [(e["state"], e["creator_msp"]) for e in history] == [
        ("PROPOSED", SECOPS), ("TESTED", ITOPS), ("APPROVED", COMPLIANCE), ("RELEASED", ITOPS)
    ]
    assert len({e["tx_id"] for e in history}) == 4
    assert [e["timestamp"] for e in history] == sorted(e["timestamp"] for e in history)

    # The approval bundle verifies offline: statements signed by CA-issued approver
    # certificates of two distinct organizations, bound to the artifact.
    bundle = auditor.evaluate("GetApprovalBundle", patch_id)
    assert bundle["patch"]["status"] == "RELEASED"
    orgs = set()
    for entry in bundle["approvals"]:
        signed = SignedStatement.from_dict(entry["statement"])
        cert = entry["signer_cert_pem"].encode()
        verify_statement(signed, cert, patch_id=patch_id, artifact_sha256=digest,
                         now=int(time.time()), max_validity=30 * DAY)
        root = x509.load_pem_x509_certificate(w.net.ca_cert(signed.statement.msp_id).read_bytes())
        x509.load_pem_x509_certificate(cert).verify_directly_issued_by(root)
        orgs.add(signed.statement.msp_id)
    assert orgs == {SECOPS, COMPLIANCE}


# ---------------------------------------------------------------------------- attacks


@pytest.fixture(scope="module")
def tested(world: World, vuln_id: str) -> tuple[str, str]:
    """A second patch, TESTED, for the approval attacks: (patch id, artifact digest)."""
    patch_id = f"PA-{world.run}"
    return patch_id, make_tested_patch(world, patch_id, vuln_id)


def test_an_itops_approver_cannot_sign_in_compliances_name(
        world: World, tested: tuple[str, str]) -> None:
    patch_id, digest = tested
    forged = signed_statement(world["itops-approver"], patch_id, digest, msp_id=COMPLIANCE)
    with pytest.raises(EndorseError) as excinfo:
        world["itops-approver"].submit("Approve", forged)
    assert ("AuthorizationError: the statement belongs to ComplianceMSP; caller is from "
            "ITOpsMSP") in refused(excinfo)


def test_a_user_without_the_approver_role_cannot_approve(
        world: World, tested: tuple[str, str]) -> None:
    patch_id, digest = tested
    operator = world["itops-operator"]
    with pytest.raises(EndorseError) as excinfo:
        operator.submit("Approve", signed_statement(operator, patch_id, digest))
    assert "AuthorizationError: approve_patch is not allowed for role 'operator'" in (
        refused(excinfo))


def test_a_statement_for_another_artifact_digest_is_refused(
        world: World, tested: tuple[str, str]) -> None:
    patch_id, _ = tested
    other = hashlib.sha256(b"a different build").hexdigest()
    approver = world["itops-approver"]
    with pytest.raises(EndorseError) as excinfo:
        approver.submit("Approve", signed_statement(approver, patch_id, other))
    assert f"SignatureError: statement of {approver.name!r} (ITOpsMSP) on {patch_id!r}: bound" \
        f" to patch {patch_id!r} artifact {other[:12]}..." in refused(excinfo)


def test_one_organization_cannot_approve_twice(world: World, tested: tuple[str, str]) -> None:
    patch_id, digest = tested
    first = world["secops-approver"]
    first.submit("Approve", signed_statement(first, patch_id, digest))
    second = world["secops-approver2"]  # another SecOps approver, own key and statement
    with pytest.raises(EndorseError) as excinfo:
        second.submit("Approve", signed_statement(second, patch_id, digest))
    assert f"DuplicateVoteError: SecOpsMSP has already decided on Patch {patch_id!r}" in (
        refused(excinfo))
    patch = world["compliance-approver"].evaluate("GetRecord", "Patch", patch_id)
    assert patch["status"] == "TESTED"  # one approval counted, not two


def test_a_rollout_of_a_patch_that_is_not_approved_is_refused(
        world: World, tested: tuple[str, str]) -> None:
    patch_id, _ = tested
    op = world["itops-operator"]
    hid = enroll_host(world, op, "a2", ["attack"])
    with pytest.raises(EndorseError) as excinfo:
        op.submit("CreateRollout", {"rollout_id": f"RA-{world.run}", "patch_id": patch_id,
                                    "waves": [{"hosts": [hid]}]})
    assert f"PreconditionError: Patch {patch_id!r} is TESTED: only APPROVED or RELEASED " \
        "patches roll out" in refused(excinfo)


def start_rollout(
    w: World, vuln_id: str, name: str, shorts: tuple[str, ...], group: str
) -> tuple[str, str, list[str]]:
    """Patch ``P<name>`` approved by SecOps and Compliance, rolling out (wave 0 started) as
    ``R<name>`` to the ITOps hosts ``shorts``: (patch, rollout, host ids)."""
    patch_id, rollout_id = f"P{name}-{w.run}", f"R{name}-{w.run}"
    digest = make_tested_patch(w, patch_id, vuln_id)
    approve(w, patch_id, digest, "secops-approver", "compliance-approver")
    op = w["itops-operator"]
    hosts = [enroll_host(w, op, short, [group]) for short in shorts]
    op.submit("CreateRollout", {"rollout_id": rollout_id, "patch_id": patch_id,
                                "waves": [{"hosts": hosts}]})
    op.submit("AdvanceRollout", rollout_id)
    return patch_id, rollout_id, hosts


@pytest.fixture(scope="module")
def running(world: World, vuln_id: str) -> tuple[str, str, str, str]:
    """An approved patch rolling out to ITOps hosts a1 and a2: (patch, rollout, a1, a2)."""
    patch_id, rollout_id, (a1, a2) = start_rollout(world, vuln_id, "R", ("a1", "a2"), "attack")
    return patch_id, rollout_id, a1, a2


def _exists(w: World, record_type: str, record_id: str) -> bool:
    try:
        w["itops-operator"].evaluate("GetRecord", record_type, record_id)
    except GatewayError:
        return False
    return True


def test_a_host_cannot_report_for_another_host(
        world: World, running: tuple[str, str, str, str]) -> None:
    patch_id, rollout_id, a1, a2 = running
    impostor = world["host-a2"]
    result = impostor.submit("ReportDeployments", [
        signed_report(impostor, a1, rollout_id, patch_id, "VERIFIED", 1)
    ])
    (entry,) = result["results"]
    assert (entry["accepted"], entry["error_type"]) == (False, "AuthorizationError")
    assert entry["error"] == f"host {a2!r} cannot report for host {a1!r}"
    # Relayed by the operator, the same forgery fails the signature check against a1's cert.
    relayed = world["itops-operator"].submit("ReportDeployments", [
        signed_report(impostor, a1, rollout_id, patch_id, "VERIFIED", 1)
    ])
    assert relayed["results"][0]["error_type"] == "SignatureError"
    deployment = world["itops-operator"].evaluate("GetRecord", "Deployment", f"{rollout_id}/{a1}")
    assert deployment["status"] == "SCHEDULED"


def test_a_replayed_report_is_refused(world: World, running: tuple[str, str, str, str]) -> None:
    patch_id, rollout_id, _, a2 = running
    host = world["host-a2"]
    host_before = world["itops-operator"].evaluate("GetRecord", "Host", a2)
    report = signed_report(host, a2, rollout_id, patch_id, "APPLIED", 5)
    assert host.submit("ReportDeployments", [report])["accepted"] == 1
    replay = host.submit("ReportDeployments", [report])
    (entry,) = replay["results"]
    assert (entry["accepted"], entry["error_type"]) == (False, "ReplayError")
    assert replay["changes"] == []
    # the counter is the deployment's; the Host record is read, not written, by reports
    record = world["itops-operator"].evaluate("GetRecord", "Deployment", f"{rollout_id}/{a2}")
    assert (record["status"], record["report_sequence"]) == ("APPLIED", 5)
    assert world["itops-operator"].evaluate("GetRecord", "Host", a2) == host_before


def test_a_compliance_host_cannot_be_changed_without_compliances_peer(world: World) -> None:
    """SecOps' and ITOps' peers are a majority of the channel, but not the owner: the
    key-level policy of the host record (Compliance's peer AND a majority) is not met."""
    w = world
    owner = w["compliance-operator"]
    c1 = enroll_host(w, owner, "c1", ["db"])
    before = owner.evaluate("GetRecord", "Host", c1)["inventory_sha256"]
    new_digest = hashlib.sha256(b"inventory endorsed by a majority without the owner").hexdigest()
    with pytest.raises(CommitError) as excinfo:
        owner.submit("UpdateInventoryDigest", c1, new_digest, endorsing=[SECOPS, ITOPS])
    assert excinfo.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert owner.evaluate("GetRecord", "Host", c1)["inventory_sha256"] == before


def test_compliances_peer_alone_cannot_change_its_host_but_with_a_majority_it_can(
        world: World) -> None:
    """A key-level policy replaces the chaincode's MAJORITY policy for its key, so it must
    itself require the majority: the owner organization's peer alone (e.g. a compromised
    Compliance running modified chaincode) cannot rewrite its host record."""
    w = world
    owner = w["compliance-operator"]
    c1 = enroll_host(w, owner, "c1", ["db"])
    before = owner.evaluate("GetRecord", "Host", c1)["inventory_sha256"]
    alone = hashlib.sha256(b"inventory endorsed by the owner alone").hexdigest()
    with pytest.raises(CommitError) as excinfo:
        owner.submit("UpdateInventoryDigest", c1, alone, endorsing=[COMPLIANCE])
    assert excinfo.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert owner.evaluate("GetRecord", "Host", c1)["inventory_sha256"] == before
    # The owner's peer and one more organization (a majority of three) commit the change.
    majority = hashlib.sha256(b"inventory endorsed by the owner and SecOps").hexdigest()
    owner.submit("UpdateInventoryDigest", c1, majority, endorsing=[COMPLIANCE, SECOPS])
    assert owner.evaluate("GetRecord", "Host", c1)["inventory_sha256"] == majority


def deployment_problems(w: World, rollout_id: str, hid: str) -> list[str]:
    """What the audit (``patchledger dispatch audit --history``) finds wrong with the
    deployments of ``rollout_id`` (here: ``hid``'s alone) and their history, checked against
    the host's and the rollout's records."""
    op = w["itops-operator"]
    report = audit_rollout(FabricLedger(own=op.gateway, others=op.peers, channel=op.channel),
                           rollout_id, history=True)
    assert report.deployments == 1 and report.versions >= 1
    assert all(hid in p for p in report.problems)
    return report.problems


def test_a_report_endorsed_by_one_organization_alone_is_refused_at_commit(
        world: World, vuln_id: str) -> None:
    """Deployment records carry no key-level policy: the chaincode's MAJORITY policy governs
    report writes. ITOps' peer alone (a compromised ITOps running modified chaincode) or
    SecOps' alone cannot commit a report; two organizations' honest chaincode can (it checks
    the caller and the host's signature)."""
    w = world
    patch_id, rollout_id, (h2,) = start_rollout(w, vuln_id, "K", ("h2",), "keylevel")
    host, op = w["host-h2"], w["itops-operator"]
    assert host.submit("ReportDeployments", [
        signed_report(host, h2, rollout_id, patch_id, "APPLIED", 1)])["accepted"] == 1
    verified = [signed_report(host, h2, rollout_id, patch_id, "VERIFIED", 2)]
    for endorsers in ([ITOPS], [SECOPS]):
        with pytest.raises(CommitError) as excinfo:
            host.submit("ReportDeployments", verified, endorsing=endorsers)
        assert excinfo.value.code_name == "ENDORSEMENT_POLICY_FAILURE", endorsers
        deployment = op.evaluate("GetRecord", "Deployment", f"{rollout_id}/{h2}")
        assert (deployment["status"], deployment["report_sequence"]) == ("APPLIED", 1)
    assert host.submit("ReportDeployments", verified,
                       endorsing=[SECOPS, COMPLIANCE])["accepted"] == 1
    assert op.evaluate("GetRecord", "Deployment", f"{rollout_id}/{h2}")["status"] == "VERIFIED"
    assert deployment_problems(w, rollout_id, h2) == []


def endorsed_then_forged(
    w: World, client: Client, endorsers: list[str], forge: Callable[[dict[str, Any]], None],
    function: str, *args: Any,
) -> Transaction:
    """What colluding endorsers can do: take a genuine endorsement of ``function`` by
    ``endorsers``' peers, change the Deployment value it writes (``forge`` edits the record's
    JSON object in place) and sign the altered response with those peers' own keys (their
    modified chaincode would have produced it). Returns the transaction, signed by ``client``
    when submitted."""
    contract = client.gateway.get_network(client.channel).get_contract("patchledger")
    genuine = contract.new_proposal(function, [a if isinstance(a, str) else json.dumps(a)
                                               for a in args],
                                    endorsing_organizations=endorsers).endorse()
    prepared = gateway_pb2.PreparedTransaction.FromString(genuine.bytes)
    payload = common_pb2.Payload.FromString(prepared.envelope.payload)
    transaction = transaction_pb2.Transaction.FromString(payload.data)
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(
        transaction.actions[0].payload)
    response = proposal_response_pb2.ProposalResponsePayload.FromString(
        action_payload.action.proposal_response_payload)
    action = proposal_pb2.ChaincodeAction.FromString(response.extension)
    rwset = rwset_pb2.TxReadWriteSet.FromString(action.results)
    forged = 0
    for ns in rwset.ns_rwset:
        if ns.namespace != "patchledger":
            continue
        kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
        for write in kv.writes:
            if write.key.startswith("\x00Deployment\x00"):
                record = json.loads(write.value)
                forge(record)
                write.value = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
                forged += 1
        ns.rwset = kv.SerializeToString()
    assert forged, "the genuine transaction wrote no Deployment"
    action.results = rwset.SerializeToString()
    response.extension = action.SerializeToString()
    action_payload.action.proposal_response_payload = response.SerializeToString()
    peer_keys = {msp: peer_signing_key(w.net, msp) for msp in endorsers}
    for endorsement in action_payload.action.endorsements:
        msp = identities_pb2.SerializedIdentity.FromString(endorsement.endorser).mspid
        endorsement.signature = sign(peer_keys[msp], action_payload.action
                                     .proposal_response_payload + endorsement.endorser)
    transaction.actions[0].payload = action_payload.SerializeToString()
    payload.data = transaction.SerializeToString()
    envelope = common_pb2.Envelope(payload=payload.SerializeToString())  # unsigned: re-signed
    return Transaction(genuine._client, gateway_pb2.PreparedTransaction(
        transaction_id=prepared.transaction_id, envelope=envelope))


def peer_signing_key(net: LocalNetwork, msp: str) -> ec.EllipticCurvePrivateKey:
    """The private key of ``msp``'s peer (the network's state holds every node's)."""
    (path,) = (net.layout.node_msp(net.org(msp).peer.name) / "keystore").glob("*_sk")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def test_a_status_forged_by_a_colluding_majority_is_detected(
        world: World, vuln_id: str, tmp_path: Path) -> None:
    """SecOps and Compliance collude against ITOps: their peers sign a report transaction
    whose Deployment write says VERIFIED while the host signed APPLIED (or carries no
    signature). A majority meets the chaincode's policy, so it commits, and verification
    finds the forged status: it does not verify with the host's certificate, and ITOps'
    dispatcher does not count it (the wave pauses for a person, naming the host). One
    organization's peer alone signing such a forgery is refused at commit."""
    w = world
    patch_id, rollout_id, (h1,) = start_rollout(w, vuln_id, "F", ("h1",), "forged")
    host, op = w["host-h1"], w["itops-operator"]
    applied = [signed_report(host, h1, rollout_id, patch_id, "APPLIED", 1)]

    def verified(record: dict[str, Any]) -> None:
        record["status"] = "VERIFIED"

    alone = endorsed_then_forged(w, op, [SECOPS], verified, "ReportDeployments", applied)
    status = alone.submit().get_status()
    assert status.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert op.evaluate("GetRecord", "Deployment", f"{rollout_id}/{h1}")["status"] == "SCHEDULED"
    forged = endorsed_then_forged(w, op, [SECOPS, COMPLIANCE], verified, "ReportDeployments",
                                  applied)
    submitted = forged.submit()
    status = submitted.get_status()
    assert status.successful, status.code_name  # a colluding majority meets the policy
    for other in op.peers:
        other.new_commit(submitted.bytes).get_status()
    record = op.evaluate("GetRecord", "Deployment", f"{rollout_id}/{h1}")
    assert (record["status"], record["report_sequence"]) == ("VERIFIED", 1)
    key = f"{rollout_id}/{h1}"
    assert deployment_problems(w, rollout_id, h1) == [
        f"deployment {key}: status VERIFIED (report 1): the recorded signature does not "
        f"verify with host {h1!r}'s certificate (not signed by the host, or altered)",
        f"version 2: deployment {key}: status VERIFIED (report 1): the recorded signature "
        f"does not verify with host {h1!r}'s certificate (not signed by the host, or altered)",
    ]
    # ITOps' dispatcher does not count it: the wave (h1 alone) is not settled by a status its
    # host never signed; the dispatcher pauses it for a person, naming the host and why
    state = tmp_path / "dispatch"
    plan = RolloutPlan(rollout_id, patch_id, (WavePlan("canary", (h1,), 1, 1),), soak_seconds=0,
                       failure_threshold_pct=0, wave_timeout_seconds=3600,
                       rollback_on_failure=False)
    (state / "plans").mkdir(parents=True)
    (state / "plans" / f"{rollout_id}.json").write_text(json.dumps(plan.to_dict()))
    dispatcher = Dispatcher(FabricLedger(own=op.gateway, others=op.peers, channel=op.channel),
                            state, ITOPS)
    step = dispatcher.step()
    assert list(step.forged.get(rollout_id, {})) == [h1]
    assert [(d.action, d.rollout_id) for d in step.decisions] == [("pause", rollout_id)]
    reason = op.evaluate("GetRecord", "Rollout", rollout_id)["reason"]
    assert reason.startswith(f"dispatcher: INCONCLUSIVE: wave 0: 1 host status(es) not signed "
                             f"by their host, not counted ({h1}: deployment {key}: status "
                             "VERIFIED (report 1): the recorded signature does not verify")
    assert step.progress[rollout_id] == Counter({"SCHEDULED": 1})  # no report, not VERIFIED

    def unsigned_failure(record: dict[str, Any]) -> None:
        record.update(status="ROLLED_BACK", report_sequence=2, report_signature="")

    again = [signed_report(host, h1, rollout_id, patch_id, "ROLLED_BACK", 2)]
    forged = endorsed_then_forged(w, op, [SECOPS, COMPLIANCE], unsigned_failure,
                                  "ReportDeployments", again)
    submitted = forged.submit()
    assert submitted.get_status().successful
    for other in op.peers:
        other.new_commit(submitted.bytes).get_status()
    problems = deployment_problems(w, rollout_id, h1)
    assert f"deployment {key}: status ROLLED_BACK (report 2) carries no signature of host " \
        f"{h1!r}" in problems


def test_another_organization_cannot_change_a_compliance_host(world: World) -> None:
    """Nobody outside Compliance gets past the contract's own check, whoever endorses."""
    w = world
    c1 = enroll_host(w, w["compliance-operator"], "c1", ["db"])
    with pytest.raises(EndorseError) as excinfo:
        w["itops-operator"].submit("UpdateInventoryDigest", c1, INVENTORY)
    assert f"AuthorizationError: host {c1!r} belongs to ComplianceMSP; caller is from " \
        "ITOpsMSP" in refused(excinfo)


def self_made_host_certificate(host_id: str, issuer: x509.Certificate | None = None) -> str:
    """A host certificate an organization app minted itself: the right ``role=host`` and
    ``host_id`` attributes and a P-256 key, signed with its own key (self-signed, or merely
    naming ``issuer``'s subject as its issuer)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    attrs = {"hf.EnrollmentID": host_id, "role": "host", "host_id": host_id}
    return make_certificate(
        key, host_id, attrs, issuer=OrgCA(key, issuer) if issuer else None,
        not_before=now - dt.timedelta(hours=1), not_after=now + dt.timedelta(days=365),
    ).decode()


def test_a_host_certificate_not_issued_by_the_owner_orgs_ca_is_refused(world: World) -> None:
    """A compromised ITOps app registers a host certificate it made itself (to forge that
    host's reports later): every organization's chaincode server refuses it, because it was
    not issued by ITOps's CA root, which the network gave each chaincode server."""
    w = world
    op = w["itops-operator"]
    hid = f"forged-{w.run}"
    itops_root = x509.load_pem_x509_certificate(w.net.ca_cert(ITOPS).read_bytes())
    for cert in (self_made_host_certificate(hid),
                 self_made_host_certificate(hid, issuer=itops_root)):
        with pytest.raises(EndorseError) as excinfo:
            op.submit("EnrollHost", {"host_id": hid, "cert_pem": cert, "groups": ["attack"]})
        issuer = x509.load_pem_x509_certificate(cert.encode()).issuer.rfc4514_string()
        assert (f"SignatureError: the certificate of host {hid!r} (ITOpsMSP) was not issued "
                f"by a valid root certificate of ITOpsMSP (its issuer: {issuer})"
                ) in refused(excinfo)
    assert not _exists(w, "Host", hid)
    # A genuine host certificate of another organization's CA is not ITOps's either.
    c1 = host_id(w, "c1")
    compliance_cert = w["host-c1"].user.cert_pem.decode()
    with pytest.raises(EndorseError) as excinfo2:
        op.submit("EnrollHost", {"host_id": c1, "cert_pem": compliance_cert})
    assert f"SignatureError: the certificate of host {c1!r} (ITOpsMSP) was not issued by a " \
        "valid root certificate of ITOpsMSP" in refused(excinfo2)


def test_a_revocation_during_a_rollout_halts_it_and_orders_the_rollback(
        world: World, vuln_id: str) -> None:
    """On the real network: revoking a patch whose ITOps rollout runs writes ITOps' rollout
    (key-level policy: ITOps' peer AND a majority) in the revocation's transaction; the hosts
    can then only report their rollback."""
    w, op = world, world["itops-operator"]
    patch_id, rollout_id, (h3,) = start_rollout(w, vuln_id, "V", ("h3",), "revoke")
    host = w["host-h3"]
    # the replay counter is the deployment's (h3 reported in other rollouts before)
    seq = op.evaluate("GetRecord", "Deployment", f"{rollout_id}/{h3}")["report_sequence"]
    assert host.submit("ReportDeployments", [
        signed_report(host, h3, rollout_id, patch_id, "APPLIED", seq + 1)])["accepted"] == 1
    w["secops-approver"].submit("RevokePatch", patch_id, "backdoored build")
    result = w["compliance-approver"].submit("RevokePatch", patch_id, "agree")
    reasons = [(c["record_type"], c["to"], c.get("reason", "")) for c in result["changes"]]
    assert reasons == [
        ("Patch", "REVOKED", ""),
        ("Rollout", "HALTED", f"patch {patch_id} revoked"),
        ("Rollout", "ROLLED_BACK", f"patch {patch_id} revoked"),
        ("Revocation", "EFFECTIVE", ""),
    ]
    assert op.evaluate("GetRecord", "Rollout", rollout_id)["status"] == "ROLLED_BACK"
    late = host.submit("ReportDeployments", [
        signed_report(host, h3, rollout_id, patch_id, "VERIFIED", seq + 2),
        signed_report(host, h3, rollout_id, patch_id, "ROLLED_BACK", seq + 3),
    ])
    assert [r["accepted"] for r in late["results"]] == [False, True]
    assert op.evaluate("GetRecord", "Deployment", f"{rollout_id}/{h3}")["status"] == "ROLLED_BACK"


# ---------------------------------------------------------------------------- bootstrap


def test_one_organization_cannot_initialise_the_ledger_alone_or_again(world: World) -> None:
    """On the real network, ITOps' admin (holding only ITOps' identities) tries to set the
    first policy alone: a policy naming only ITOps with quorums of 1, the full policy with
    only its own consent or its consent twice, a consent it minted "for SecOps" with its own
    certificate, a SecOps approver's consent, SecOps' admin's consent to another policy. Each
    is refused by the peers, whatever the ledger's state; the initialised ledger refuses a
    second InitLedger even with valid consents."""
    net = world.net
    admin = net.admin_msp(ITOPS)
    channel = create_channel(net.org(ITOPS).peer.address,
                             tls_root_certificates=net.ca_cert(ITOPS).read_bytes())
    world.channels.append(channel)
    gateway = connect(Identity.from_msp_dir(admin, ITOPS), EcdsaSigner.from_msp_dir(admin),
                      channel, endpoint=net.org(ITOPS).peer.address)
    contract = gateway.get_network(net.config.topology.channel).get_contract("patchledger")
    expires = int(time.time()) + 3600
    name = net.config.topology.channel
    alone = {**POLICY, "organizations": [ITOPS], "change_quorum": 1, "revocation_quorum": 1,
             "exception_quorum": 1, "quorum": dict.fromkeys(("critical", "high", "medium",
                                                             "low"), 1)}
    mine = admin_consent(net.config, net.org(ITOPS), POLICY, expires)
    itops_admin_cert = (admin / "signcerts" / "cert.pem").read_bytes()
    minted = new_consent(POLICY, key=EcdsaSigner.from_msp_dir(admin).private_key,
                         cert_pem=itops_admin_cert, msp_id=SECOPS, channel_id=name,
                         expires_at=expires)
    approver = world["secops-approver"].user
    by_approver = new_consent(POLICY, key=approver.signer.private_key, cert_pem=approver.cert_pem,
                              msp_id=SECOPS, channel_id=name, expires_at=expires)
    other = admin_consent(net.config, net.org(SECOPS), {**POLICY, "change_quorum": 3}, expires)
    attempts = [
        (alone, [admin_consent(net.config, net.org(ITOPS), alone, expires)],
         "must name at least 2 of the channel's 3"),
        (POLICY, [mine], "needs the signed consent of 2 of the channel's 3 organizations"),
        (POLICY, [mine, mine], "a second consent of ITOpsMSP"),
        (POLICY, [mine, minted], "not issued by a valid root certificate of SecOpsMSP"),
        (POLICY, [mine, by_approver], "role 'approver'"),
        (POLICY, [mine, other], "given for policy 'default' digest"),
    ]
    for policy, consents, expected in attempts:
        with pytest.raises(EndorseError) as excinfo:
            contract.submit("InitLedger", [json.dumps(policy), json.dumps(consents)])
        assert expected in refused(excinfo)
    valid = [mine, admin_consent(net.config, net.org(SECOPS), POLICY, expires)]
    with pytest.raises(EndorseError) as excinfo:
        contract.submit("InitLedger", [json.dumps(POLICY), json.dumps(valid)])
    assert "AlreadyExistsError: Policy 'default' already exists" in refused(excinfo)
    stored = world["secops-feed"].evaluate("GetRecord", "Policy", "default")
    assert stored["organizations"] == POLICY["organizations"]
