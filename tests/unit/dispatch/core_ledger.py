"""A :class:`~app.dispatch.ledger.LedgerPort` over the real lifecycle core in memory (the
contract's operations on a MemoryStore, each call one transaction at the fake clock's time),
so the dispatcher's decisions meet the ledger's own rules without a network."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from patchledger.app.dispatch.ledger import SubmitFailed
from patchledger.app.fabric import GatewayError
from patchledger.chaincode.lifecycle.errors import LifecycleError
from patchledger.chaincode.lifecycle.ledger import MemoryStore, TxLedger
from patchledger.chaincode.lifecycle.ops import deployments, governance, rollouts
from patchledger.chaincode.lifecycle.queries import get_record, record_class
from tests.unit.lifecycle.lifecycle_support import Identity


@dataclass
class Clock:
    """A settable clock (seconds)."""

    now: float = 1_760_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class CoreLedger:
    """The ledger as the operator ``caller`` sees it; ``calls`` lists submitted functions."""

    store: MemoryStore
    caller: Identity
    clock: Clock
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def _ops(self) -> dict[str, Callable[..., Any]]:
        return {
            "CreateRollout": lambda tx, r: rollouts.create_rollout(
                tx, r["rollout_id"], r["patch_id"], r["waves"],
                failure_threshold_pct=r.get("failure_threshold_pct"),
                soak_seconds=r.get("soak_seconds")),
            "DecideRollout": rollouts.decide_rollout,
            "HaltRollout": rollouts.halt_rollout,
            "ResumeRollout": rollouts.resume_rollout,
            "ReportDeployments": lambda tx, reports: {
                "results": [r.to_dict() for r in
                            deployments.report_deployments(tx, reports).results]},
            "RevokePatch": governance.revoke_patch,
        }

    def submit(self, function: str, *args: Any, endorsing: Sequence[str] = (),
               caller: Identity | None = None) -> Any:
        self.calls.append((function, args))
        tx = TxLedger(self.store, (caller or self.caller).caller, int(self.clock()), "tx")
        try:
            result = self._ops()[function](tx, *args)
        except LifecycleError as exc:
            raise SubmitFailed(f"{function} refused: {type(exc).__name__}: {exc}",
                               refused=True) from exc
        tx.commit()
        return result if isinstance(result, dict) else {"changes": len(result)}

    def evaluate(self, function: str, *args: Any) -> Any:
        assert function == "GetRecord", function
        record_type, record_id = args
        parts = record_id.split("/", 1) if record_type == "Deployment" else [record_id]
        try:
            return get_record(self.store, record_type, *parts).to_dict()
        except LifecycleError as exc:
            raise GatewayError(str(exc), code=grpc.StatusCode.NOT_FOUND) from exc

    def records(self, record_type: str, status: str = "") -> Iterator[dict[str, Any]]:
        cls = record_class(record_type)
        for _, raw in self.store.scan(record_type, ()):
            record = cls.from_json(raw)
            if not status or record.state == status:
                yield record.to_dict()

    def decisions(self) -> list[tuple[str, str]]:
        """(action, reason) of every DecideRollout submitted."""
        return [(a[1], a[2]) for f, a in self.calls if f == "DecideRollout"]
