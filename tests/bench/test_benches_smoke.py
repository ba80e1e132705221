"""Every bench in bench/ still runs: each is started in its ``--smoke`` mode as a subprocess with
the project's interpreter, and must exit 0 and print its table.

The figures are never checked (they depend on the machine and its load); only that the bench
completes, prints the rows of its table, and removed the network it started. The benches that
start a Fabric network are integration tests; each gets its own port base (offsets from
``PATCHLEDGER_TEST_PORT_BASE``, clear of the test session's network and of each other) and a
state directory under pytest's tmp_path, and the network is reset here too if a bench left it.
The Node comparison sides run too (their npm install takes seconds) when node and npm are on
PATH; otherwise their rows must say that they were skipped and why.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from patchledger.network.config import config_from_env
from patchledger.network.manager import Manager

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
#: The test session's port base when PATCHLEDGER_TEST_PORT_BASE is unset (network.testing).
DEFAULT_TEST_PORT_BASE = 27000
#: A network uses ports B+50 to B+213 (docs/operations.md), so these offsets from the test
#: session's base keep the session's network and the three bench networks apart; the loopback
#: chaincode bench uses one port in the gap of the session's plan.
OFFSETS = {"chaincode": 230, "client": 250, "host_reports": 500, "runtime_peers": 750,
           "rollout": 1000, "api": 1230}
#: The Node comparison sides run (npm install from the registry) when node and npm are on PATH;
#: otherwise their rows must say why they were skipped.
NODE = bool(shutil.which("node") and shutil.which("npm"))


def _port(bench: str) -> int:
    base = int(os.environ.get("PATCHLEDGER_TEST_PORT_BASE", DEFAULT_TEST_PORT_BASE))
    return base + OFFSETS[bench]


def _run(script: str, args: Sequence[str], timeout: float) -> str:
    """Run ``bench/<script> --smoke ARGS``; return its stdout once it exited 0.

    On a timeout the bench gets SIGTERM (it resets its network on the way out), then SIGKILL.
    """
    argv = [sys.executable, str(BENCH / script), "--smoke", *args]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"{script} --smoke did not finish in {timeout:.0f} s; stderr:\n"
                    f"{err[-3000:]}")
    assert proc.returncode == 0, (f"{script} --smoke exited {proc.returncode}; stderr:\n"
                                  f"{err[-3000:]}\nstdout:\n{out[-2000:]}")
    return out


def _rows(out: str, pattern: str) -> list[str]:
    return [line for line in out.splitlines() if re.match(pattern, line)]


@pytest.fixture
def network_state(tmp_path: Path) -> Iterator[Path]:
    """A state directory under tmp_path for a bench's network; after the test, the network in
    it is reset if the bench left one (processes stopped by their pid files)."""
    state = tmp_path / "bench-state"
    try:
        yield state
    finally:
        for candidate in (state, state / "network"):
            if (candidate / "run").is_dir():
                env = {**os.environ, "PATCHLEDGER_STATE_DIR": str(candidate)}
                Manager(config_from_env(env), lambda _line: None).reset()


def test_bench_chaincode_smoke() -> None:
    out = _run("bench_chaincode.py", ["--port", str(_port("chaincode"))], timeout=120)
    assert re.search(r"^\s*in flight\s+tx/s\s+p50 ms\s+p99 ms\s+cc CPU ms/tx$", out, re.M), out
    assert [line.split()[0] for line in _rows(out, r"^\s+\d+\s")] == ["1", "8"], out


def _shared_feeds() -> Path:
    """The shared feeds folder (PATCHLEDGER_FEEDS_DIR, default ../shared/feeds); the test is
    skipped, saying where it looked, when the real KEV catalog is not there."""
    configured = os.environ.get("PATCHLEDGER_FEEDS_DIR")
    feeds = Path(configured) if configured else ROOT.parent / "shared" / "feeds"
    if not (feeds / "kev" / "known_exploited_vulnerabilities.json").is_file():
        pytest.skip(f"real feed files not found in {feeds} (set PATCHLEDGER_FEEDS_DIR)")
    return feeds


def test_bench_agent_poll_smoke() -> None:
    # its own port, from 30500 up: clear of every test network's port plan
    port = int(os.environ.get("PATCHLEDGER_BENCH_POLL_PORT", "30501"))
    out = _run("bench_agent_poll.py", ["--port", str(port)], timeout=180)
    assert re.search(r"^\| agents \| interval s \| seconds \| requests \| req/s \| errors \|",
                     out, re.M), out
    rows = _rows(out, r"^\| 50 \|")
    assert len(rows) == 1 and rows[0].split("|")[6].strip() == "0", out  # no errors


def test_bench_dispatcher_memory_smoke() -> None:
    out = _run("bench_dispatcher_memory.py", [], timeout=120)
    assert re.search(r"^\| hosts \| rollouts \| completed \| seconds \| reports \|", out,
                     re.M), out
    rows = _rows(out, r"^\| 100 \|")
    # every rollout completed, each host reported once per rollout
    assert len(rows) == 1 and [c.strip() for c in rows[0].split("|")[2:4]] == ["12", "12"], out
    assert rows[0].split("|")[5].strip() == "1200", out


def test_bench_feeds_smoke() -> None:
    feeds = _shared_feeds()
    out = _run("bench_feeds.py", ["--feeds", str(feeds)], timeout=180)
    steps = [line[:45].strip() for line in out.splitlines()[1:]]
    assert out.splitlines()[0].split() == ["step", "seconds", "detail"], out
    assert steps == ["import all feeds", "merge", "build match index",
                     "generate inventories (not timed in total)", "match",
                     "TOTAL import + merge + index + match"], out


def test_bench_readmodel_smoke() -> None:
    out = _run("bench_readmodel.py", [], timeout=180)
    assert re.search(r"^\| step\s+\|\s+seconds \|\s+tx/s \|\s+writes/s \|$", out, re.M), out
    steps = [line.split("|")[1].strip() for line in _rows(out, r"^\| [a-z]")]
    assert steps == ["step", "projection (live path, batches)",
                     "rebuild from genesis (one DB tx)"], out


def test_bench_ui_smoke() -> None:
    out = _run("bench_ui.py", ["--hosts", "600", "--vulns", "60"], timeout=300)
    assert re.search(r"^page\s+p50 ms\s+p95 ms\s+max ms\s+cpu p50\s+cpu p95$", out, re.M), out
    pages = [line.split()[0] for line in out.splitlines() if line.startswith(("/ui", "POST"))]
    # every page of bench_ui.PAGES and the report twice (cached, cold)
    assert len(pages) == 23 and "/ui/enrollment-tokens" in pages, out
    assert "load average before" in out and "worst p95" in out, out


def test_bench_api_smoke() -> None:
    out = _run("bench_api.py", ["--port", str(_port("api"))], timeout=240)
    header = r"^\| endpoint \(/api/v1\)\s+\|\s+n \|\s+p50 ms \|\s+p95 ms \|\s+max ms \|\s+bytes \|$"
    assert re.search(header, out, re.M), out
    endpoints = [line.split("|")[1].strip() for line in _rows(out, r"^\| /")]
    for expected in ("/vulnerabilities", "/vulnerabilities/CVE-2026-00010/findings",
                     "/hosts/{host}", "/rollouts/{rollout}/progress", "/exceptions",
                     "/audit/history/Host/{host}", "/audit/transactions/{tx}"):
        assert expected in endpoints, out
    assert all(line.split("|")[2].strip() == "3" for line in _rows(out, r"^\| /")), out


@pytest.mark.integration
def test_bench_client_smoke(network_state: Path) -> None:
    out = _run("bench_client.py", ["--port-base", str(_port("client")),
                                   "--state-dir", str(network_state)], timeout=300)
    assert re.search(r"^client\s+mode\s+in flight\s+calls\s+tx/s", out, re.M), out
    cases = {(m, n) for m in ("submit", "evaluate") for n in ("1", "8")}
    rows = _rows(out, r"^(python|node-default|node-openssl)\s")
    measured = {tuple(line.split()[:3]) for line in rows if "skipped" not in line}
    skipped = {tuple(line.split()[:3]) for line in rows
               if line.endswith("skipped (node/npm not found on PATH)")}
    node = ("node-default", "node-openssl")
    assert measured == {("python", m, n) for m, n in cases} | (
        {(c, m, n) for c in node for m, n in cases} if NODE else set()), out
    assert skipped == (set() if NODE else {(c, m, n) for c in node for m, n in cases}), out
    assert not network_state.exists(), "the bench left its network's state directory"


@pytest.mark.integration
def test_bench_host_reports_smoke(network_state: Path) -> None:
    out = _run("bench_host_reports.py", ["--port-base", str(_port("host_reports")),
                                         "--state-dir", str(network_state)], timeout=300)
    assert "| reports/batch | batches | reports/s |" in out, out
    assert [line.split("|")[1].strip() for line in _rows(out, r"^\| \d+ \|")] == ["1", "10"], out
    # then the CPU per report of each step, by component
    assert "| total CPU ms/report | reports/s on 2 idle cores |" in out, out
    assert [line.split("|")[1].strip() for line in _rows(out, r"^\| \d+ x \d+ \|")] == [
        "1 x 1", "10 x 1"], out
    assert not network_state.exists(), "the bench left its network's state directory"


@pytest.mark.integration
def test_bench_runtime_peers_smoke(network_state: Path) -> None:
    out = _run("bench_runtime_peers.py", ["--port-base", str(_port("runtime_peers")),
                                          "--state-dir", str(network_state)], timeout=300)
    assert "| in flight | runtime | tx/s |" in out, out
    rows = [[cell.strip() for cell in line.split("|")[1:4]] for line in _rows(out, r"^\| \d")]
    assert [row[:2] for row in rows] == [["1", "python (ours)"], ["1", "node (fabric-shim 2.5.8)"],
                                         ["8", "python (ours)"], ["8", "node (fabric-shim 2.5.8)"]]
    node_skipped = [row[2] == "skipped (node/npm not found on PATH)" for row in rows[1::2]]
    assert node_skipped == [not NODE, not NODE], out
    assert not network_state.exists(), "the bench left its network's state directory"


@pytest.mark.integration
def test_bench_rollout_smoke(network_state: Path) -> None:
    _shared_feeds()  # the bench records the newest real KEV entry
    out = _run("bench_rollout.py", ["--port-base", str(_port("rollout")),
                                    "--state-dir", str(network_state)], timeout=420)
    assert "| phase | seconds |" in out, out
    assert re.search(r"^\| 95% of hosts VERIFIED after \| [0-9.]+ \|$", out, re.M), out
    assert not network_state.exists(), "the bench left its network's state directory"
