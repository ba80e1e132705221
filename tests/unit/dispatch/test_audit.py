"""``audit_rollout`` (app/dispatch/audit.py) over the real lifecycle core in memory: genuine
statuses pass; a status written without the host's signature (what a colluding majority could
commit, deployments having no key-level policy) is reported; an unknown rollout is a 404."""

from __future__ import annotations

import dataclasses

import pytest

from patchledger.app.dispatch.audit import audit_rollout
from patchledger.app.fabric import GatewayError
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.ops import deployments, rollouts
from patchledger.chaincode.lifecycle.record import Key
from tests.unit.dispatch.core_ledger import Clock, CoreLedger
from tests.unit.lifecycle.lifecycle_support import ITOPS, host_identity, report, run, who
from tests.unit.lifecycle.test_deployment_proof import rolling_out


def rolled_out() -> CoreLedger:
    """R-1 over h1 and h2, h1 VERIFIED, h2 still SCHEDULED; R-2 over h3 (not audited)."""
    store = rolling_out()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-2", "P-1", [{"hosts": ["h3"]}])
    run(store, op, rollouts.advance_rollout, "R-2")
    batch = [report(host_identity(ITOPS, "h1"), 1, "APPLIED"),
             report(host_identity(ITOPS, "h1"), 2, "VERIFIED")]
    assert run(store, op, deployments.report_deployments, batch).accepted == 2
    return CoreLedger(store, op, Clock())


def test_genuine_statuses_pass() -> None:
    report_ = audit_rollout(rolled_out(), "R-1")
    assert report_.to_dict() == {"rollout_id": "R-1", "ok": True, "deployments": 2,
                                 "versions": 0, "problems": []}


def test_a_status_written_without_the_hosts_signature_is_reported() -> None:
    ledger = rolled_out()
    key = Key("Deployment", ("R-1", "h2"))
    scheduled = Deployment.from_json(ledger.store.data[key])
    forged = dataclasses.replace(scheduled, status="VERIFIED", report_sequence=1)
    ledger.store.data[key] = forged.to_json()
    report_ = audit_rollout(ledger, "R-1")
    assert not report_.ok
    assert report_.problems == [
        "deployment R-1/h2: status VERIFIED (report 1) carries no signature of host 'h2'"]


def test_an_unknown_rollout_is_not_found() -> None:
    with pytest.raises(GatewayError, match="R-9"):
        audit_rollout(rolled_out(), "R-9")
