"""The attestation answers of the core (``attest_deployment``, ``attest_channel_roots``) and
their refusals, and the contract functions over the fake peer (status codes, tx time)."""

from __future__ import annotations

from typing import Any

import pytest

from patchledger.chaincode.lifecycle import NotFoundError, ValidationError
from patchledger.chaincode.lifecycle.attestation import (
    DEPLOYMENT_KIND,
    attest_channel_roots,
    attest_deployment,
    roots_fingerprint,
)
from patchledger.chaincode.lifecycle.ops import governance, rollouts
from tests.unit.lifecycle.lifecycle_support import (
    COMPLIANCE,
    ITOPS,
    NOW,
    ORGS,
    SECOPS,
    TRUST,
    approved_store,
    run,
    who,
)
from tests.unit.patchledger_contract.contract_support import Ledger, scenario

NONCE = "0123456789abcdef" * 4


def running_store() -> Any:
    store = approved_store()
    run(store, who(ITOPS, "operator"), rollouts.create_rollout, "R-1", "P-1",
        [{"hosts": ["h1"]}, {"groups": ["web"]}])
    run(store, who(ITOPS, "operator"), rollouts.advance_rollout, "R-1")
    return store


def test_the_answer_holds_patch_policy_quorum_approvals_and_deployment() -> None:
    answer = attest_deployment(running_store(), "h1", "R-1", NONCE, now=NOW)
    assert answer["kind"] == DEPLOYMENT_KIND and answer["nonce"] == NONCE
    assert answer["attested_at"] == NOW
    assert answer["patch"]["status"] == "RELEASED"
    assert answer["quorum"] == answer["policy"]["quorum"][answer["patch"]["severity"]] == 2
    assert {a["statement"]["statement"]["msp_id"] for a in answer["approvals"]} == {
        SECOPS, COMPLIANCE}
    assert answer["rollout"]["status"] == "RUNNING" and answer["in_current_wave"] is True
    assert answer["deployment"]["status"] == "SCHEDULED"
    assert (answer["supersedes_chain"], answer["superseded_by"]) == ([], [])


def test_a_host_of_a_later_wave_is_attested_as_not_in_the_current_wave() -> None:
    answer = attest_deployment(running_store(), "h2", "R-1", NONCE, now=NOW)
    assert answer["in_current_wave"] is False and answer["deployment"] is None


def test_states_are_reported_not_judged() -> None:
    store = running_store()
    for org in (SECOPS, COMPLIANCE):
        run(store, who(org, "approver"), governance.revoke_patch, "P-1", "bad build")
    assert attest_deployment(store, "h1", "R-1", NONCE, now=NOW)["patch"]["status"] == "REVOKED"


@pytest.mark.parametrize(("host", "rollout", "nonce", "error", "field"), [
    ("h404", "R-1", NONCE, NotFoundError, "Host 'h404'"),
    ("h1", "R-404", NONCE, NotFoundError, "Rollout 'R-404'"),
    ("h1", "R-1", "short", ValidationError, "nonce"),
    ("h1", "R-1", "a b" * 10, ValidationError, "nonce"),
    ("h\x00", "R-1", NONCE, ValidationError, "host_id"),
    (7, "R-1", NONCE, ValidationError, "host_id"),
    ("h1", ["R-1"], NONCE, ValidationError, "rollout_id"),
])
def test_malformed_or_unknown_arguments_are_refused(host: Any, rollout: Any, nonce: Any,
                                                    error: type[Exception], field: str) -> None:
    with pytest.raises(error, match=field):
        attest_deployment(running_store(), host, rollout, nonce, now=NOW)


def test_a_host_outside_the_rollout_is_not_found() -> None:
    store = running_store()
    run(store, who(ITOPS, "operator"), rollouts.create_rollout, "R-2", "P-1",
        [{"hosts": ["h3"]}])
    with pytest.raises(NotFoundError, match="Deployment 'R-2/h1'"):
        attest_deployment(store, "h1", "R-2", NONCE, now=NOW)


def test_channel_roots_and_their_fingerprint() -> None:
    answer = attest_channel_roots(TRUST, NONCE, now=NOW)
    assert sorted(answer["roots"]) == sorted(ORGS)
    assert answer["fingerprint"] == roots_fingerprint(TRUST)
    with pytest.raises(ValidationError, match="nonce"):
        attest_channel_roots(TRUST, "", now=NOW)


def test_the_contract_functions_answer_and_refuse_with_status_codes() -> None:
    from tests.unit.lifecycle.lifecycle_support import init_args

    async def body(ledger: Ledger) -> list[Any]:
        await ledger.ok(who(SECOPS, "admin"), "InitLedger", *init_args())
        auditor = who(SECOPS, "auditor")
        return [
            await ledger.call(auditor, "AttestDeployment", "h1", "R-404", NONCE),
            await ledger.call(auditor, "AttestDeployment", "h1", "R-1", "x"),
            await ledger.ok(auditor, "AttestChannelRoots", NONCE, now=NOW + 5),
            await ledger.call(auditor, "AttestChannelRoots", "x"),
        ]

    missing, bad_nonce, roots, bad_roots = scenario(body)
    assert missing.status == 404 and "Host 'h1' does not exist" in missing.message
    assert bad_nonce.status == 400 and "'nonce'" in bad_nonce.message
    assert roots["attested_at"] == NOW + 5 and roots["fingerprint"] == roots_fingerprint(TRUST)
    assert bad_roots.status == 400
