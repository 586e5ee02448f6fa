"""Prometheus metrics of one server (its own registry, so several servers can share a process):
facegan's own series, and TF Serving's request series under TF Serving's names and labels."""

from __future__ import annotations

import bisect
import contextlib
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# TF Serving's request_latency buckets, in microseconds: monitoring::Buckets::Exponential(10, 1.8, 33)
# (10, 18, 32.4, ... ~1.3e9 = 20 minutes), then +Inf.
TFS_LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))


class TfServingMetrics:
    """`:tensorflow:serving:request_count` {model_name, status} and `:tensorflow:serving:request_latency`
    {model_name, API, entrypoint} (a histogram in microseconds), recorded where TF Serving records
    them (every Predict; the latency of successful ones) and written as TF Serving's exporter writes
    them. Its own text writer because prometheus_client renames every counter to NAME_total, and
    dashboards written for TF Serving query the bare name."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._latency: dict[tuple[str, str, str], list] = {}  # [bucket counts..., sum]

    def record(self, model: str, status: str, api: str, entrypoint: str, seconds: float) -> None:
        with self._lock:
            self._counts[(model, status)] = self._counts.get((model, status), 0) + 1
            if status != "OK":
                return
            micros = seconds * 1e6
            cell = self._latency.setdefault((model, api, entrypoint), [0] * (len(TFS_LATENCY_BUCKETS_US) + 1) + [0.0])
            cell[bisect.bisect_right(TFS_LATENCY_BUCKETS_US, micros)] += 1  # past the last limit: +Inf
            cell[-1] += micros

    def forget_model(self, model: str) -> None:
        with self._lock:
            for key in [k for k in self._counts if k[0] == model]:
                del self._counts[key]
            for key in [k for k in self._latency if k[0] == model]:
                del self._latency[key]

    def exposition(self) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self._lock:
            counts = sorted(self._counts.items())
            latency = sorted((k, list(v)) for k, v in self._latency.items())
        for (model, status), n in counts:
            lines.append(f':tensorflow:serving:request_count{{model_name="{_label(model)}",status="{status}"}} {n}')
        lines.append("# TYPE :tensorflow:serving:request_latency histogram")
        for (model, api, entrypoint), cell in latency:
            labels = f'model_name="{_label(model)}",API="{api}",entrypoint="{entrypoint}"'
            total = 0
            for i, count in enumerate(cell[:-1]):
                total += count
                le = f"{TFS_LATENCY_BUCKETS_US[i]:.6g}" if i < len(TFS_LATENCY_BUCKETS_US) else "+Inf"
                lines.append(f':tensorflow:serving:request_latency_bucket{{{labels},le="{le}"}} {total}')
            lines.append(f":tensorflow:serving:request_latency_sum{{{labels}}} {cell[-1]:.6g}")
            lines.append(f":tensorflow:serving:request_latency_count{{{labels}}} {total}")
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


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
        self.tf_serving = TfServingMetrics()
        self._http = None

    def page(self) -> bytes:
        """Prometheus text: TF Serving's series, then facegan's own."""
        return self.tf_serving.exposition().encode() + generate_latest(self.registry)

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
