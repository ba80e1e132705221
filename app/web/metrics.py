"""Prometheus metrics of one app (its own registry, so several apps can run in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    """The app's metrics, served at /metrics.

    Attributes:
        requests: HTTP requests by method, endpoint (the route, not the URL) and status.
        latency: HTTP request latency by method and endpoint.
        ledger_submits: transactions committed valid, by function.
        ledger_failures: ledger calls that failed, by function and the HTTP status given.
        ledger_seconds: ledger call latency by kind (evaluate, submit).
        readmodel_lag: blocks the read model is behind the peer.
        feed_imports: feed imports by source and outcome.
    """

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(
        auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("patchledger_http_requests", "HTTP requests",
                                ["method", "endpoint", "status"], registry=r)
        self.latency = Histogram("patchledger_http_request_seconds", "HTTP request latency",
                                 ["method", "endpoint"], registry=r)
        self.ledger_submits = Counter("patchledger_ledger_submits",
                                      "ledger transactions committed valid", ["function"],
                                      registry=r)
        self.ledger_failures = Counter("patchledger_ledger_failures", "ledger calls failed",
                                       ["function", "status"], registry=r)
        self.ledger_seconds = Histogram("patchledger_ledger_call_seconds",
                                        "ledger call latency", ["kind"], registry=r)
        self.readmodel_lag = Gauge("patchledger_readmodel_lag_blocks",
                                   "blocks the read model is behind the peer", registry=r)
        self.feed_imports = Counter("patchledger_feed_imports", "feed imports",
                                    ["source", "outcome"], registry=r)
