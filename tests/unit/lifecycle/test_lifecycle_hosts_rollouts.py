"""Hosts (enrollment, inventory, decommissioning) and rollout gates."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.chaincode.lifecycle import (
    AlreadyExistsError,
    AuthorizationError,
    Key,
    MemoryStore,
    OrgTrust,
    PreconditionError,
    SignatureError,
    TransitionError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.ops import deployments, hosts, rollouts
from patchledger.chaincode.lifecycle.queries import get_record
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    INVENTORY,
    ITOPS,
    NOW,
    SECOPS,
    START,
    TRUST,
    OrgCA,
    approved_store,
    host_identity,
    identity,
    make_certificate,
    new_ca,
    org_ca,
    report,
    run,
    who,
)


def test_enrollment_requires_a_host_certificate_for_that_host() -> None:
    store = approved_store()
    admin = who(ITOPS, "admin")
    with pytest.raises(ValidationError, match="host_id=h9"):
        run(store, admin, hosts.enroll_host, "h9", host_identity(ITOPS, "h1").cert_pem.decode(),
            trust=TRUST)
    with pytest.raises(ValidationError, match="host_id=h9"):
        run(store, admin, hosts.enroll_host, "h9", who(ITOPS, "operator").cert_pem.decode(),
            trust=TRUST)
    with pytest.raises(AlreadyExistsError):
        run(store, admin, hosts.enroll_host, "h1", host_identity(ITOPS, "h1").cert_pem.decode(),
            trust=TRUST)
    with pytest.raises(AuthorizationError):
        run(store, who(ITOPS, "feed"), hosts.enroll_host, "h9", "x", trust=TRUST)


def _host_cert(host_id: str, issuer: OrgCA | None, **validity: dt.datetime) -> str:
    """A host certificate with the right attributes and a P-256 key, from ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = make_certificate(
        key, host_id, {"role": "host", "host_id": host_id}, issuer=issuer, **validity
    )
    return pem.decode()


def _enroll(store: MemoryStore, cert_pem: str, trust: OrgTrust = TRUST, now: int = NOW) -> None:
    run(store, who(ITOPS, "operator"), hosts.enroll_host, "h9", cert_pem, trust=trust, now=now)


def test_a_host_certificate_issued_by_the_owner_orgs_root_is_accepted() -> None:
    store = approved_store()
    cert = _host_cert("h9", org_ca(ITOPS))
    _enroll(store, cert)
    record = get_record(store, "Host", "h9").to_dict()
    assert (record["owner_msp"], record["cert_pem"], record["status"]) == (
        ITOPS, cert, "ENROLLED")
    assert store.owners[Key("Host", ("h9",))] == ITOPS


def test_a_host_certificate_of_another_ca_is_refused() -> None:
    store = approved_store()
    rogue = new_ca("ca.rogue")
    for cert in (
        _host_cert("h9", rogue),  # minted by a CA the organization app controls
        _host_cert("h9", None),  # self-signed
        _host_cert("h9", org_ca(SECOPS)),  # another organization's CA
    ):
        with pytest.raises(SignatureError) as excinfo:
            _enroll(store, cert)
        assert str(excinfo.value).startswith(
            "the certificate of host 'h9' (ITOpsMSP) was not issued by a valid root "
            "certificate of ITOpsMSP (its issuer: CN="
        ), excinfo.value
    # A forged certificate naming the owner CA as issuer, signed with another key.
    impostor = OrgCA(rogue.key, org_ca(ITOPS).cert)
    with pytest.raises(SignatureError, match="not issued by a valid root certificate of ITOpsMSP"):
        _enroll(store, _host_cert("h9", impostor))
    assert get_record_or_none(store, "h9") is None


def test_an_expired_or_not_yet_valid_host_certificate_is_refused() -> None:
    store = approved_store()
    moment = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    expired = _host_cert("h9", org_ca(ITOPS), not_after=moment - dt.timedelta(seconds=1))
    with pytest.raises(ValidationError) as excinfo:
        _enroll(store, expired)
    assert excinfo.value.field == "cert_pem"
    assert "the certificate of host 'h9' (ITOpsMSP) is not valid at the transaction time " \
        f"{moment.isoformat()} (valid from 2025-01-01T00:00:00+00:00 until " in str(excinfo.value)
    future = _host_cert("h9", org_ca(ITOPS), not_before=moment + dt.timedelta(seconds=1))
    with pytest.raises(ValidationError, match="not valid at the transaction time"):
        _enroll(store, future)
    # The same certificate is fine once its validity started.
    _enroll(store, future, now=NOW + 1)
    assert get_record_or_none(store, "h9") is not None


def test_a_root_that_is_not_valid_at_the_transaction_time_issues_nothing() -> None:
    store = approved_store()
    old = new_ca("ca.itops.old", not_after=dt.datetime.fromtimestamp(NOW - 1, tz=dt.UTC))
    cert = _host_cert("h9", old, not_before=START)
    with pytest.raises(SignatureError, match="not issued by a valid root certificate"):
        _enroll(store, cert, OrgTrust({ITOPS: (old.cert,)}))
    # With the current root next to the expired one (a key rollover), its hosts enroll.
    rollover = OrgTrust({ITOPS: (old.cert, org_ca(ITOPS).cert)})
    _enroll(store, _host_cert("h9", org_ca(ITOPS)), rollover)


def test_without_roots_for_the_owner_org_enrollment_is_refused() -> None:
    store = approved_store()
    cert = _host_cert("h9", org_ca(ITOPS))
    others = OrgTrust({SECOPS: (org_ca(SECOPS).cert,), COMPLIANCE: (org_ca(COMPLIANCE).cert,)})
    for trust in (OrgTrust(), others, OrgTrust({ITOPS: ()})):
        with pytest.raises(SignatureError) as excinfo:
            _enroll(store, cert, trust)
        assert str(excinfo.value) == (
            "the certificate of host 'h9' (ITOpsMSP): no root certificate of ITOpsMSP is "
            "configured on this chaincode server, so it cannot check that ITOpsMSP's CA issued "
            "it (refused)"
        )
    assert get_record_or_none(store, "h9") is None


def test_org_trust_from_pem_bundles() -> None:
    bundle = org_ca(ITOPS).cert_pem + new_ca("ca.itops.next").cert_pem
    trust = OrgTrust.from_pem({ITOPS: bundle, SECOPS: org_ca(SECOPS).cert_pem.decode()})
    assert trust.organizations == (ITOPS, SECOPS)
    assert len(trust.roots[ITOPS]) == 2 and trust.roots[ITOPS][0] == org_ca(ITOPS).cert
    assert OrgTrust({ITOPS: (), SECOPS: (org_ca(SECOPS).cert,)}).organizations == (SECOPS,)
    for bad in (b"", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        with pytest.raises(ValidationError, match=r"'roots\.X': is not a bundle of PEM X\.509"):
            OrgTrust.from_pem({"X": bad})
    with pytest.raises(TypeError):
        trust.roots[ITOPS] = ()  # type: ignore[index]


def get_record_or_none(store: MemoryStore, host_id: str) -> object:
    return store.get(Key("Host", (host_id,)))


def test_inventory_updates_by_the_host_itself_or_its_organization_only() -> None:
    store = approved_store()
    run(store, host_identity(ITOPS, "h1"), hosts.update_inventory_digest, "h1", "aa" * 32)
    run(store, who(ITOPS, "operator"), hosts.update_inventory_digest, "h2", "bb" * 32)
    assert get_record(store, "Host", "h1").to_dict()["inventory_sha256"] == "aa" * 32
    with pytest.raises(AuthorizationError, match="cannot act for"):
        run(store, host_identity(ITOPS, "h1"), hosts.update_inventory_digest, "h2", INVENTORY)
    with pytest.raises(AuthorizationError, match="belongs to ITOpsMSP"):
        run(store, who(SECOPS, "operator"), hosts.update_inventory_digest, "h2", INVENTORY)
    with pytest.raises(ValidationError, match="inventory_sha256"):
        run(store, who(ITOPS, "operator"), hosts.update_inventory_digest, "h2", "nope")


def test_decommissioned_host_is_final_and_cannot_report() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1", "h2"]}])
    run(store, op, rollouts.advance_rollout, "R-1")
    run(store, op, hosts.decommission_host, "h1")
    with pytest.raises(TransitionError, match="DECOMMISSIONED: cannot move to DECOMMISSIONED"):
        run(store, op, hosts.decommission_host, "h1")
    with pytest.raises(TransitionError, match="DECOMMISSIONED"):
        run(store, op, hosts.update_inventory_digest, "h1", INVENTORY)
    result = run(store, op, deployments.report_deployments, [report(host_identity(ITOPS, "h1"), 1)])
    assert result.results[0].error_type == "PreconditionError"


def test_wave_gates_threshold_soak_and_states() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(
        store,
        op,
        rollouts.create_rollout,
        "R-1",
        "P-1",
        [{"hosts": ["h1", "h2"]}, {"hosts": ["h3"]}],
        failure_threshold_pct=0,
        soak_seconds=600,
    )
    with pytest.raises(TransitionError, match="PLANNED: cannot move to COMPLETED"):
        run(store, op, rollouts.complete_rollout, "R-1")
    run(store, op, rollouts.advance_rollout, "R-1")
    with pytest.raises(PreconditionError, match="2 pending"):
        run(store, op, rollouts.advance_rollout, "R-1")
    with pytest.raises(PreconditionError, match="advance first"):
        run(store, op, rollouts.complete_rollout, "R-1")
    h1, h2 = host_identity(ITOPS, "h1"), host_identity(ITOPS, "h2")
    result = run(
        store,
        op,
        deployments.report_deployments,
        [report(h1, 1), report(h2, 1, "FAILED"), report(h2, 2, "APPLIED")],
    )
    assert [r.error_type for r in result.results] == ["", "", "TransitionError"]
    with pytest.raises(PreconditionError, match="1/2 failed"):
        run(store, op, rollouts.advance_rollout, "R-1")
    run(store, op, deployments.report_deployments, [report(h2, 3, "ROLLED_BACK")])
    run(store, op, rollouts.pause_rollout, "R-1")
    with pytest.raises(TransitionError, match="PAUSED: cannot move to RUNNING"):
        run(store, op, rollouts.advance_rollout, "R-1")
    with pytest.raises(TransitionError, match="PAUSED: cannot move to PAUSED"):
        run(store, op, rollouts.pause_rollout, "R-1")
    run(store, op, rollouts.resume_rollout, "R-1")
    with pytest.raises(TransitionError, match="RUNNING: cannot move to RUNNING"):
        run(store, op, rollouts.resume_rollout, "R-1")
    run(store, op, rollouts.halt_rollout, "R-1")
    run(store, op, rollouts.roll_back_rollout, "R-1")
    assert get_record(store, "Rollout", "R-1").state == "ROLLED_BACK"


@pytest.mark.parametrize("groups", ["web", "canary,web", {"web": True}, None])
def test_host_groups_must_be_a_list_not_a_string_split_into_characters(groups: object) -> None:
    store = approved_store(hosts=())
    with pytest.raises(ValidationError) as excinfo:
        run(
            store,
            who(ITOPS, "admin"),
            hosts.enroll_host,
            "h1",
            host_identity(ITOPS, "h1").cert_pem.decode(),
            trust=TRUST,
            groups=groups,
        )
    assert str(excinfo.value) == "invalid field 'groups': must be a list of identifiers"
    assert store.get(Key("Host", ("h1",))) is None


def test_a_slash_in_an_identifier_is_refused() -> None:
    """``/`` joins the parts of multi-part ids (``R-1/h1``): a rollout ``R/1`` with host ``h1``
    and a rollout ``R`` with host ``1/h1`` would both be ``Deployment 'R/1/h1'``."""
    store = approved_store()
    op = who(ITOPS, "operator")
    with pytest.raises(ValidationError, match=r"'rollout_id': .* without spaces or '/'"):
        run(store, op, rollouts.create_rollout, "R/1", "P-1", [{"hosts": ["h1"]}])
    with pytest.raises(ValidationError, match=r"'waves\[0\].groups\[0\]': .* or '/'"):
        run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"groups": ["web/eu"]}])
    with pytest.raises(ValidationError, match=r"'host_id': .* or '/'"):
        run(
            store,
            who(ITOPS, "admin"),
            hosts.enroll_host,
            "1/h1",
            host_identity(ITOPS, "1/h1").cert_pem.decode(),
            trust=TRUST,
        )


def test_reports_follow_the_rollout_state() -> None:
    """RUNNING and PAUSED take any report; HALTED and ROLLED_BACK only ROLLED_BACK ones."""
    store = approved_store()
    op = who(ITOPS, "operator")
    h1, h2, h3 = (host_identity(ITOPS, h) for h in ("h1", "h2", "h3"))
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1", "h2", "h3"]}])
    run(store, op, rollouts.advance_rollout, "R-1")

    def outcome(*reports: dict[str, object]) -> list[tuple[bool, str]]:
        batch = run(store, op, deployments.report_deployments, list(reports))
        return [(r.accepted, r.error) for r in batch.results]

    assert outcome(report(h1, 1, "APPLIED"), report(h2, 1, "APPLIED")) == [(True, "")] * 2
    run(store, op, rollouts.pause_rollout, "R-1")
    assert outcome(report(h1, 2, "VERIFIED")) == [(True, "")]  # a paused wave still reports
    run(store, op, rollouts.halt_rollout, "R-1")
    assert outcome(report(h3, 1, "APPLIED"), report(h1, 3, "ROLLED_BACK")) == [
        (False, "Rollout 'R-1' is HALTED: refuses APPLIED reports (it takes only ROLLED_BACK"
         " reports)"),
        (True, ""),
    ]
    run(store, op, rollouts.roll_back_rollout, "R-1")
    assert outcome(report(h3, 2, "VERIFIED"), report(h2, 2, "ROLLED_BACK")) == [
        (False, "Rollout 'R-1' is ROLLED_BACK: refuses VERIFIED reports (it takes only"
         " ROLLED_BACK reports)"),
        (True, ""),
    ]
    statuses = [get_record(store, "Deployment", "R-1", h).state for h in ("h1", "h2", "h3")]
    assert statuses == ["ROLLED_BACK", "ROLLED_BACK", "SCHEDULED"]


def test_a_completed_rollout_takes_no_report() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    h1, h2 = host_identity(ITOPS, "h1"), host_identity(ITOPS, "h2")
    plan = [{"hosts": ["h1", "h2"]}]
    run(store, op, rollouts.create_rollout, "R-1", "P-1", plan, failure_threshold_pct=50)
    run(store, op, rollouts.advance_rollout, "R-1")
    run(store, op, deployments.report_deployments, [report(h1, 1), report(h2, 1, "FAILED")])
    run(store, op, rollouts.complete_rollout, "R-1")
    (result,) = run(
        store, op, deployments.report_deployments, [report(h2, 2, "ROLLED_BACK")]
    ).results
    assert (result.accepted, result.error_type) == (False, "PreconditionError")
    assert result.error == (
        "Rollout 'R-1' is COMPLETED: refuses ROLLED_BACK reports (it takes no reports)"
    )
    assert get_record(store, "Deployment", "R-1", "h2").state == "FAILED"
    assert get_record(store, "Deployment", "R-1", "h2").to_dict()["report_sequence"] == 1


def test_soak_time_and_last_wave() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(
        store,
        op,
        rollouts.create_rollout,
        "R-1",
        "P-1",
        [{"hosts": ["h1"]}, {"groups": ["web"]}],
        soak_seconds=600,
    )
    run(store, op, rollouts.advance_rollout, "R-1")
    run(store, op, deployments.report_deployments, [report(host_identity(ITOPS, "h1"), 1)])
    with pytest.raises(PreconditionError, match="soaks until"):
        run(store, op, rollouts.advance_rollout, "R-1")
    run(store, op, rollouts.advance_rollout, "R-1", now=NOW + 600)
    with pytest.raises(PreconditionError, match="last wave"):
        run(store, op, rollouts.advance_rollout, "R-1", now=NOW + 600)


@pytest.mark.parametrize(
    ("waves", "message"),
    [
        ([], "waves"),
        ([{"groups": ["nobody"]}], "selects no enrolled host"),
        (["h1"], "must be an object"),
        ([{"hosts": ["h1"]}, {"hosts": ["h1"]}], "already in a wave"),
    ],
)
def test_bad_waves_are_refused(waves: list[object], message: str) -> None:
    store = approved_store()
    with pytest.raises(ValidationError, match=message):
        run(store, who(ITOPS, "operator"), rollouts.create_rollout, "R-1", "P-1", waves)


def test_rollout_ids_are_unique_and_batches_bounded() -> None:
    store = approved_store()
    op = who(ITOPS, "operator")
    run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}])
    with pytest.raises(AlreadyExistsError):
        run(store, op, rollouts.create_rollout, "R-1", "P-1", [{"hosts": ["h1"]}])
    with pytest.raises(ValidationError, match="reports"):
        run(store, op, deployments.report_deployments, [])
    with pytest.raises(ValidationError, match="reports"):
        run(store, op, deployments.report_deployments, "x")
    run(store, op, rollouts.advance_rollout, "R-1")
    wrong_patch = report(host_identity(ITOPS, "h1"), 1, patch_id="P-9")
    result = run(store, op, deployments.report_deployments, [wrong_patch])
    assert result.results[0].error_type == "ValidationError"
    assert result.results[0].to_dict()["accepted"] is False
    host_caller = identity(ITOPS, "host", host_id="h1")
    assert (
        run(
            store,
            host_caller,
            deployments.report_deployments,
            [report(host_identity(ITOPS, "h1"), 1)],
        ).accepted
        == 1
    )
