"""`facegan serve`: TF Serving's gRPC API (and its REST API on a second port) in front of the
ModelManager, with health, TLS and metrics."""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from facegan.client.errors import ServingError
from facegan.client.protocol import GRPC_OPTIONS, PREDICTION_SERVICE
from facegan.errors import UsageError
from facegan.serving.manager import ModelManager
from facegan.serving.memory import release_free_heap
from facegan.serving.metrics import ServerMetrics
from facegan.serving.model_config import ModelSource, check_sources
from facegan.serving.options import ServerOptions
from facegan.serving.predictor import Predictor
from facegan.serving.projections.queue import ProjectionQueue
from facegan.serving.rest import RestServer
from facegan.serving.servable import Servable
from facegan.serving.service import ModelService, PredictionService, generic_handlers
from facegan.serving.text import shorten

log = logging.getLogger("facegan.serve")


class Server:
    """Start with `start()`; `stop(grace)` refuses new calls and lets running ones finish."""

    def __init__(self, sources: list[ModelSource], options: ServerOptions = ServerOptions()):
        check_sources(sources)
        self.options = options
        self.metrics = ServerMetrics()
        self.health = health.HealthServicer()
        self.projections = ProjectionQueue()  # shared by every loaded version (serving/projections/)
        self._health_names: set[str] = set()  # models ever configured: each has a health status
        self.manager = ModelManager(
            sources, self._load, self._unload, on_change=self._changed, retries=options.load_retries
        )
        # so_reuseport off: a second server on a busy port must fail, not silently share it.
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(options.workers, thread_name_prefix="facegan-rpc"),
            options=[*GRPC_OPTIONS, ("grpc.so_reuseport", 0)],
        )
        self.predictor = Predictor(self.manager, self.metrics, options.max_batch)
        prediction = PredictionService(self.predictor, options.typed_fields)
        models = ModelService(self.predictor, reload_config=self.reload_config)
        self._grpc.add_generic_rpc_handlers(generic_handlers(prediction, models))
        if options.health_service:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        self.monitoring_port = None
        self._rest = None
        self.rest_port = None
        self._grpc_started = False
        self._config_text = Path(options.config_file).read_bytes() if options.config_file else b""
        self._config_problem: str | None = None  # the watcher's last problem: each is logged once
        self._content_problem: str | None = None  # what is wrong with the file's current text, if anything
        self._stop_config = threading.Event()
        self._config_thread = None
        try:  # every port is bound here, before anything loads: a busy one fails at once and leaves none bound
            self._bind(options)
        except BaseException:
            if self._rest is not None:
                self._rest.stop(0)
            self.metrics.close()
            raise

    def _bind(self, options: ServerOptions) -> None:
        """REST, then the monitoring port, then gRPC's (last: an unstarted gRPC server frees its
        port only by running, so nothing may fail after it is bound)."""
        if options.rest_port is not None:
            try:
                self._rest = RestServer(
                    self.predictor,
                    options.host,
                    options.rest_port,
                    threads=options.rest_threads,
                    metrics_path=options.metrics_path,
                    timeout_s=options.rest_timeout_s,
                    cors=options.cors,
                )
            except OSError as e:
                raise UsageError(
                    f"cannot listen on {options.host}:{options.rest_port} for REST ({e.strerror})"
                ) from None
            self.rest_port = self._rest.port
        if options.monitoring_port is not None:
            try:
                self.monitoring_port = self.metrics.serve_http(options.monitoring_port, options.host)
            except OSError as e:
                raise UsageError(
                    f"cannot listen on {options.host}:{options.monitoring_port} for metrics ({e.strerror})"
                ) from None
        address = f"{options.host}:{options.port}"
        credentials = None
        if options.tls is not None:
            credentials = grpc.ssl_server_credentials(
                [(options.tls.server_key, options.tls.server_cert)],
                root_certificates=options.tls.custom_ca,
                require_client_auth=options.tls.client_verify,
            )
        try:
            self.port = (
                self._grpc.add_secure_port(address, credentials)
                if credentials
                else self._grpc.add_insecure_port(address)
            )
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise UsageError(f"cannot listen on {address} (port in use, or not an address of this machine)")

    def _watch_config(self) -> None:
        """Re-read --model-config-file as TF Serving's --model_config_file_poll_wait_seconds does.
        A file that cannot be read, fails to parse or names a missing base path is logged once
        (until the problem changes); the running config stays, and later edits still apply."""
        while not self._stop_config.wait(self.options.config_poll_s):
            try:
                problem = self._check_config_file()
            except Exception as e:  # a bug here must not end the watcher: edits would be ignored silently
                problem = f"model config file {self.options.config_file}: {type(e).__name__}: {shorten(str(e), 200)}"
            if problem and problem != self._config_problem:
                log.error("%s; keeping the running config", problem)
            self._config_problem = problem

    def _check_config_file(self) -> str | None:
        """One look at the config file: apply it if it changed; the problem, if any, as one line."""
        path = self.options.config_file
        try:
            text = Path(path).read_bytes()
        except OSError as e:
            return f"model config file {path}: {e.strerror}"
        if text != self._config_text:
            self._content_problem = self._apply_config(text)  # an exception leaves it to the next look
            self._config_text = text
        return self._content_problem

    def _apply_config(self, text: bytes) -> str | None:
        """Serve what the config file's new text says; or, if it cannot be, why not (one line)."""
        from facegan.serving.model_config import sources_from_config_text

        path = self.options.config_file
        try:
            sources = sources_from_config_text(text, path)
        except UsageError as e:
            return str(e)
        return self._serve_sources(sources, f"model config file {path}")

    def reload_config(self, config) -> None:
        """ModelService/HandleReloadConfigRequest: serve what `config` (a ModelServerConfig) lists,
        checked and applied as a config-file edit is; INVALID_ARGUMENT with the reason if it cannot be."""
        from facegan.serving.model_config import sources_from_config

        try:
            sources = sources_from_config(config, "the reload request's config")
        except UsageError as e:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
        problem = self._serve_sources(sources, "HandleReloadConfigRequest")
        if problem:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, problem)

    def _serve_sources(self, sources: list[ModelSource], what: str) -> str | None:
        """Serve `sources` from now on; or, if they cannot be, why not (one line naming `what`)."""
        try:
            check_sources(sources)
        except UsageError as e:
            return f"{what}: {e}"
        removed = [name for name in self.manager.sources if name not in {s.name for s in sources}]
        try:
            self.manager.reconfigure(sources)
        except ValueError as e:
            return f"{what}: cannot apply it: {e}"
        log.info("%s: now serving %s", what, ", ".join(s.name for s in sources))
        for name in removed:
            self.metrics.tf_serving.forget_model(name)
        return None

    def _load(self, name: str, version: int, path: Path) -> Servable:
        batch_size = self.metrics.batch_size.labels(name, str(version))
        servable = Servable(
            name,
            version,
            path,
            on_call=batch_size.observe,
            batching=self.options.batching,
            projections=self.projections,
        )
        if not self.options.warmup:
            return servable
        try:
            warmed = servable.warm_up()
        except BaseException:
            servable.close()
            raise
        log.info("%s version %d: replayed %d warm-up requests", name, version, warmed)
        return servable

    def _unload(self, name: str, version: int, servable: Servable) -> None:
        """Release a version for good: its batch threads, its metric series and the heap it freed.
        A server that swaps versions for a month must not keep anything per version."""
        servable.close()
        self.metrics.forget_version(name, version)
        release_free_heap()

    def _changed(self) -> None:
        """gRPC health, for readiness probes (docs/serving.md, "Health"):
        - each model's name: SERVING while it has a version that can answer (loaded, warmed up,
          not unloading), else NOT_SERVING (also once it leaves the config);
        - "" and the PredictionService: SERVING while at least one model can answer. Not "every
          model": replicas share one config and storage, so one broken or slow-loading model
          would take every replica out of rotation, an outage for the healthy models too."""
        available = self.manager.available()
        self.metrics.set_available(available)
        serving = health_pb2.HealthCheckResponse.SERVING
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self._health_names - set(available):
            self.health.set(name, not_serving)
        for name, versions in available.items():
            self.health.set(name, serving if versions else not_serving)
        self._health_names |= set(available)
        overall = serving if any(available.values()) else not_serving
        for service in ("", PREDICTION_SERVICE):
            self.health.set(service, overall)

    def available(self) -> dict[str, list[int]]:
        """{model name: its available versions}, as clients see them now."""
        return self.manager.available()

    def start(self) -> Server:
        """Load the first versions, then answer. A failure here stops everything started so far."""
        try:
            return self._start()
        except BaseException:
            if not self._grpc_started:
                self._grpc.start()  # gRPC frees an unstarted server's port only once it has run
                self._grpc_started = True
            self.stop(0)
            raise

    def _start(self) -> Server:
        self._changed()
        self.manager.poll()  # the first versions load before the port opens, as in TF Serving
        self._grpc.start()
        self._grpc_started = True
        if self._rest is not None:
            self._rest.start()
        self.manager.start_polling(self.options.poll_wait_s)
        if self.options.config_file and self.options.config_poll_s > 0:
            self._config_thread = threading.Thread(target=self._watch_config, name="facegan-config", daemon=True)
            self._config_thread.start()
        if self.options.batching is not None and self.options.batching.ignored:
            log.warning(
                "batching parameters that facegan parses but does not act on: %s",
                ", ".join(self.options.batching.ignored),
            )
        return self

    def stop(self, grace_s: float = 30.0) -> None:
        self.health.enter_graceful_shutdown()
        self._stop_config.set()
        if self._config_thread is not None:
            self._config_thread.join()
        grpc_stopped = self._grpc.stop(grace_s)  # refuses new calls now, lets running ones finish
        if self._rest is not None:
            self._rest.stop(grace_s)  # meanwhile, the same for REST
        grpc_stopped.wait()
        self.manager.close()
        self.metrics.close()
