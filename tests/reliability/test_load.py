"""Agents polling one org app over mutual TLS (issue 17, "Load"; bench/bench_agent_poll.py):
every request answered (no error, every nonce echoed), the 99th percentile of the latency
under 1 s, and the app process's memory bounded (no growth from the middle third of the run to
the last).

Short form (CI): 50 agents polling every 5 s (±20 %) for 20 s. Long form (``--long``): 1,000
agents every 30 s for 10 minutes. The figures of longer runs are in docs/reliability.md.
"""

from __future__ import annotations

import os

import pytest

from bench.bench_agent_poll import run_load, table
from tests.reliability.budget import Budget

pytestmark = pytest.mark.reliability

#: Bench and load ports: 30500 and up (clear of the test networks' port plans).
PORT = int(os.environ.get("PATCHLEDGER_LOAD_PORT", "30510"))


def test_agents_polling_get_answers_within_a_second_and_memory_stays_bounded(
    budget: Budget,
) -> None:
    if budget.long_form:
        agents, interval, duration, sample = 1000, 30.0, 600.0, 5.0
    else:
        agents, interval, duration, sample = 50, 5.0, 20.0, 1.0
    result = run_load(agents=agents, interval=interval, duration=duration, port=PORT,
                      sample=sample)
    print(table(result))
    assert not result.errors, table(result)
    # every agent polled, and the holders of an order fetched their desired state and then
    # got it again after the mid-run change
    assert result.kinds["poll 200"] >= agents, table(result)
    assert result.kinds["desired-state 200"] >= 2 * (agents // 10), table(result)
    assert result.percentile(99) < 1.0, table(result)
    assert result.rss_trend < 1.10, (result.rss_kib, table(result))
