"""FabricLedger's submit: it waits for the commit on every other endorsing peer, retries a
mismatch of endorsements (the ABORTED 'ProposalResponsePayloads do not match' defect) and MVCC
conflicts, and refuses what the chaincode refuses, naming it. The gateways are stand-ins that
answer as the Fabric gateway does (the timing of a real peer falling behind cannot be forced;
the real network runs the same code in tests/integration/test_dispatch.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from patchledger.app.dispatch.ledger import FabricLedger, SubmitFailed, is_mismatch, is_refusal
from patchledger.app.fabric import EndorseError, ErrorDetail, Status

MISMATCH = EndorseError("failed to collect enough transaction endorsements",
                        code=grpc.StatusCode.ABORTED, details=[ErrorDetail(
                            "peer0.secops:7051", "SecOpsMSP",
                            "ProposalResponsePayloads do not match")])
#: A chaincode's refusal as the gateway passes it on (internal/pkg/gateway: ABORTED, the
#: endorser's "chaincode response <status>, <message>" in the details).
REFUSED = EndorseError("failed to endorse transaction, see attached details for more info",
                       code=grpc.StatusCode.ABORTED,
                       details=[ErrorDetail("peer0.itops:9051", "ITOpsMSP",
                                            "chaincode response 409, PreconditionError: wave 0 "
                                            "not settled")])
#: An endorsing organization's peer down: no plan can be made for the named organizations.
PEER_DOWN = EndorseError("failed to find any endorsing peers for org(s): SecOpsMSP",
                         code=grpc.StatusCode.UNAVAILABLE)


@dataclass
class Submitted:
    code: int
    result: bytes = b'{"ok": true}'
    bytes: bytes = b"commit-request"

    def get_status(self, timeout: float | None = None) -> Status:
        return Status(self.code, "tx1", 7)


@dataclass
class Gateway:
    """Plays the own peer (``script``: what each submit does) or another peer (``waited``)."""

    script: list[Any] = field(default_factory=list)
    waited: list[bytes] = field(default_factory=list)

    def get_network(self, channel: str) -> Gateway:
        return self

    def get_contract(self, chaincode: str) -> Gateway:
        return self

    def submit_async(self, function: str, arguments: list[str], **_: Any) -> Submitted:
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, Submitted)
        return step

    def new_commit(self, data: bytes) -> Submitted:
        self.waited.append(data)
        return Submitted(0)


def ledger(own: Gateway, *others: Gateway) -> tuple[FabricLedger, list[float]]:
    sleeps: list[float] = []
    return FabricLedger(own, list(others), sleep=sleeps.append, attempts=4), sleeps  # type: ignore[arg-type]


def test_a_submit_waits_for_the_commit_on_every_other_peer() -> None:
    secops, compliance = Gateway(), Gateway()
    fabric, _ = ledger(Gateway([Submitted(0)]), secops, compliance)
    assert fabric.submit("ReportDeployments", [{"report": {}}]) == {"ok": True}
    assert secops.waited == compliance.waited == [b"commit-request"]


def test_a_mismatch_and_an_mvcc_conflict_are_retried_with_back_off() -> None:
    other = Gateway()
    fabric, sleeps = ledger(Gateway([MISMATCH, Submitted(11), Submitted(0)]), other)
    assert is_mismatch(MISMATCH) and not is_mismatch(REFUSED)
    assert fabric.submit("ReportDeployments", []) == {"ok": True}
    assert len(sleeps) == 2 and sleeps[0] > 0
    assert other.waited == [b"commit-request"]  # only the valid commit is waited for


def test_an_aborted_endorsement_with_a_chaincode_refusal_is_a_refusal() -> None:
    # the gateway reports a failed multi-peer endorsement as ABORTED; when the peers answered
    # with a chaincode 4xx (the state machine said no), retrying changes nothing
    refused = EndorseError("failed to endorse transaction", code=grpc.StatusCode.ABORTED,
                           details=[ErrorDetail("peer0.itops:9051", "ITOpsMSP",
                                                "chaincode response 409, TransitionError: "
                                                "Rollout 'R-1' is ROLLED_BACK")])
    assert not is_mismatch(refused)
    assert is_mismatch(EndorseError("failed to collect endorsements",
                                    code=grpc.StatusCode.ABORTED))


def test_retries_are_bounded() -> None:
    fabric, sleeps = ledger(Gateway([MISMATCH] * 4))
    with pytest.raises(SubmitFailed, match=r"ReportDeployments.*do not match") as info:
        fabric.submit("ReportDeployments", [])
    assert not info.value.refused and len(sleeps) == 3


def test_a_chaincode_refusal_is_not_retried_and_names_the_reason() -> None:
    fabric, sleeps = ledger(Gateway([REFUSED]))
    with pytest.raises(SubmitFailed, match="wave 0 not settled") as info:
        fabric.submit("DecideRollout", "R-1", "advance", "why")
    assert info.value.refused and sleeps == []
    assert "DecideRollout(R-1)" in str(info.value)


@pytest.mark.parametrize("code,message", [
    (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: UNKNOWN: "
     "ipv4:127.0.0.1:7051: Failed to connect to remote host: Connection refused"),
    (grpc.StatusCode.UNAVAILABLE, "failed to find any endorsing peers for org(s): SecOpsMSP"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
])
def test_an_unreachable_peer_is_a_gateway_error_not_a_refusal(code: grpc.StatusCode,
                                                              message: str) -> None:
    # found by tests/reliability/test_network_faults.py: with the own peer restarting, a
    # report batch came back as a "refusal" and the dispatcher set it aside for good (an
    # acknowledged report never reached the ledger); it must stay in the inbox for a retry
    down = EndorseError(message, code=code)
    fabric, sleeps = ledger(Gateway([down]))
    with pytest.raises(EndorseError) as info:
        fabric.submit("ReportDeployments", [{"report": {}}])
    assert info.value is down and not isinstance(info.value, SubmitFailed) and sleeps == []


def test_an_endorsing_peer_down_is_never_taken_for_a_refusal() -> None:
    # regression: UNAVAILABLE was not a mismatch, so it counted as the chaincode refusing the
    # batch; the dispatcher set such report batches aside and their reports never reached
    # the ledger (found killing SecOps' peer mid-rollout, tests/reliability). It is raised as
    # the gateway's error for the caller, who keeps the batch and tries again later.
    assert not is_mismatch(REFUSED) and is_mismatch(PEER_DOWN) and not is_refusal(PEER_DOWN)
    fabric, sleeps = ledger(Gateway([PEER_DOWN, Submitted(0)]))
    with pytest.raises(EndorseError) as info:
        fabric.submit("ReportDeployments", [])
    assert info.value is PEER_DOWN and not isinstance(info.value, SubmitFailed) and sleeps == []


def test_an_invalid_commit_that_is_not_a_conflict_fails() -> None:
    fabric, _ = ledger(Gateway([Submitted(10)]))  # ENDORSEMENT_POLICY_FAILURE
    with pytest.raises(SubmitFailed, match="ENDORSEMENT_POLICY_FAILURE in block 7"):
        fabric.submit("EnrollHost", {"host_id": "h1"})
