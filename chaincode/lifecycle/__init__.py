"""The pure lifecycle core of patchledger: records, state machines, policy, signatures.

No Fabric imports, no I/O, no clock, no randomness. The contract layer builds a
:class:`~chaincode.lifecycle.ledger.TxLedger` per transaction over its stub-backed
:class:`~chaincode.lifecycle.ledger.StateStore` (with the caller and the transaction time),
calls one operation of :mod:`chaincode.lifecycle.ops`, commits the writes, and emits
:func:`~chaincode.lifecycle.ledger.event_payload` of the returned changes as the transaction's
single event. Every business refusal is a :class:`~chaincode.lifecycle.errors.LifecycleError`.

Modules, one concept each:

- records and their state machines: ``vulnerability``, ``patch``, ``approval``, ``policy``,
  ``policy_change``, ``host``, ``rollout``, ``deployment``, ``risk_acceptance``,
  ``revocation`` (rules in each module docstring), on ``record`` and ``statemachine``;
- ``approval_policy`` (quorum evaluation), ``quorum`` (governance votes), ``severity``;
- ``statement`` and ``host_report`` (signed documents), ``signatures`` (ECDSA P-256, low S);
- ``identity`` (callers and Fabric CA attributes), ``authz`` (the role table), ``trust``
  (the organizations' root certificates, for certificates received as data);
- ``ledger`` (the state interface), ``queries``, ``canonical``, ``fields``, ``errors``.
"""

from patchledger.chaincode.lifecycle.errors import (
    AlreadyExistsError,
    AuthorizationError,
    DuplicateVoteError,
    ExpiredError,
    LifecycleError,
    NotFoundError,
    PreconditionError,
    ReplayError,
    SignatureError,
    TransitionError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.identity import Caller, Role, caller_from_certificate
from patchledger.chaincode.lifecycle.ledger import (
    Change,
    MemoryStore,
    StateStore,
    TxLedger,
    event_payload,
)
from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.lifecycle.trust import OrgTrust

__all__ = [
    "AlreadyExistsError",
    "AuthorizationError",
    "Caller",
    "Change",
    "DuplicateVoteError",
    "ExpiredError",
    "Key",
    "LifecycleError",
    "MemoryStore",
    "NotFoundError",
    "OrgTrust",
    "PreconditionError",
    "ReplayError",
    "Role",
    "SignatureError",
    "StateStore",
    "TransitionError",
    "TxLedger",
    "ValidationError",
    "caller_from_certificate",
    "event_payload",
]
