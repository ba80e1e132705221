"""How many examples each fuzzer draws, in the short (CI) and the long form, and the one way
every property of the suite is run with that budget."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T = TypeVar("T")


class Drawn(Generic[T]):
    """A drawn example whose repr stays short (a mutated feed is megabytes; hypothesis prints
    the repr of a failing example)."""

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        text = repr(self.value)
        if len(text) <= 600:
            return text
        return f"{text[:300]} ...[{len(text) - 600} characters]... {text[-300:]}"


@dataclass(frozen=True)
class Budget:
    """``examples``: examples per property; ``derandomize``: a fixed seed (the short form, so
    that CI draws the same examples each run)."""

    examples: int
    derandomize: bool
    long_form: bool

    @classmethod
    def short(cls) -> Budget:
        return cls(examples=40, derandomize=True, long_form=False)

    @classmethod
    def long(cls) -> Budget:
        return cls(examples=3000, derandomize=False, long_form=True)

    def scaled(self, factor: float) -> int:
        """``examples`` times ``factor``, at least one."""
        return max(1, int(self.examples * factor))

    def run(self, strategy: st.SearchStrategy[Any], check: Callable[[Any], None], *,
            factor: float = 1.0) -> None:
        """Run ``check`` on examples drawn from ``strategy``; a failing example fails the test
        with the shrunk example shown."""

        @settings(
            max_examples=self.scaled(factor),
            derandomize=self.derandomize,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.filter_too_much],
        )
        @given(strategy.map(Drawn))
        def prop(drawn: Drawn[Any]) -> None:
            check(drawn.value)

        prop()
