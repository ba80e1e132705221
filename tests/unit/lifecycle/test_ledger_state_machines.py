"""The ledger view enforces every record type's state machine, whatever the operation writes.

A hostile "operation" (any code holding a :class:`TxLedger`) saves versions of a record of
each type in states drawn at random, with or without reading the record first, several per
transaction, committing or dropping transactions. Against a model that knows only the
machine's table, every save the table allows goes through and lists the right change; every
other save raises a TransitionError naming the record, its current state and the attempted
one, and buffers nothing. So no sequence of operations can write an illegal transition for
any record type: the check does not depend on what the operation claims or checks itself.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchledger.chaincode.lifecycle import MemoryStore, TransitionError, TxLedger
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.policy_change import PolicyChange
from patchledger.chaincode.lifecycle.record import Record
from patchledger.chaincode.lifecycle.revocation import Revocation
from patchledger.chaincode.lifecycle.risk_acceptance import RiskAcceptance
from patchledger.chaincode.lifecycle.rollout import Rollout, Wave
from patchledger.chaincode.lifecycle.vulnerability import Vulnerability
from tests.unit.lifecycle.lifecycle_support import (
    NOW,
    SECOPS,
    patch_data,
    policy_data,
    vuln_data,
    who,
)

SAMPLES: dict[str, Callable[[], Record]] = {
    "Vulnerability": lambda: Vulnerability.from_dict({**vuln_data(), "status": "OPEN"}),
    "Patch": lambda: Patch.from_dict(
        {**patch_data(), "severity": "critical", "proposed_by": SECOPS}
    ),
    "Host": lambda: Host(host_id="h1", owner_msp=SECOPS, cert_pem="pem"),
    "Rollout": lambda: Rollout(
        rollout_id="R-1",
        patch_id="P-1",
        owner_msp=SECOPS,
        waves=(Wave(("h1",)),),
        failure_threshold_pct=10,
        soak_seconds=0,
    ),
    "Deployment": lambda: Deployment(
        rollout_id="R-1", host_id="h1", patch_id="P-1", owner_msp=SECOPS, wave=0
    ),
    "PolicyChange": lambda: PolicyChange(
        proposal_id="C-1",
        policy_id="default",
        base_version=1,
        proposed={**policy_data(), "policy_id": "default", "version": 1},
        proposed_by=SECOPS,
    ),
    "Revocation": lambda: Revocation(patch_id="P-1", reason="bad build", proposed_by=SECOPS),
    "RiskAcceptance": lambda: RiskAcceptance(
        exception_id="E-1",
        vuln_id="CVE-2024-3094",
        justification="compensating control",
        expires_at=NOW + 10,
        proposed_by=SECOPS,
    ),
}
CALLER = who(SECOPS, "admin").caller


@st.composite
def walks(draw: st.DrawFn) -> tuple[str, list[list[tuple[str, bool]]], list[bool]]:
    """A record type, transactions of (attempted state, read first?) saves, and per
    transaction whether it commits."""
    record_type = draw(st.sampled_from(sorted(SAMPLES)))
    states = sorted(SAMPLES[record_type]().MACHINE.states)  # type: ignore[union-attr]
    save = st.tuples(st.sampled_from(states), st.booleans())
    txs = draw(st.lists(st.lists(save, min_size=1, max_size=4), min_size=1, max_size=8))
    commits = draw(st.lists(st.booleans(), min_size=len(txs), max_size=len(txs)))
    return record_type, txs, commits


@settings(max_examples=300, deadline=None)
@given(walks())
def test_no_save_sequence_writes_an_illegal_transition(
    walk: tuple[str, list[list[tuple[str, bool]]], list[bool]],
) -> None:
    record_type, txs, commits = walk
    sample = SAMPLES[record_type]()
    machine = sample.MACHINE
    assert machine is not None
    store = MemoryStore()
    committed: str | None = None  # the model: the state in the store, None when absent
    for saves, commit in zip(txs, commits, strict=True):
        tx = TxLedger(store, CALLER, NOW)
        state = committed
        for attempted, read_first in saves:
            if read_first:
                tx.find(type(sample), *sample.key.parts)
            legal = (
                attempted == machine.initial or machine.allows(machine.initial, attempted)
                if state is None
                else machine.allows(state, attempted)
            )
            writes_before = dict(tx.writes)
            changes_before = len(tx.changes)
            try:
                tx.save(sample.evolve(status=attempted))
            except TransitionError as exc:
                assert not legal, f"{state} -> {attempted} is in the table but was refused"
                assert (exc.record_type, exc.record_id) == (record_type, str(sample.key))
                assert exc.current == (machine.initial if state is None else state)
                assert exc.attempted == attempted
                assert tx.writes == writes_before and len(tx.changes) == changes_before
                continue
            assert legal, f"{state} -> {attempted} is not in the table but was written"
            change = tx.changes[-1]
            assert (change.from_state, change.to_state) == (state or "", attempted)
            state = attempted
        if commit:
            tx.commit()
            committed = state
        stored = store.get(sample.key)
        assert (None if stored is None else type(sample).from_json(stored).state) == committed


def test_the_ledger_ignores_what_the_operation_claims_about_the_previous_state() -> None:
    """An operation that builds a fresh record over a stored one (as if creating it) cannot
    move it out of a terminal state: the view reads the stored state itself."""
    store = MemoryStore()
    host = Host(host_id="h1", owner_msp=SECOPS, cert_pem="pem")
    tx = TxLedger(store, CALLER, NOW)
    tx.save(host)
    tx.save(host.evolve(status="DECOMMISSIONED"))
    tx.commit()
    with pytest.raises(
        TransitionError, match="Host 'h1' is DECOMMISSIONED: cannot move to ENROLLED"
    ):
        TxLedger(store, CALLER, NOW).save(Host(host_id="h1", owner_msp=SECOPS, cert_pem="x"))


def test_scanned_records_are_checked_from_their_scanned_state() -> None:
    store = MemoryStore()
    tx = TxLedger(store, CALLER, NOW)
    tx.save(SAMPLES["RiskAcceptance"]().evolve(status="EXPIRED"))
    tx.commit()
    tx = TxLedger(store, CALLER, NOW)
    (expired,) = tx.scan(RiskAcceptance, "CVE-2024-3094")
    with pytest.raises(TransitionError, match="is EXPIRED: cannot move to GRANTED"):
        tx.save(expired.evolve(status="GRANTED"))
