"""Lifecycle operations: one pure function per transaction, over a :class:`TxLedger`.

Each operation authorizes the caller (see :mod:`chaincode.lifecycle.authz`), loads what it
needs, enforces the state machines, and saves records through the ledger view. It returns the
list of changes (for the transaction's single event); the caller commits the view's writes.
Every refusal raises a :class:`~chaincode.lifecycle.errors.LifecycleError`.
"""
