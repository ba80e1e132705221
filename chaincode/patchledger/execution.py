"""Running one lifecycle operation as one chaincode transaction.

:func:`submit` is the whole write path of the contract: build the caller from the transaction
creator (MSP id and certificate, role from its Fabric CA attributes), take the time from the
transaction timestamp (whole seconds since the epoch, UTC), run the operation over a
:class:`~chaincode.lifecycle.ledger.TxLedger` in a worker thread (see
:mod:`chaincode.patchledger.bridge`), send its writes, and set the transaction's single chaincode
event, ``patchledger``, whose payload is the core's
:func:`~chaincode.lifecycle.ledger.event_payload` (no event when nothing changed).

What every transaction of one contract shares is one explicit contract-level value,
:class:`Services` (the organizations' root certificates, the channel's peer organizations
derived from them, and the worker pool). The contract hands it to each function in its context,
a :class:`LedgerContext` made by the contract's ``create_context`` (as fabric-contract-api's
``createContext``); nothing travels through globals or context variables. Records the core
saves with an ``owner_org`` get the key-level policy "owner's peer AND a majority of the
channel's peer organizations" (:func:`chaincode.patchledger.bridge.owner_policy`); with no
channel organizations (no roots), an owned write is refused (fail closed).

Every :class:`~chaincode.lifecycle.errors.LifecycleError` becomes a
:class:`~chaincode.runtime.ContractError` carrying the core's message (which names the record,
its state and the attempted action), prefixed by the error class so clients can tell the kind of
refusal apart, with a status by kind (:func:`refusal`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from patchledger.chaincode.lifecycle import (
    AlreadyExistsError,
    AuthorizationError,
    Caller,
    Change,
    DuplicateVoteError,
    LifecycleError,
    NotFoundError,
    OrgTrust,
    PreconditionError,
    ReplayError,
    StateStore,
    TransitionError,
    TxLedger,
    ValidationError,
    caller_from_certificate,
    event_payload,
)
from patchledger.chaincode.patchledger.bridge import StubStore, new_pool, run_in_worker
from patchledger.chaincode.runtime import ChaincodeStub, Context, ContractError, IdentityError

__all__ = [
    "EVENT_NAME",
    "LedgerContext",
    "Outcome",
    "Services",
    "caller_of",
    "read",
    "refusal",
    "submit",
    "tx_time",
]

T = TypeVar("T")

#: Name of the chaincode event every state-changing transaction sets.
EVENT_NAME = "patchledger"



@dataclass(frozen=True)
class Services:
    """What every transaction of one contract shares (the contract-level context).

    Attributes:
        trust: the channel organizations' root certificates (host certificates are checked
            against them).
        pool: the worker pool the core's operations run in.
    """

    trust: OrgTrust = field(default_factory=OrgTrust)
    pool: Executor = field(default_factory=new_pool)

    @property
    def channel_orgs(self) -> tuple[str, ...]:
        """The channel's peer organizations: the MSP ids of :attr:`trust`, sorted."""
        return tuple(sorted(set(self.trust.organizations)))


class LedgerContext(Context):
    """A transaction's context: the stub and caller, plus the contract's :class:`Services`."""

    def __init__(self, stub: ChaincodeStub, services: Services) -> None:
        super().__init__(stub)
        self.services = services

_STATUS: tuple[tuple[type[LifecycleError], int], ...] = (
    (NotFoundError, 404),
    (AuthorizationError, 403),
    (AlreadyExistsError, 409),
    (DuplicateVoteError, 409),
    (TransitionError, 409),
    (PreconditionError, 409),
    (ReplayError, 409),
)


def refusal(exc: LifecycleError) -> ContractError:
    """The contract error for a core refusal: ``"<ErrorClass>: <core message>"``.

    Status: 404 not found, 403 authorization, 409 conflicts with the ledger's state
    (exists, duplicate vote, transition, precondition, replay), 400 otherwise (validation,
    signature, expiry).
    """
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
    return ContractError(f"{type(exc).__name__}: {exc}", status=status)


def tx_time(stub: ChaincodeStub) -> int:
    """The transaction timestamp in whole seconds since the epoch (UTC).

    Raises:
        ProtocolError: the proposal carried no timestamp.
    """
    return int(stub.get_tx_timestamp().timestamp())


def caller_of(ctx: Context) -> Caller:
    """The lifecycle caller of the transaction creator.

    Raises:
        ContractError: the certificate carries no known ``role`` (403), or the creator is not
            a serialized identity or its certificate cannot be read (400, ``ValidationError:
            invalid field 'creator': ...``).
    """
    try:
        identity = ctx.client_identity
    except IdentityError as exc:
        raise refusal(ValidationError("creator", str(exc))) from exc
    try:
        return caller_from_certificate(identity.msp_id, identity.id_bytes)
    except LifecycleError as exc:
        raise refusal(exc) from exc


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What an operation returned and the changes the transaction made."""

    result: T
    changes: list[Change]

    def changes_json(self) -> list[dict[str, str]]:
        """The changes as JSON objects (the event's list)."""
        return [c.to_dict() for c in self.changes]


async def submit(ctx: LedgerContext, operation: Callable[[TxLedger], T]) -> Outcome[T]:
    """Run ``operation`` as this transaction (see the module docstring).

    Raises:
        ContractError: the core refused (nothing is written), the creator has no role, or an
            owned record cannot be given its key-level policy (no channel organizations).
        PeerError, StreamClosedError: the peer failed a state call (an internal failure).
    """
    caller = caller_of(ctx)
    stub = ctx.stub
    now = tx_time(stub)
    services = ctx.services
    store = StubStore(stub, asyncio.get_running_loop(), channel_orgs=services.channel_orgs)

    def work() -> Outcome[T]:
        tx = TxLedger(store, caller, now, stub.tx_id)
        result = operation(tx)
        return Outcome(result, tx.commit())

    try:
        outcome = await run_in_worker(services.pool, work)
    except LifecycleError as exc:
        raise refusal(exc) from exc
    await store.flush()
    if outcome.changes:
        stub.set_event(EVENT_NAME, event_payload(outcome.changes))
    return outcome


async def read(ctx: LedgerContext, query: Callable[[StateStore], T]) -> T:
    """Run a read-only core query over the stub in a worker thread.

    Raises:
        ContractError: the core refused (unknown record type, record not found...).
    """
    store = StubStore(ctx.stub, asyncio.get_running_loop())
    try:
        return await run_in_worker(ctx.services.pool, lambda: query(store))
    except LifecycleError as exc:
        raise refusal(exc) from exc
