"""Benchmark: projection of ledger transactions into the read model, and a rebuild.

Run on purpose (not part of the test suite)::

    .venv/bin/python bench/bench_readmodel.py [--transactions 20000] [--per-block 50]
        [--batch-blocks 200] [--database-url URL | --postgres] [--smoke]

The ledger is synthesized, not read from a network: the real lifecycle core runs each
transaction over an in-memory world state (``tests/support/readmodel.py``) and each
becomes an endorser-transaction envelope whose write set holds the core's canonical JSON, cut
into hash-chained ``common.Block`` protobufs of ``--per-block`` transactions. What is measured
is what the projector does with blocks from a peer: parse each block, decode the write sets,
insert blocks, transactions and record versions, upsert current records, move the checkpoint,
commit (one database transaction per ``--batch-blocks`` blocks). The network's own delivery is
not included (docs/readmodel.md gives the real-network figures).

Transaction mix (per 20): 8 new vulnerabilities, 3 re-recordings that change a vulnerability
(known exploited), 3 assessments, 2 patch proposals, 3 host enrollments (records with a real
PEM certificate, ~1.2 kB), 1 deployment batch writing 20 deployment records. Goal (issue 12):
>= 1,000 transactions/s; a rebuild of 20,000 transactions in under 60 s. ``--smoke``: 1,000
transactions, a few seconds, on a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, func, select

from patchledger.app.db import open_engine, sqlite_url, upgrade
from patchledger.app.readmodel.projection import clear
from patchledger.app.readmodel.projector import ProjectorSettings, project, rebuild
from patchledger.app.readmodel.tables import record_versions

# Run as a file (bench/<name>.py) the repository root is not on sys.path; the test support this
# bench uses lives in tests/support/ (it is not shipped in the wheel).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.support.readmodel import ChainSource, SimulatedLedger, build_chain, mixed_steps


@contextlib.contextmanager
def database(url: str, postgres: bool, name: str) -> Iterator[tuple[str, str]]:
    """The database a bench runs on, with a label: ``url`` when given; else a throw-away
    PostgreSQL server (tests/integration/postgres_support: ``PATCHLEDGER_TEST_PG_PORT`` or
    ``PATCHLEDGER_TEST_PORT_BASE`` + 800) with database ``name`` when ``postgres``; else a
    SQLite file in a temporary directory. Stopped or removed at the end."""
    if url:
        yield url, "given URL"
        return
    if postgres:
        from tests.integration.postgres_support import postgres_server

        with postgres_server() as server:
            yield server.create_database(name), "PostgreSQL (local, tmp)"
        return
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        yield sqlite_url(Path(tmp) / f"{name}.db"), "SQLite file (WAL, synchronous=FULL)"


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(record_versions)).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument("--per-block", type=int, default=50)
    parser.add_argument("--batch-blocks", type=int, default=200)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--postgres", action="store_true",
                        help="start a throw-away PostgreSQL (tests/integration/postgres_support)")
    parser.add_argument("--smoke", action="store_true", help="1,000 transactions, seconds")
    args = parser.parse_args()
    if args.smoke:
        args.transactions = 1_000

    started = time.perf_counter()
    ledger = SimulatedLedger()
    chain = build_chain(ledger, mixed_steps(ledger, args.transactions), per_block=args.per_block)
    blocks = chain.blocks
    txs = sum(len(b.data.data) for b in blocks) - 1  # without the genesis config transaction
    synth = time.perf_counter() - started
    settings = ProjectorSettings(batch_blocks=args.batch_blocks)
    rows: list[tuple[str, float, int, int]] = []
    with database(args.database_url, args.postgres, "bench_readmodel") as (url, backend):
        engine = open_engine(url)
        upgrade(engine)
        with engine.begin() as conn:
            clear(conn)
        t0 = time.perf_counter()
        for i in range(0, len(blocks), args.batch_blocks):
            project(engine, blocks[i:i + args.batch_blocks], channel=ledger.channel,
                    settings=settings)
        projection = time.perf_counter() - t0
        writes = _count(engine)
        rows.append(("projection (live path, batches)", projection, txs, writes))
        t0 = time.perf_counter()
        rebuild(engine, ChainSource(blocks, ledger.channel), settings)
        rebuilt = time.perf_counter() - t0
        assert _count(engine) == writes
        rows.append(("rebuild from genesis (one DB tx)", rebuilt, txs, writes))
        engine.dispose()

    print(f"read model bench: {txs:,} transactions in {len(blocks):,} blocks "
          f"({args.per_block}/block), {writes:,} record writes; {backend}; "
          f"synthesized in {synth:.1f} s")
    print()
    print(f"| {'step':<34} | {'seconds':>8} | {'tx/s':>8} | {'writes/s':>9} |")
    print(f"|{'-' * 36}|{'-' * 10}:|{'-' * 10}:|{'-' * 11}:|")
    for name, seconds, count, written in rows:
        print(f"| {name:<34} | {seconds:8.2f} | {count / seconds:8,.0f} | "
              f"{written / seconds:9,.0f} |")
    print()
    if args.transactions < 20_000:
        print("smoke/short run: one small batch, warm-up included; the goal (>= 1,000 tx/s, "
              "rebuild of 20,000 txs < 60 s) is judged on the full run")
        return
    goal = rows[0][2] / rows[0][1] >= 1000 and rows[1][1] < 60
    print("goal (>= 1,000 tx/s; rebuild of 20,000 txs < 60 s):", "met" if goal else "NOT met")


if __name__ == "__main__":
    main()
