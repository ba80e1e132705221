"""The dispatcher's memory over a long run (issue 17, "Load"): one organization's real
``Dispatcher`` (app/dispatch) drives rollouts one after another over its enrolled hosts, and
its process's resident memory is sampled over time.

The dispatcher runs in a process of its own, stepping over the real lifecycle core in memory
(tests/unit/dispatch/core_ledger.py: the contract's operations on a MemoryStore, so every
decision and report batch meets the ledger's own rules). The same process plays the hosts as
the org app's relay does: each step every host's poll is noted on the board (``seen.json``),
and a host holding an ``apply`` order signs its VERIFIED report and stores the run in the
inbox (one file per agent run), which the dispatcher batches into ``ReportDeployments``.
Each rollout is planned over every enrolled host (a canary, then waves of 30 % and the rest),
its waves released within the budget and concurrency, its reports recorded, and it completes;
then the next one is planned.

The ledger is not the dispatcher's memory (on Fabric it is on the peers), so once the
dispatcher finished a rollout its Rollout and Deployment records are removed from the
in-memory store, and the harness's list of submitted calls is emptied: what grows with the
run is then the dispatcher's own state (and the hosts' fixed keys and counters).

Every ``--sample`` seconds the parent reads the process's ``VmRSS`` (``rss_kib`` of
bench/bench_agent_poll.py) and how many rollouts completed. The table gives RSS at start, end
and its maximum; after the warm-up (the first ``--warmup`` rollouts) the mean RSS of the last
third of the samples minus that of the first third (MiB), the trend (``rss_trend`` of
bench_agent_poll.py: last third over the middle third), and the slope of a least-squares line
of RSS over completed rollouts (KiB per rollout).

    .venv/bin/python bench/bench_dispatcher_memory.py [--hosts 1000] [--rollouts 40]
        [--warmup 3] [--sample 0.5] [--smoke]

``--smoke``: 100 hosts, 12 rollouts (shows that the bench still works, ~10 s).
Exit status 0 when every rollout completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))
from bench.bench_agent_poll import rss_kib, rss_trend


@dataclass
class Result:
    """What one run measured: per sample, seconds since start, rollouts completed, RSS."""

    hosts: int
    rollouts: int
    warmup: int
    seconds: float = 0.0
    completed: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)

    @property
    def rss(self) -> list[int]:
        return [kib for _, _, kib in self.samples]

    @property
    def settled(self) -> list[tuple[float, int, int]]:
        """The samples after the warm-up (once ``warmup`` rollouts completed)."""
        return [s for s in self.samples if s[1] >= self.warmup]

    @property
    def growth_mib(self) -> float:
        """After the warm-up: mean RSS of the last third of the samples minus the mean of
        the first third, MiB (``nan`` with fewer than three samples)."""
        kib = [k for _, _, k in self.settled]
        third = len(kib) // 3
        if third < 1:
            return float("nan")
        return (statistics.mean(kib[-third:]) - statistics.mean(kib[:third])) / 1024

    @property
    def trend(self) -> float:
        return rss_trend([k for _, _, k in self.settled])

    @property
    def slope_kib_per_rollout(self) -> float:
        """Least-squares slope of RSS (KiB) over completed rollouts, after the warm-up."""
        settled = self.settled
        if len({done for _, done, _ in settled}) < 2:
            return float("nan")
        fit = statistics.linear_regression([float(d) for _, d, _ in settled],
                                           [float(k) for _, _, k in settled])
        return fit.slope


def table(r: Result) -> str:
    mib = [k / 1024 for k in r.rss] or [float("nan")]
    lines = ["| hosts | rollouts | completed | seconds | reports | RSS start MiB | end MiB "
             "| max MiB | growth after warm-up MiB | RSS trend | slope KiB/rollout |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| {r.hosts} | {r.rollouts} | {r.completed} | {r.seconds:.0f} | "
             f"{r.summary.get('reports', 0)} | {mib[0]:.1f} | {mib[-1]:.1f} | {max(mib):.1f} | "
             f"{r.growth_mib:+.2f} | {r.trend:.3f} | {r.slope_kib_per_rollout:+.1f} |"]
    lines.append(f"\nwarm-up: {r.warmup} rollout(s); samples: {len(r.samples)} "
                 f"({len(r.settled)} after warm-up); steps: {r.summary.get('steps', 0)}, "
                 f"full reads: {r.summary.get('full_reads', 0)}")
    return "\n".join(lines)


# ------------------------------------------------------------------- the dispatcher process


def simulate(home: Path, hosts: int, rollouts: int, progress: Path) -> dict[str, int]:
    """The dispatcher process: ``rollouts`` rollouts one after another over ``hosts``
    enrolled hosts (module docstring); after each completed rollout ``progress`` holds how
    many completed. Returns the counts of the run.

    Raises:
        RuntimeError: a rollout did not complete within its step budget.
    """
    from patchledger.app.dispatch.board import Board
    from patchledger.app.dispatch.dispatcher import Dispatcher, DispatchSettings
    from patchledger.app.dispatch.planner import Quantity, RolloutRequest, WaveRequest
    from patchledger.chaincode.lifecycle.queries import get_record
    from tests.unit.dispatch.core_ledger import Clock, CoreLedger
    from tests.unit.lifecycle.lifecycle_support import (
        ITOPS,
        approved_store,
        host_identity,
        report,
        who,
    )

    host_ids = tuple(f"h{i:05d}" for i in range(hosts))
    clock = Clock()
    store = approved_store(host_ids)
    ledger = CoreLedger(store, who(ITOPS, "operator"), clock)
    state = home / "dispatch"
    dispatcher = Dispatcher(ledger, state, ITOPS,
                            DispatchSettings(batch_max_latency=0.5, batch_max_reports=200),
                            clock=clock)
    relay = Board(state)  # the app's side of the board
    identities = {h: host_identity(ITOPS, h) for h in host_ids}
    sequence: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    budget = 200  # steps per rollout (a few dozen are needed)
    for number in range(1, rollouts + 1):
        rid = f"R-{number}"
        dispatcher.create_rollout(RolloutRequest(
            rollout_id=rid, patch_id="P-1", canary=Quantity(max(1, hosts // 100)),
            waves=(WaveRequest(percent=30),), disruption_budget=Quantity(25, percent=True),
            max_concurrency=Quantity(25, percent=True), soak_seconds=1,
            wave_timeout_seconds=600))
        done: set[str] = set()
        for _ in range(budget):
            dispatcher.step()
            counts["steps"] += 1
            runs = []
            for h in host_ids:
                relay.mark_seen(h, clock.now)
                order = relay.order_for(h)
                if order is None or order.action != "apply" or h in done:
                    continue
                done.add(h)
                sequence[h] += 1
                runs.append([report(identities[h], sequence[h], "VERIFIED", rollout_id=rid)])
            relay.flush_seen()
            for signed in runs:
                relay.put_reports(signed)
            counts["reports"] += len(runs)
            clock.now += 1
            if rid in dispatcher.checkpoint.finished:
                break
        else:
            status = get_record(store, "Rollout", rid).state
            raise RuntimeError(f"rollout {rid} did not finish in {budget} steps: {status}")
        # the ledger's records of a finished rollout are not the dispatcher's memory
        for key in [k for k in store.data if k.record_type in ("Rollout", "Deployment")
                    and k.parts[:1] == (rid,)]:
            del store.data[key]
            store.owners.pop(key, None)
        ledger.calls.clear()
        counts["completed"] = number
        progress.write_text(str(number))
    counts["full_reads"] = dispatcher.full_reads
    counts["store_keys"] = len(store.data)
    counts["store_bytes"] = sum(len(v) for v in store.data.values())
    counts["checkpoint_released"] = sum(len(v) for v in dispatcher.checkpoint.released.values())
    return dict(counts)


# --------------------------------------------------------------------------- the parent


def run_memory(*, hosts: int, rollouts: int, warmup: int, sample: float = 0.5,
               home: Path | None = None) -> Result:
    """Run the dispatcher process for ``rollouts`` rollouts over ``hosts`` hosts, sampling
    its RSS every ``sample`` seconds; what was measured.

    Raises:
        RuntimeError: the dispatcher process failed (its stderr's tail is in the message).
    """
    with tempfile.TemporaryDirectory(prefix="bench-dmem-") as tmp:
        base = home or Path(tmp)
        progress = base / "progress"
        progress.write_text("0")
        err_path = base / "dispatcher.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        result = Result(hosts, rollouts, warmup)
        with err_path.open("wb") as err:
            child = subprocess.Popen(
                [sys.executable, __file__, "--simulate", str(base), "--hosts", str(hosts),
                 "--rollouts", str(rollouts)], stdout=subprocess.PIPE, stderr=err, env=env)
        began = time.monotonic()
        try:
            while child.poll() is None:
                try:
                    kib = rss_kib(child.pid)
                    done = int(progress.read_text() or result.completed)
                except (OSError, RuntimeError, ValueError):
                    kib, done = 0, result.completed  # exiting, or progress mid-write
                if kib:
                    result.completed = done
                    result.samples.append((time.monotonic() - began, done, kib))
                time.sleep(sample)
            assert child.stdout is not None
            out = child.stdout.read().decode()
            child.stdout.close()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        result.seconds = time.monotonic() - began
        if child.returncode != 0:
            raise RuntimeError(f"the dispatcher process exited {child.returncode}: "
                               f"{err_path.read_text(errors='replace')[-3000:]}")
        result.summary = json.loads(out.strip().splitlines()[-1])
        result.completed = result.summary.get("completed", 0)
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rollouts", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3, help="rollouts before the trend")
    parser.add_argument("--sample", type=float, default=0.5, help="RSS sampling period, s")
    parser.add_argument("--smoke", action="store_true", help="100 hosts, 12 rollouts")
    parser.add_argument("--simulate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.simulate:
        counts = simulate(args.simulate, args.hosts, args.rollouts,
                          args.simulate / "progress")
        print(json.dumps(counts))
        return 0
    if args.smoke:
        args.hosts, args.rollouts, args.warmup, args.sample = 100, 12, 2, 0.2
    result = run_memory(hosts=args.hosts, rollouts=args.rollouts, warmup=args.warmup,
                        sample=args.sample)
    print(table(result))
    return 0 if result.completed == args.rollouts else 1


if __name__ == "__main__":
    sys.exit(main())
