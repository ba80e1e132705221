"""The dispatcher's memory stays bounded over rollouts one after another (issue 17, "Load";
bench/bench_dispatcher_memory.py): a real ``Dispatcher`` in its own process over the in-memory
core ledger drives every rollout to COMPLETED, and after the warm-up the mean RSS of the last
third of the samples is at most ``TOLERANCE_MIB`` above that of the first third.

Short form (CI): 300 hosts, 24 rollouts (about 20 s). Long form (``--long``): 1,000 hosts,
150 rollouts (about 10 minutes). The figures are in docs/reliability.md.
"""

from __future__ import annotations

import pytest

from bench.bench_dispatcher_memory import run_memory, table
from tests.reliability.budget import Budget

pytestmark = pytest.mark.reliability

#: Measured (docs/reliability.md): +0.15 MiB with the dispatcher as it is over the short
#: form, +1.00 MiB with the leak the bench found (every finished rollout's released hosts
#: kept, every plan file read each step); 0.5 MiB lies between, clear of both. Long form:
#: 60 rollouts of 1,000 hosts measured +0.84 MiB (a residual slope of about 23 KiB per
#: rollout, not yet attributed); over 150 rollouts that is about 2 MiB, the leak would be
#: about 12 MiB (130 KiB per rollout): 3 MiB.
TOLERANCE_MIB = {False: 0.5, True: 3.0}


def test_the_dispatchers_memory_stays_bounded_over_rollouts_one_after_another(
    budget: Budget,
) -> None:
    if budget.long_form:
        hosts, rollouts, warmup, sample = 1000, 150, 10, 2.0
    else:
        hosts, rollouts, warmup, sample = 300, 24, 4, 0.5
    result = run_memory(hosts=hosts, rollouts=rollouts, warmup=warmup, sample=sample)
    print(table(result))
    assert result.completed == rollouts, table(result)
    assert result.summary["reports"] == hosts * rollouts, table(result)
    assert len(result.settled) >= 9, table(result)  # thirds of at least three samples
    tolerance = TOLERANCE_MIB[budget.long_form]
    assert result.growth_mib <= tolerance, (result.samples, table(result))
