"""Chaincode runtime benchmark over loopback gRPC (run on purpose; the test suite runs only its
``--smoke`` mode).

Starts ``python -m patchledger.chaincode`` serving the smoke contract (``CHAINCODE_CONTRACT`` set
explicitly: the server has no default contract) as its own process on ``--port`` (default 15000,
below Linux's ephemeral port range, apart from the other benches' ports), connects to it
as a simulated peer over a real gRPC stream, and keeps 1, 8, 32, 64 and 256 ``Put`` transactions
in flight. The simulated peer answers PUT_STATE at once, so this measures the runtime itself:
transactions per second, latency (p50, p99) and the chaincode process's CPU per transaction
(from /proc/<pid>/stat). Through-the-peers numbers and the comparison with an official
runtime need the Fabric network; see docs/chaincode-runtime.md.

``--smoke`` runs the smallest scale (one run, 0.3 s at 1 and 8 in flight), in a few seconds.

    .venv/bin/python bench/bench_chaincode.py [--seconds 3] [--levels 1,8,32,64,256] [--runs 3]
        [--port 15000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from patchledger.chaincode.runtime._protos import Msg, chaincode_pb2, chaincode_shim_pb2_grpc
from patchledger.chaincode.runtime.server import MAX_MESSAGE_BYTES

# Run as a file (bench/<name>.py) the repository root is not on sys.path; the test support this
# bench uses lives in tests/support/ (it is not shipped in the wheel).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.support.chaincode_runtime import make_signed_proposal

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    in_flight: int
    tx: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_tx: float

    @property
    def tps(self) -> float:
        return self.tx / self.seconds


#: Default port of the chaincode server: below Linux's ephemeral port range (32768-60999), which
#: a connection in TIME-WAIT can hold, and apart from the other benches' (docs/benchmarks.md).
PORT = 15000
CONTRACT = "patchledger.chaincode.smoke:contract"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class SimulatedPeer:
    """One Connect stream; answers stub requests and completes transactions by txid."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.lock = asyncio.Lock()
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.counter = 0

    async def send(self, message: Any) -> None:
        async with self.lock:
            await self.call.write(message)

    async def handshake(self) -> None:
        register = await self.call.read()
        assert register.type == Msg.REGISTER
        await self.send(Msg(type=Msg.REGISTERED))
        await self.send(Msg(type=Msg.READY))

    async def reader(self) -> None:
        while True:
            message = await self.call.read()
            if message is grpc.aio.EOF:
                return
            if message.type in (Msg.COMPLETED, Msg.ERROR):
                future = self.waiting.pop(message.txid)
                future.set_result(time.perf_counter())
            else:  # PUT_STATE / GET_STATE: answer at once
                await self.send(Msg(type=Msg.RESPONSE, txid=message.txid,
                                    channel_id=message.channel_id))

    async def transact(self, args: list[bytes]) -> float:
        self.counter += 1
        tx_id = f"bench{self.counter:09d}"
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[tx_id] = future
        proposal = make_signed_proposal(channel_id="bench", tx_id=tx_id, args=args, creator=b"")
        start = time.perf_counter()
        await self.send(Msg(
            type=Msg.TRANSACTION, txid=tx_id, channel_id="bench", proposal=proposal,
            payload=chaincode_pb2.ChaincodeInput(args=args).SerializeToString(),
        ))
        return (await future) - start


async def _level(peer: SimulatedPeer, pid: int, in_flight: int, seconds: float) -> Result:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            latencies.append(await peer.transact([b"Put", f"k{w}-{i}".encode(), b"value"]))
            i += 1

    cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(in_flight)))
    elapsed, cpu = time.perf_counter() - t0, _cpu_seconds(pid) - cpu0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return Result(in_flight, len(latencies), elapsed, q[49] * 1e3, q[98] * 1e3,
                  cpu / len(latencies) * 1e3)


async def _bench(port: int, pid: int, levels: list[int], seconds: float) -> list[Result]:
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        call = chaincode_shim_pb2_grpc.ChaincodeStub(channel).Connect()
        peer = SimulatedPeer(call)
        await peer.handshake()
        reader = asyncio.create_task(peer.reader())
        await _level(peer, pid, 8, 0.5)  # warm-up
        results = [await _level(peer, pid, n, seconds) for n in levels]
        await call.done_writing()
        await reader
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--levels", default="1,8,32,64,256")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--port", type=int, default=PORT,
                        help=f"the chaincode server's port on 127.0.0.1 (default {PORT})")
    parser.add_argument("--smoke", action="store_true",
                        help="smallest scale: shows the bench still works")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.levels, args.runs = 0.3, "1,8", 1
    levels = [int(x) for x in args.levels.split(",")]
    runs: list[list[Result]] = []
    for _ in range(args.runs):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINCODE_")}
        env.update(CHAINCODE_ID="bench_1.0:0", CHAINCODE_CONTRACT=CONTRACT,
                   CHAINCODE_SERVER_ADDRESS=f"127.0.0.1:{args.port}")
        proc = subprocess.Popen([sys.executable, "-m", "patchledger.chaincode"], cwd=ROOT, env=env)
        try:
            runs.append(asyncio.run(_bench(args.port, proc.pid, levels, args.seconds)))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"loopback, smoke Put, simulated peer, {args.seconds:g} s per level, "
          f"median of {args.runs} run(s)")
    print(f"{'in flight':>9} {'tx/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cc CPU ms/tx':>13}")
    for i, n in enumerate(levels):
        per = [r[i] for r in runs]
        print(f"{n:>9} {statistics.median(r.tps for r in per):>9.0f} "
              f"{statistics.median(r.p50_ms for r in per):>8.2f} "
              f"{statistics.median(r.p99_ms for r in per):>8.2f} "
              f"{statistics.median(r.cpu_ms_per_tx for r in per):>13.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
