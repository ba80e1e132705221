"""Self-certifying deployment statuses (chaincode/lifecycle/deployment_proof.py) and what a
report records (ops/deployments.py): a report writes its Deployment record only, with the
host's signature; the replay counter is the deployment's; a status written without the host's
signature (what a colluding majority's modified chaincode could commit, since deployments carry
no key-level policy) is detected, so is a status set back to an older genuine report."""

from __future__ import annotations

import dataclasses

from patchledger.chaincode.lifecycle import MemoryStore
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.deployment_proof import check_deployment, check_history
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.host_report import HostReport, SignedReport
from patchledger.chaincode.lifecycle.ops import deployments, rollouts
from patchledger.chaincode.lifecycle.queries import get_record
from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.lifecycle.rollout import Rollout
from patchledger.chaincode.lifecycle.signatures import sign
from tests.unit.lifecycle.lifecycle_support import (
    INVENTORY,
    ITOPS,
    NOW,
    approved_store,
    host_identity,
    report,
    run,
    who,
)


def rolling_out() -> MemoryStore:
    """R-1 rolling out P-1 to h1 and h2 (wave 0 started)."""
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1", "h2"]}])
    run(store, op, rollouts.advance_rollout, "R-1")
    return store


def records(store: MemoryStore, host_id: str = "h1") -> tuple[Deployment, Host, Rollout]:
    deployment = get_record(store, "Deployment", "R-1", host_id)
    host = get_record(store, "Host", host_id)
    rollout = get_record(store, "Rollout", "R-1")
    assert isinstance(deployment, Deployment) and isinstance(host, Host)
    assert isinstance(rollout, Rollout)
    return deployment, host, rollout


def reported(store: MemoryStore, *steps: tuple[int, str]) -> list[Deployment]:
    """h1 reports ``steps`` one transaction each; every version of its deployment, oldest
    first (the SCHEDULED one included)."""
    versions = [records(store)[0]]
    for sequence, outcome in steps:
        batch = [report(host_identity(ITOPS, "h1"), sequence, outcome)]
        result = run(store, who(ITOPS, "operator"), deployments.report_deployments, batch)
        assert result.accepted == 1, result.results
        versions.append(records(store)[0])
    return versions


def test_a_report_writes_its_deployment_with_the_hosts_signature_and_not_the_host() -> None:
    store = rolling_out()
    host_before = store.data[Key("Host", ("h1",))]
    batch = [report(host_identity(ITOPS, "h1"), 1, "APPLIED")]
    result = run(store, who(ITOPS, "operator"), deployments.report_deployments, batch)
    assert [c.record_type for c in result.changes] == ["Deployment"]
    assert store.data[Key("Host", ("h1",))] == host_before
    deployment, host, rollout = records(store)
    assert (deployment.status, deployment.report_sequence, deployment.reported_at) == (
        "APPLIED", 1, NOW)
    assert deployment.report_signature == batch[0]["signature"]
    signed = deployment.signed_report()
    assert signed is not None
    assert signed.report.to_json() == HostReport.from_dict(batch[0]["report"]).to_json()
    assert check_deployment(deployment, host, rollout) == []


def test_the_replay_counter_is_the_deployments() -> None:
    store = rolling_out()
    reported(store, (3, "APPLIED"))
    for sequence in (3, 2):  # the same report again, or an older one
        batch = [report(host_identity(ITOPS, "h1"), sequence, "VERIFIED")]
        before = dict(store.data)
        (entry,) = run(store, who(ITOPS, "operator"), deployments.report_deployments,
                       batch).results
        assert (entry.accepted, entry.error_type) == (False, "ReplayError")
        assert "sequence must be above 3" in entry.error
        assert store.data == before
    # h2's counter is its own deployment's: its first report is accepted at 1
    batch = [report(host_identity(ITOPS, "h2"), 1, "APPLIED")]
    assert run(store, who(ITOPS, "operator"), deployments.report_deployments,
               batch).accepted == 1


def test_a_report_stays_above_the_host_counter_of_an_older_ledger() -> None:
    """A Host record written when reports still counted on it keeps that floor."""
    store = rolling_out()
    key = Key("Host", ("h1",))
    host = Host.from_json(store.data[key])
    store.data[key] = dataclasses.replace(host, last_report_sequence=7).to_json()
    batch = [report(host_identity(ITOPS, "h1"), 7, "APPLIED")]
    (entry,) = run(store, who(ITOPS, "operator"), deployments.report_deployments,
                   batch).results
    assert (entry.accepted, entry.error_type) == (False, "ReplayError")
    assert reported(store, (8, "APPLIED"))[-1].report_sequence == 8


def test_a_report_whose_signed_bytes_the_record_cannot_keep_is_refused() -> None:
    store = rolling_out()
    h1 = host_identity(ITOPS, "h1")
    body = HostReport(host_id="h1", rollout_id="R-1", patch_id="P-1", outcome="APPLIED",
                      sequence=1, inventory_sha256=INVENTORY, reported_at=NOW,
                      extra={"agent_version": "9.9"})
    signed = SignedReport.create(body, sign(h1.key, body.to_json())).to_dict()
    before = dict(store.data)
    (entry,) = run(store, who(ITOPS, "operator"), deployments.report_deployments,
                   [signed]).results
    assert (entry.accepted, entry.error_type) == (False, "ValidationError")
    assert "signed bytes could not be rebuilt" in entry.error
    assert store.data == before


def test_genuine_statuses_and_history_pass() -> None:
    store = rolling_out()
    versions = reported(store, (1, "APPLIED"), (2, "VERIFIED"))
    _, host, rollout = records(store)
    assert [v.status for v in versions] == ["SCHEDULED", "APPLIED", "VERIFIED"]
    for version in versions:
        assert check_deployment(version, host, rollout) == []
    assert check_history(versions, host, rollout) == []


def test_a_status_written_without_the_hosts_signature_is_detected() -> None:
    """What a colluding majority's chaincode could commit: the status changed, the
    signature removed, made by another key, or the report's fields altered."""
    store = rolling_out()
    (_, applied) = reported(store, (1, "APPLIED"))
    _, host, rollout = records(store)
    other = host_identity(ITOPS, "h2")
    body = applied.signed_report()
    assert body is not None
    forged = {
        "status changed, the APPLIED report's signature kept": applied.evolve(status="VERIFIED"),
        "no signature": applied.evolve(status="FAILED", report_signature=""),
        "signed by another host": applied.evolve(
            report_signature=SignedReport.create(
                body.report, sign(other.key, body.report.to_json())).signature),
        "digest altered": applied.evolve(inventory_sha256="ab" * 32),
        "sequence altered": applied.evolve(report_sequence=99),
        "signature not base64": applied.evolve(report_signature="not base64!"),
    }
    for what, record in forged.items():
        problems = check_deployment(record, host, rollout)
        assert len(problems) == 1, what
        assert problems[0].startswith("deployment R-1/h1: status "), (what, problems)


def test_a_scheduled_status_with_report_fields_or_outside_the_rollout_is_detected() -> None:
    store = rolling_out()
    scheduled, host, rollout = records(store)
    (problem,) = check_deployment(scheduled.evolve(report_sequence=5), host, rollout)
    assert problem == ("deployment R-1/h1: SCHEDULED with report fields set (no report sets "
                       "that state)")
    h3 = get_record(store, "Host", "h3")
    assert isinstance(h3, Host)
    invented = Deployment(rollout_id="R-1", host_id="h3", patch_id="P-1", owner_msp=ITOPS,
                          wave=0)
    assert check_deployment(invented, h3, rollout) == [
        "deployment R-1/h3: rollout 'R-1' has no host 'h3' in wave 0"]
    assert check_deployment(scheduled.evolve(patch_id="P-2"), host, rollout) == [
        "deployment R-1/h1: patch 'P-2', but its rollout deploys 'P-1'"]
    assert check_deployment(scheduled, h3, rollout) == [
        "deployment R-1/h1: checked against host 'h3' and rollout 'R-1', not its own"]


def test_a_status_set_back_to_an_older_genuine_report_is_detected_by_the_history() -> None:
    store = rolling_out()
    versions = reported(store, (1, "APPLIED"), (2, "VERIFIED"))
    _, host, rollout = records(store)
    rewritten = [*versions, versions[1]]  # VERIFIED back to the signed APPLIED report
    assert check_deployment(versions[1], host, rollout) == []  # each version alone is genuine
    assert check_history(rewritten, host, rollout) == [
        "version 4: deployment R-1/h1 moved VERIFIED -> APPLIED, which no report does",
        "version 4: deployment R-1/h1 report sequence 1 is not above the previous version's 2"
        " (a replay or a rewrite)",
    ]
    assert check_history(versions[1:], host, rollout) == [
        "version 1: deployment R-1/h1 was created APPLIED, not SCHEDULED"]


def test_a_signature_checks_against_an_earlier_certificate_of_the_host() -> None:
    store = rolling_out()
    (_, applied) = reported(store, (1, "APPLIED"))
    _, host, rollout = records(store)
    renewed = dataclasses.replace(host, cert_pem=host_identity(ITOPS, "h2").cert_pem.decode())
    assert len(check_deployment(applied, renewed, rollout)) == 1
    assert check_deployment(applied, renewed, rollout,
                            host_certs=(host.cert_pem, renewed.cert_pem)) == []
