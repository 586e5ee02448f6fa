"""Prometheus metrics of one server (its own registry, so several servers can share a process)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "facegan_requests",
            "gRPC requests by method, model and status code",
            ["method", "model", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "facegan_request_latency_seconds",
            "gRPC request latency",
            ["method", "model"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_size = Histogram(
            "facegan_model_batch_size",
            "rows per model invocation (after batching)",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.versions = Gauge(
            "facegan_model_version_available",
            "1 for each version that is serving",
            ["model", "version"],
            registry=self.registry,
        )
        self._http = None

    def set_available(self, available: dict[str, list[int]]) -> None:
        self.versions.clear()
        for model, versions in available.items():
            for v in versions:
                self.versions.labels(model, str(v)).set(1)

    def forget_version(self, model: str, version: int) -> None:
        """Drop an unloaded version's series, so a month of hot swaps does not grow /metrics."""
        for metric in (self.batch_size, self.versions):
            with contextlib.suppress(KeyError):
                metric.remove(model, str(version))

    def serve_http(self, port: int, host: str) -> int:
        """Expose /metrics; returns the bound port (useful with port 0)."""
        self._http, _ = start_http_server(port, addr=host, registry=self.registry)
        return self._http.server_port

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
