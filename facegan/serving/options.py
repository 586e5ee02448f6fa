"""`facegan serve`'s options as values: what the server is started with, and the defaults that
the command's flags read from here (this module is light, so `facegan serve --help` answers
before TensorFlow loads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from facegan.client.protocol import DEFAULT_MAX_BATCH, DEFAULT_PORT
from facegan.errors import UsageError

if TYPE_CHECKING:
    from facegan.serving.batching import BatchingOptions
    from facegan.serving.config_files import TlsConfig


@dataclass(frozen=True)
class LoadRetries:
    """TF Serving's --max_num_load_retries and --load_retry_interval_micros (same defaults): a
    version that fails to load (a folder still being copied, a file system hiccup) is tried again."""

    max_retries: int = 5
    interval_s: float = 60.0

    def __post_init__(self):
        if self.max_retries < 0 or self.interval_s < 0:
            raise UsageError("load retries and their interval must be >= 0")


@dataclass(frozen=True)
class ServerOptions:
    """How one `facegan serve` runs (everything but which models: those are ModelSources)."""

    host: str = "127.0.0.1"  # "0.0.0.0" to accept connections from other machines / containers
    port: int = DEFAULT_PORT  # 0 picks a free port
    poll_wait_s: float = 1.0  # how often base paths are scanned for new or removed versions; 0: never
    max_batch: int = DEFAULT_MAX_BATCH  # rows per request
    batching: BatchingOptions | None = None  # None: every request is its own model call
    typed_fields: bool = False  # answer with float_val/int_val like TF Serving instead of tensor_content
    monitoring_port: int | None = None  # Prometheus /metrics on this port
    rest_port: int | None = None  # TF Serving's REST API on this port (0: any free port); None: off
    rest_timeout_s: float = 30.0  # TF Serving's --rest_api_timeout_in_ms (same default): a REST request's deadline
    load_retries: LoadRetries = field(default_factory=LoadRetries)  # how often, how far apart, a failed load is retried
    workers: int = 32  # gRPC handler threads: requests handled at once (the rest wait in gRPC's queue)
    tls: TlsConfig | None = None  # TLS (--ssl-cert/--ssl-key or --ssl-config-file): key, certificate, client CA
    metrics_path: str | None = None  # --monitoring-config-file: Prometheus text at this path of the REST port
    config_file: Path | None = None  # --model-config-file, re-read every config_poll_s when that is > 0
    config_poll_s: float = 0.0  # --model-config-file-poll-wait-seconds (0: read once, as in TF Serving)
    rest_threads: int = 8  # REST requests computed at once (--rest_api_num_threads); slow clients wait in buffers
    cors: bool = False  # --rest_api_enable_cors_support: TF Serving's CORS headers on every REST answer
    warmup: bool = True  # --enable_model_warmup: replay a version's warm-up records before it serves
    health_service: bool = True  # --enable_grpc_healthcheck_service: grpc.health.v1 on the gRPC port

    def __post_init__(self):
        """The rules any way of starting a server (the command, facegan.serve) is held to."""
        ports = {"port": self.port, "rest_port": self.rest_port, "monitoring_port": self.monitoring_port}
        for name, port in ports.items():
            if port is not None and (type(port) is not int or not 0 <= port <= 65535):  # not "8500", 1.5, True
                raise UsageError(f"{name} must be a whole number in 0..65535, got {port!r}")
        if self.rest_port and self.rest_port == self.port:
            raise UsageError("the REST port must differ from the gRPC port")
        if self.max_batch < 1 or self.workers < 1 or self.rest_threads < 1:
            raise UsageError("max_batch, workers and rest_threads must be >= 1")
        if self.poll_wait_s < 0 or self.config_poll_s < 0:
            raise UsageError("poll intervals must be >= 0 seconds")
        if not 0 < self.rest_timeout_s <= 3600:
            raise UsageError(f"the REST timeout must be more than 0 s and at most an hour, got {self.rest_timeout_s} s")
        if self.config_poll_s and self.config_file is None:
            raise UsageError("re-reading a model config file needs a model config file")
        if self.metrics_path and self.rest_port is None:
            raise UsageError("metrics on the REST port need a REST port")
