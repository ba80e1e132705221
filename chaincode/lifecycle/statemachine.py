"""A tiny explicit state machine: a table of allowed moves, enforced by the ledger view.

Each record module declares its machine as a :class:`StateMachine` built from a transition
table (the rules in its docstring) and attaches it to its record class as ``MACHINE``.
:meth:`chaincode.lifecycle.ledger.TxLedger.save` checks every write of such a record against
it: a move that is not in the table (a write that keeps the state is a move too, allowed only
where the table lists the self-loop) raises :class:`~chaincode.lifecycle.errors.TransitionError`
naming the record type, the record id, the current state and the attempted state, so no
operation can write an illegal transition. Operations call :meth:`StateMachine.check` (or
:meth:`StateMachine.check_from`, when the action narrows the table) only to refuse early, before
a vote or a gate, with the same error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from patchledger.chaincode.lifecycle.errors import TransitionError, ValidationError


@dataclass(frozen=True)
class StateMachine:
    """The allowed transitions of one record type.

    Attributes:
        record_type: name used in errors.
        initial: the state in which records are created.
        moves: for each state, the states it may move to (a missing state is terminal).
    """

    record_type: str
    initial: str
    moves: Mapping[str, frozenset[str]]

    @property
    def states(self) -> frozenset[str]:
        """Every state named by the table."""
        named = set(self.moves) | {self.initial}
        for targets in self.moves.values():
            named |= targets
        return frozenset(named)

    def is_terminal(self, state: str) -> bool:
        """True when no move leaves ``state``."""
        return not self.moves.get(state)

    def allows(self, current: str, attempted: str) -> bool:
        """True when ``current -> attempted`` is in the table."""
        return attempted in self.moves.get(current, frozenset())

    def check(self, record_id: str, current: str, attempted: str) -> None:
        """Refuse a move that is not in the table.

        Raises:
            TransitionError: ``current -> attempted`` is not allowed.
        """
        if not self.allows(current, attempted):
            raise TransitionError(self.record_type, record_id, current, attempted)

    def check_from(
        self, record_id: str, current: str, attempted: str, *, allowed_from: frozenset[str]
    ) -> None:
        """Refuse ``current -> attempted`` unless it is in the table and the action (which
        narrows the table, e.g. resume moves only PAUSED to RUNNING) starts from
        ``allowed_from``.

        Raises:
            TransitionError: ``current`` is not in ``allowed_from`` or the move is not allowed.
        """
        if current not in allowed_from:
            raise TransitionError(self.record_type, record_id, current, attempted)
        self.check(record_id, current, attempted)

    def check_creation(self, record_id: str, attempted: str) -> None:
        """Refuse creating a record in ``attempted``: records start in :attr:`initial` and may
        take one move of the table in the transaction that creates them (a proposal that
        reaches its quorum at once is created decided).

        Raises:
            TransitionError: neither the initial state nor one move away from it (the error
                names the initial state as the current one).
        """
        if attempted != self.initial:
            self.check(record_id, self.initial, attempted)

    def validate_state(self, field: str, state: str) -> str:
        """Check that ``state`` is one of this machine's states.

        Raises:
            ValidationError: unknown state.
        """
        if state not in self.states:
            raise ValidationError(field, f"must be one of {', '.join(sorted(self.states))}")
        return state


def machine(record_type: str, initial: str, table: Mapping[str, set[str]]) -> StateMachine:
    """Build a :class:`StateMachine` from a plain ``{state: {targets}}`` table."""
    return StateMachine(record_type, initial, {k: frozenset(v) for k, v in table.items()})
