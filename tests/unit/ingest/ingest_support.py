"""Support of the ingestion tests: a LedgerWriter that runs the real lifecycle core on the
simulated ledger (the contract's rules without a network), the shared feeds, inventories."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine

from patchledger.app.feeds.cli import default_feeds_dir
from patchledger.app.ingest.ledger import Call, Outcome
from patchledger.app.readmodel.projector import project
from patchledger.chaincode.lifecycle.errors import LifecycleError
from patchledger.chaincode.lifecycle.identity import Role
from patchledger.chaincode.lifecycle.ops.hosts import update_inventory_digest
from patchledger.chaincode.lifecycle.ops.vulnerabilities import (
    record_vulnerabilities,
    record_vulnerability,
)
from tests.support.fabric.blocks import ChainBuilder
from tests.support.readmodel import SimulatedLedger

#: The shared feeds folder: ``$PATCHLEDGER_FEEDS_DIR``, else ``<repo>/../shared/feeds``.
FEEDS = default_feeds_dir()
KEV = FEEDS / "kev" / "known_exploited_vulnerabilities.json"
DSA = FEEDS / "debian" / "DSA-list_2023-03-29.txt"
#: cacti below the fix of DSA-5298-1 (CVE-2022-46169 is in CISA KEV), openssl below DSA-5343-1
DPKG = "cacti 1.2.16+ds1-2\nopenssl 1.1.1n-0+deb11u3\nbash 5.1-2+deb11u1\n"


def require_feeds() -> tuple[str, str]:
    if not KEV.is_file() or not DSA.is_file():
        pytest.skip(f"the shared feeds are missing ({KEV}, {DSA}); set PATCHLEDGER_FEEDS_DIR")
    return str(KEV), str(DSA)


class SimulatedWriter:
    """Submits calls to the simulated ledger as the given organization: one block per batch.

    ``crash_after_send`` makes the next batch stop after the transaction ids were recorded
    (a crash between logging and sending); ``lose_outcomes`` reports the next batch FAILED
    although it was committed (a commit-status timeout)."""

    def __init__(self, ledger: SimulatedLedger, msp_id: str = "SecOpsMSP",
                 role: Role | None = None) -> None:
        self.ledger = ledger
        self.msp_id = msp_id
        self.role = role  # instead of the function's own role (a misconfigured identity)
        self.sent: list[Call] = []
        self.crash_after_send = False
        self.lose_outcomes = False

    def submit_batch(self, calls: Sequence[Call],
                     before_send: Callable[[list[tuple[str, Call]]], None]) -> list[Outcome]:
        contexts = [self.ledger.prepare(self.msp_id) for _ in calls]
        before_send([(c.transaction_id, call) for c, call in zip(contexts, calls, strict=True)])
        if self.crash_after_send:
            self.crash_after_send = False
            raise ConnectionError("process killed after logging the batch")
        outcomes = []
        for context, call in zip(contexts, calls, strict=True):
            self.sent.append(call)
            try:
                role, function, operation, arguments = self._operation(call)
                self.ledger.run(self.msp_id, self.role or role, function, operation, arguments,
                                context=context)
            except LifecycleError as exc:
                outcomes.append(Outcome(call, context.transaction_id, "REFUSED", str(exc)))
                continue
            status = "FAILED" if self.lose_outcomes else "COMMITTED"
            outcomes.append(Outcome(call, context.transaction_id, status, "timeout"
                                    if self.lose_outcomes else ""))
        self.lose_outcomes = False
        return outcomes

    def _operation(self, call: Call) -> tuple[Any, ...]:
        if call.function == "RecordVulnerability":
            data = json.loads(call.arguments[0])
            return (Role.FEED, call.function, lambda tx: record_vulnerability(tx, data),
                    call.arguments)
        if call.function == "RecordVulnerabilities":
            batch = json.loads(call.arguments[0])
            return (Role.FEED, call.function, lambda tx: record_vulnerabilities(tx, batch).changes,
                    call.arguments)
        if call.function == "UpdateInventoryDigest":
            host, digest = call.arguments
            return (Role.OPERATOR, call.function,
                    lambda tx: update_inventory_digest(tx, host, digest), call.arguments)
        raise AssertionError(call.function)


class Harness:
    """A simulated ledger, its chain of blocks and a read model fed from them."""

    def __init__(self, engine: Engine, channel: str = "patchledger") -> None:
        self.engine = engine
        self.ledger = SimulatedLedger(channel=channel)
        self.chain = ChainBuilder(channel)
        self.chain.genesis()
        self.ledger.init_ledger()
        self.sync()

    def sync(self) -> None:
        """Cut the queued transactions into a block and project every new block."""
        if self.ledger.pending:
            self.chain.add(*self.ledger.take())
        project(self.engine, self.chain.blocks, channel=self.ledger.channel)

    @property
    def height(self) -> int:
        return len(self.chain.blocks)
