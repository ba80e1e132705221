"""Reading the nodes' health, heights and Raft leadership over their HTTP endpoints.

- ``GET http://<ops>/healthz`` on every orderer, peer and CA: ``{"status": "OK"}`` or 503.
- ``GET http://<ops>/metrics`` (Prometheus text): ``ledger_blockchain_height{channel=...}`` on
  peers and orderers, ``consensus_etcdraft_is_leader{channel=...}`` on orderers.
- ``GET https://<admin>/participation/v1/channels/<channel>`` on orderers (mutual TLS with the
  orderer org admin's certificate): membership, status and height.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

_METRIC = re.compile(r'^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$')


def healthz(host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
    """(healthy, detail) of an operations endpoint; detail names failed checks or the error."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=timeout) as r:
            body = json.loads(r.read() or b"{}")
            return body.get("status") == "OK", body.get("status", "")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except json.JSONDecodeError:
            body = {}
        failed = ", ".join(c.get("component", "?") for c in body.get("failed_checks", []))
        return False, f"HTTP {exc.code}" + (f" (failed: {failed})" if failed else "")
    except (OSError, json.JSONDecodeError) as exc:
        return False, f"unreachable: {getattr(exc, 'reason', exc)}"


def metrics(host: str, port: int, timeout: float = 2.0) -> dict[str, dict[str, float]]:
    """Labelled metrics of an operations endpoint: ``{name: {labels: value}}``; {} on error."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m:
            out.setdefault(m["name"], {})[m["labels"]] = float(m["value"])
    return out


def channel_metric(all_metrics: dict[str, dict[str, float]], name: str,
                   channel: str) -> float | None:
    """The value of metric ``name`` for ``channel``, or None when absent."""
    for labels, value in all_metrics.get(name, {}).items():
        if f'channel="{channel}"' in labels:
            return value
    return None


def participation(host: str, port: int, channel: str, ca_file: Path, cert: Path, key: Path,
                  timeout: float = 3.0) -> dict[str, Any] | None:
    """The orderer's channel-participation record for ``channel``; None if not a member or
    unreachable."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError):
        return None  # the admin's TLS material is missing or unreadable
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", f"/participation/v1/channels/{channel}")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return None
        result: dict[str, Any] = json.loads(body)
        return result
    except (OSError, json.JSONDecodeError):
        return None
    finally:
        conn.close()
