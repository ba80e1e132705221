"""``patchledger app serve`` as a process: waitress answers on 127.0.0.1 (ports 25800-25899),
logs one JSON object per request, serves /metrics and the OpenAPI document, and stops on
SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    for port in range(25899, 25799, -1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 25800-25899")


def _get(url: str) -> tuple[int, bytes]:
    # one retry on a reset: seen once under heavy machine load (a full parallel test run of
    # several engineers), never in isolation; a second reset fails the test
    for attempt in (1, 2):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read()
        except ConnectionResetError:
            if attempt == 2:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def test_serve_answers_logs_json_and_stops(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PATCHLEDGER_APP_HOME": str(tmp_path)}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("patchledger")), "app", "serve", "--org", "itops",
         "--no-network", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/api/v1/health")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"app serve did not answer: {process.communicate()[1]}")
                time.sleep(0.2)
        assert status == 200
        assert json.loads(body)["result"] == {"organization": "itops", "status": "ok"}
        assert json.loads(_get(f"http://127.0.0.1:{port}/api/v1/openapi.json")[1])["openapi"]
        metrics = _get(f"http://127.0.0.1:{port}/metrics")[1].decode()
        assert 'patchledger_http_requests_total{endpoint="/api/v1/health",method="GET",' \
               'status="200"} 1.0' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    served = [line for line in lines if line["message"] == "request"]
    assert served[0]["path"] == "/api/v1/health" and served[0]["status"] == 200
    assert served[0]["org"] == "itops" and served[0]["level"] == "INFO"
    assert any(line["message"] == "serving" and line["port"] == port for line in lines)
