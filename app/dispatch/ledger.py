"""The dispatcher's one door to the ledger: reads on its organization's peer, and submits that
wait until **every** endorsing organization's peer has committed the transaction.

Why every peer (the ``ProposalResponsePayloads do not match`` defect): a transaction is
endorsed by several organizations' peers, each simulating it on its own copy of the state.
When a batch of host reports is submitted right after the previous one committed on the
gateway's peer but not yet on the second endorser, that peer reads older host records, and
the two endorsements differ; the gateway refuses the transaction with ``ABORTED`` ("do not
match"). :meth:`FabricLedger.submit` therefore waits, after each commit, for the commit
status on each other endorsing peer (a CommitStatus call on a gateway to that peer, which
answers once that peer has committed the block), so the next transaction's endorsers all
read the same state. Transactions other clients submit can still race; a mismatch, an MVCC
or phantom read conflict is therefore retried (bounded, with back-off): nothing was written,
and host reports are idempotent by host sequence, so a retry can never record twice.

Only the chaincode's own refusal (``chaincode response NNN`` in the gateway's details) is a
*refusal* (:attr:`SubmitFailed.refused`: the dispatcher sets a refused report batch aside);
an endorsing peer that is down or restarting (``UNAVAILABLE`` "failed to find any endorsing
peers for org(s)", ``ABORTED`` without a chaincode response) is retried, then raised as not
refused, so the reports stay in the inbox for the next step. Before, such a batch was taken
for refused and set aside: its reports never reached the ledger.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from patchledger.app.errors import UserError
from patchledger.app.fabric import CommitError, Contract, EndorseError, Gateway, GatewayError

__all__ = ["FabricLedger", "LedgerPort", "SubmitFailed", "is_mismatch"]

log = logging.getLogger(__name__)

#: Commit codes after which the same transaction may be endorsed and submitted again.
RETRYABLE_CODES = frozenset({"MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT"})
#: Endorse failures that say a peer could not be reached or did not answer in time: no
#: chaincode ran (or its answer never came), so nothing was refused; the caller retries.
UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                         grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED})
PAGE = 200


class SubmitFailed(UserError):
    """A transaction the dispatcher submitted was refused or committed invalid; the message
    names the function, its first argument, and the chaincode's or the peer's reason."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


#: How the gateway passes on a chaincode's refusal (the peer's endorser: status and message).
_CHAINCODE_REFUSAL = re.compile(r"chaincode response \d{3}")
#: Gateway codes of a request that can never succeed as sent (not a passing condition).
_PERMANENT_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT,
                              grpc.StatusCode.PERMISSION_DENIED})


def _texts(exc: GatewayError) -> list[str]:
    return [exc.message, *(d.message for d in exc.details)]


def is_refusal(exc: GatewayError) -> bool:
    """Whether the endorsement failed because the chaincode refused the transaction (its
    ``chaincode response 4xx/5xx`` is in the details), or the gateway refused a request that
    cannot succeed as sent; trying again cannot change such an answer."""
    return exc.code in _PERMANENT_CODES or any(_CHAINCODE_REFUSAL.search(t) for t in _texts(exc))


def is_mismatch(exc: GatewayError) -> bool:
    """Whether an endorsement failed for a passing reason: the endorsers' answers differ (a
    peer behind), or an endorsing peer could not be reached or planned (``UNAVAILABLE``:
    "failed to find any endorsing peers for org(s)", a peer down or restarting; ``ABORTED``
    without a chaincode refusal; a deadline). Never a chaincode refusal."""
    if is_refusal(exc):
        return False
    return exc.code in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.FAILED_PRECONDITION) \
        or any("do not match" in t for t in _texts(exc))


class LedgerPort(Protocol):
    """What the dispatcher needs of the ledger (the Fabric adapter, or a test double)."""

    def evaluate(self, function: str, *args: Any) -> Any:
        """The JSON answer of a query."""

    def submit(self, function: str, *args: Any, endorsing: Sequence[str] = ()) -> Any:
        """Submit, wait for the commit everywhere, return the JSON result."""

    def records(self, record_type: str, status: str = "") -> Iterator[dict[str, Any]]:
        """Every record of a type (optionally in one status), in key order."""


def _arg(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class FabricLedger:
    """:class:`LedgerPort` over the Fabric Gateway client.

    Attributes:
        own: a gateway to the organization's own peer (evaluates, submits).
        others: gateways (same identity) to the other endorsing organizations' peers, on which
            each submit waits for the commit.
        channel: the channel name.
        chaincode: the chaincode name.
        attempts: how many times a retryable failure is tried in all.
        commit_timeout: seconds to wait for a commit on each peer.
        sleep: the back-off's sleep (tests pass a fake).
    """

    own: Gateway
    others: Sequence[Gateway]
    channel: str = "patchledger"
    chaincode: str = "patchledger"
    attempts: int = 8
    commit_timeout: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    @property
    def contract(self) -> Contract:
        """The chaincode on the own peer."""
        return self.own.get_network(self.channel).get_contract(self.chaincode)

    def evaluate(self, function: str, *args: Any) -> Any:
        """Evaluate on the own peer; the JSON answer (``None`` for an empty one).

        Raises:
            GatewayError: the query failed (404 for an absent record).
        """
        raw = self.contract.evaluate(function, [_arg(a) for a in args])
        return json.loads(raw) if raw else None

    def records(self, record_type: str, status: str = "") -> Iterator[dict[str, Any]]:
        """Every record of ``record_type`` (in ``status``), paging ``ListRecords``; entries
        the contract lists as unreadable are logged and skipped.

        Raises:
            GatewayError: a page could not be read.
        """
        bookmark = ""
        while True:
            page = self.evaluate("ListRecords", record_type, status, str(PAGE), bookmark)
            for record in page["records"]:
                if "unreadable" in record:  # a stored value a later rule refuses: not ours
                    log.warning("%s %s is unreadable, skipped: %s", record_type,
                                record.get("record_id"), record["unreadable"])
                    continue
                yield record
            bookmark = page["bookmark"]
            if not bookmark:
                return

    def submit(self, function: str, *args: Any, endorsing: Sequence[str] = ()) -> Any:
        """Endorse, submit, wait until the own peer and every other peer committed it.

        A mismatch of endorsements and MVCC/phantom read conflicts are retried with back-off
        (module docstring), up to :attr:`attempts` tries in all.

        Raises:
            SubmitFailed: the chaincode refused it (``refused``), it committed invalid for
                another reason, or the retries ran out.
            GatewayError: the peer could not be reached (endorse: ``UNAVAILABLE``,
                ``DEADLINE_EXCEEDED``, ...; submit or commit status).
        """
        arguments = [_arg(a) for a in args]
        what = f"{function}({arguments[0][:60] if arguments else ''})"
        delay = 0.2
        for attempt in range(1, self.attempts + 1):
            try:
                submitted = self.contract.submit_async(
                    function, arguments, endorse_timeout=self.commit_timeout,
                    endorsing_organizations=list(endorsing))
            except EndorseError as exc:
                if exc.code in UNREACHABLE:
                    # the own peer is down, or it found no peer of an endorsing organization:
                    # a GatewayError (the caller keeps what it submitted and retries), never
                    # a refusal (the dispatcher sets refused report batches aside for good)
                    raise
                if is_mismatch(exc) and attempt < self.attempts:
                    log.info("%s: endorsement failed for a passing reason (%s: %s); retry %d "
                             "in %.1fs", what, exc.code.name, exc.message, attempt, delay)
                    self.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                reasons = "; ".join(d.message for d in exc.details) or exc.message
                if not is_refusal(exc):  # a peer still down: not the ledger's answer
                    raise SubmitFailed(f"{what}: not endorsed ({exc.code.name}): {reasons}",
                                       refused=False) from exc
                raise SubmitFailed(f"{what} refused: {reasons}", refused=True) from exc
            status = submitted.get_status(self.commit_timeout)
            if not status.successful:
                if status.code_name in RETRYABLE_CODES and attempt < self.attempts:
                    log.info("%s committed %s; retry %d", what, status.code_name, attempt)
                    self.sleep(delay)
                    continue
                raise SubmitFailed(f"{what} committed invalid: {status.code_name} in block "
                                   f"{status.block_number}") from CommitError(
                    status.transaction_id, status.code, status.code_name, status.block_number)
            for other in self.others:
                other.new_commit(submitted.bytes).get_status(self.commit_timeout)
            return json.loads(submitted.result) if submitted.result else None
        raise SubmitFailed(f"{what}: no valid commit after {self.attempts} attempts")
