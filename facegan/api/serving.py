"""Serving from Python: `facegan.serve(...)` starts `facegan serve`'s server in this process and
returns it running, as a `Serving`: its addresses, clients for them, and `stop()`. Used as a
context manager, it stops when the block ends:

    with facegan.serve("models/facegan") as server:
        faces, z = server.client().from_seeds([0, 1, 2])

`facegan serve` is the same object, started from flags and stopped by SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

from facegan import extras
from facegan.errors import UsageError
from facegan.serving.options import ServerOptions
from facegan.versions import DEFAULT_MODEL_NAME

OPTION_NAMES = tuple(f.name for f in fields(ServerOptions))


class Serving:
    """One running server: gRPC (TF Serving's PredictionService and ModelService) and, when asked
    for, REST, over the models of `sources` (facegan.serving.model_config.ModelSource)."""

    def __init__(self, sources: list, options: ServerOptions):
        self.sources = sources
        self.options = options
        self.server = None  # facegan.serving.server.Server once started
        self._depth = 0  # with blocks entered and not yet left: only the outermost one's end stops it

    def start(self) -> Serving:
        """Load the models' versions and open the ports (TensorFlow loads here)."""
        from facegan.serving.server import Server

        if self.server is None:
            self.server = Server(self.sources, self.options).start()
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new calls, let running ones finish for up to grace_s, close the ports and unload."""
        if self.server is not None:
            self.server.stop(grace_s)
            self.server = None

    def __enter__(self) -> Serving:
        self.start()
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.stop()

    @property
    def _host(self) -> str:
        """Where a client on this machine reaches the server (a wildcard bind is reached locally)."""
        if self.options.host in ("0.0.0.0", "", "::"):
            return "127.0.0.1"
        return self.options.host

    def _running(self):
        if self.server is None:
            raise UsageError("the server is not running (start() it, or use it in a with block)")
        return self.server

    @property
    def grpc_address(self) -> str:
        """host:port of TF Serving's gRPC API, what FaceClient and `facegan generate --server` take."""
        return f"{self._host}:{self._running().port}"

    @property
    def rest_url(self) -> str | None:
        """http://host:port of TF Serving's REST API, or None when REST is off."""
        server = self._running()
        if server.rest_port is None:
            return None
        return f"http://{self._host}:{server.rest_port}"

    @property
    def models(self) -> dict[str, list[int]]:
        """The versions each model has available now."""
        return {name: sorted(versions) for name, versions in self._running().available().items()}

    def client(self, model: str | None = None, **options):
        """A FaceClient (gRPC) for `model` (default: the first configured); options as FaceClient's."""
        from facegan.client import FaceClient

        return FaceClient(self.grpc_address, model=model or self.sources[0].name, **options)

    def rest_client(self, model: str | None = None, **options):
        """A RestClient for `model`; the server must have been started with a REST port."""
        from facegan.client import RestClient

        if self.rest_url is None:
            raise UsageError("this server has no REST port: start it with rest_port=0 (any free port) or a number")
        return RestClient(self.rest_url, model=model or self.sources[0].name, **options)

    def describe(self) -> str:
        """One line: where it listens, how, and which model versions it holds."""
        server = self._running()
        scheme = "insecure"
        if self.options.tls is not None:
            scheme = "mutual TLS" if self.options.tls.client_verify else "TLS"
        models = ", ".join(f"{name} {versions}" for name, versions in server.available().items())
        parts = [f"listening on {self.options.host}:{server.port} ({scheme}); models {models}"]
        if server.rest_port is not None:
            parts.append(f"REST on {self.options.host}:{server.rest_port}")
        if self.options.metrics_path:
            parts.append(f"metrics on :{server.rest_port}{self.options.metrics_path}")
        if server.monitoring_port:
            parts.append(f"metrics on :{server.monitoring_port}/metrics")
        return "; ".join(parts)

    def __repr__(self) -> str:
        if self.server is None:
            return "Serving(stopped)"
        return f"Serving({self.describe()})"


@extras.explained
def serve(
    models=None,
    *,
    name: str | None = None,
    config_file: str | os.PathLike | None = None,
    port: int = 0,
    rest_port: int | None = 0,
    **options,
) -> Serving:
    """Start a server and return it running. `models`: an ExportedModel, or a model's base folder
    (`models/facegan`, served as `name`, default facegan); or `config_file`, a TF Serving
    model_config_list. `port` and `rest_port`: 0 picks free ports (rest_port=None: no REST).
    `options`: the other ServerOptions fields (host, max_batch, batching, rest_timeout_s, tls, ...).
    """
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise UsageError(f"unknown server option {unknown[0]!r}; the options are {', '.join(OPTION_NAMES)}")
    sources = model_sources(models, name=name, config_file=config_file)
    if config_file is not None:
        options["config_file"] = Path(config_file)
    return Serving(sources, ServerOptions(port=port, rest_port=rest_port, **options)).start()


def model_sources(models=None, *, name: str | None = None, config_file: str | os.PathLike | None = None) -> list:
    """The ModelSources that `serve` and `facegan serve` hand the server, checked (a base folder
    that is a run or a version folder, a bad config file: one UsageError): `models` is an
    ExportedModel or a model's base folder, served as `name` (default facegan); or `config_file`,
    a TF Serving model_config_list naming its own models."""
    from facegan.serving.model_config import ModelSource, check_sources, sources_from_config_file

    if (models is None) == (config_file is None):
        raise UsageError("give the models to serve: an export or a base folder, or a config_file (one of them)")
    if config_file is not None:
        if name is not None:
            raise UsageError("name goes with a base folder; a config_file names its own models")
        sources = sources_from_config_file(config_file)
    elif isinstance(models, str | os.PathLike):  # a model's base folder (a str has a .format: test this first)
        sources = [ModelSource(name or DEFAULT_MODEL_NAME, Path(models))]
    elif getattr(models, "format", "savedmodel") != "savedmodel":
        raise UsageError(f"a {models.format} export is not served; export a SavedModel (format='savedmodel')")
    elif hasattr(models, "base_path"):  # an ExportedModel: its model folder, under its name
        sources = [ModelSource(name or models.name, models.base_path)]
    else:
        raise UsageError(f"models is an export or a model's base folder, not {type(models).__name__}")
    check_sources(sources)
    return sources
