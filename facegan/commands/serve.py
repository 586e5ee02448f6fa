"""`facegan serve`: TF Serving's gRPC and REST APIs for exported models. Flags and files are checked
before TensorFlow loads, so a typo answers in a fraction of a second."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from facegan import __version__
from facegan.client.protocol import DEFAULT_PORT
from facegan.errors import UsageError
from facegan.serving.options import LoadRetries, ServerOptions
from facegan.stopping import STOP_SIGNALS, sleep_until
from facegan.versions import DEFAULT_MODEL_NAME

log = logging.getLogger("facegan.serve")
HELP = "serve exported models over TensorFlow Serving's gRPC and REST APIs"
EXAMPLES = f"""
    facegan serve --model-base-path models/facegan --model-name facegan --port {DEFAULT_PORT} --rest-api-port 8501
    facegan serve --model-config-file models/models.config --host 0.0.0.0
    facegan serve --model-config-file models/models.config --model-config-file-poll-wait-seconds 30 \\
        --rest-api-port 8501 --monitoring-config-file deploy/k8s/config/monitoring.config
    facegan serve --model-base-path models/facegan --enable-batching \
        --batching-parameters-file deploy/k8s/config/batching_parameters.txt
    facegan serve --port=8500 --rest_api_port=8501 --model_name=facegan --model_base_path=models/facegan \
        --enable_batching=true            # TF Serving's own spelling works too (docs/serving.md)
    facegan serve --model-base-path models/facegan --ssl-cert server.crt --ssl-key server.key --monitoring-port 9100
"""


DEFAULTS = ServerOptions()  # the flags' defaults are the options' own
# TF Serving's flags (tensorflow_model_server --help, model_servers/main.cc) that facegan serve does
# not implement: each is refused with one line naming it, never ignored. Those it implements are
# accepted in TF Serving's spelling (--rest_api_port=8501, --enable_batching=true) beside facegan's.
NOT_IMPLEMENTED = (
    "grpc_socket_path",
    "allow_version_labels_for_unavailable_models",
    "enable_per_model_batching_parameters",
    "num_load_threads",
    "num_unload_threads",
    "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "tensorflow_session_config_file",
    "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism",
    "use_alts_credentials",
    "platform_config_file",
    "per_process_gpu_memory_fraction",
    "saved_model_tags",
    "grpc_channel_arguments",
    "num_request_iterations_for_warmup",
    "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model",
    "num_tflite_pools",
    "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
)


def tf_bool(text: str) -> bool:
    """A boolean flag's value as TF Serving reads it: --flag, --flag=true, --flag=false (or 1/0)."""
    value = {"true": True, "1": True, "false": False, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r:.40}")
    return value


class NotImplementedFlag(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is a TF Serving flag that facegan serve does not implement (docs/serving.md)")


def both(name: str) -> tuple[str, str]:
    """facegan's spelling and TF Serving's: ("--rest-api-port", "--rest_api_port")."""
    return name, "--" + name[2:].replace("-", "_")


def switch(p, name: str, default: bool, help: str) -> None:
    """A TF Serving boolean: --name, --name=true or --name=false, in either spelling."""
    p.add_argument(*both(name), type=tf_bool, nargs="?", const=True, default=default, metavar="true|false", help=help)


def add_arguments(p: argparse.ArgumentParser) -> None:
    _model_flags(p)
    _network_flags(p)
    _loading_flags(p)
    _file_flags(p)
    version = f"facegan serve {__version__} (TF Serving's gRPC and REST APIs)"
    p.add_argument("--version", action="version", version=version)
    for name in NOT_IMPLEMENTED:
        p.add_argument(f"--{name}", action=NotImplementedFlag, nargs="?", help=argparse.SUPPRESS)


def _model_flags(parser: argparse.ArgumentParser) -> None:
    """Which models: a base path or TF Serving's model config file."""
    p = parser.add_argument_group("models")
    src = parser.add_mutually_exclusive_group()  # neither: the image's environment (image_entry)
    src.add_argument(*both("--model-base-path"), metavar="DIR", help="folder of numbered versions, e.g. models/facegan")
    src.add_argument(
        *both("--model-config-file"), metavar="FILE", help="TF Serving model_config_list text file (models.config)"
    )
    p.add_argument(
        *both("--model-name"),
        metavar="NAME",
        help=f"name clients ask for (with --model-base-path; default {DEFAULT_MODEL_NAME}, or $MODEL_NAME)",
    )
    p.add_argument(
        *both("--model-config-file-poll-wait-seconds"),
        type=float,
        default=DEFAULTS.config_poll_s,
        metavar="S",
        help="re-read --model-config-file every S seconds: labels, policies, models added or removed (default 0: once)",
    )


def _network_flags(parser: argparse.ArgumentParser) -> None:
    """Where and how many: ports, threads, REST's deadline and CORS."""
    p = parser.add_argument_group("ports and threads")
    p.add_argument("--host", default=DEFAULTS.host, help="address to bind (0.0.0.0: all interfaces)")
    p.add_argument(
        "--port", type=int, default=DEFAULTS.port, help=f"gRPC port (default {DEFAULTS.port}, 0: any free port)"
    )
    p.add_argument(
        *both("--rest-api-port"),
        type=int,
        metavar="N",
        help="TF Serving's REST API on this port, e.g. 8501 (default 0: off, as in TF Serving; 8501 with "
        "$MODEL_NAME, as in its image)",
    )
    p.add_argument(
        *both("--rest-api-timeout-in-ms"),
        type=int,
        default=round(DEFAULTS.rest_timeout_s * 1000),
        metavar="MS",
        help=f"each REST request's deadline (default {DEFAULTS.rest_timeout_s * 1000:.0f}, as TF Serving); "
        "projections on a saturated server may need more",
    )
    p.add_argument(
        *both("--rest-api-num-threads"),
        type=int,
        default=DEFAULTS.rest_threads,
        metavar="N",
        help=f"REST requests computed at once (default {DEFAULTS.rest_threads})",
    )
    switch(p, "--rest-api-enable-cors-support", False, "CORS headers on REST answers, as TF Serving's flag")
    p.add_argument(
        *both("--grpc-max-threads"),
        type=int,
        default=DEFAULTS.workers,
        metavar="N",
        help=f"gRPC requests handled at once (default {DEFAULTS.workers})",
    )


def _loading_flags(parser: argparse.ArgumentParser) -> None:
    """How versions load and requests are answered."""
    p = parser.add_argument_group("loading and answers")
    p.add_argument(
        *both("--file-system-poll-wait-seconds"),
        type=float,
        default=DEFAULTS.poll_wait_s,
        metavar="S",
        help=f"how often to look for new or removed versions (default {DEFAULTS.poll_wait_s:g}, 0: never)",
    )
    p.add_argument(
        *both("--max-num-load-retries"),
        type=int,
        default=DEFAULTS.load_retries.max_retries,
        metavar="N",
        help=f"retry a failed version N times (default {DEFAULTS.load_retries.max_retries}, as TF Serving)",
    )
    p.add_argument(
        *both("--load-retry-interval-micros"),
        type=int,
        default=round(DEFAULTS.load_retries.interval_s * 1e6),
        metavar="US",
        help=f"wait this long between those tries (default {DEFAULTS.load_retries.interval_s:g} s, as TF Serving)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULTS.max_batch,
        metavar="N",
        help=f"largest batch one request may ask for (default {DEFAULTS.max_batch})",
    )
    switch(p, "--enable-batching", False, "merge concurrent requests into one model call")
    p.add_argument(
        *both("--batching-parameters-file"),
        metavar="FILE",
        help="TF Serving BatchingParameters text file (with --enable-batching, as TF Serving requires)",
    )
    switch(p, "--enable-model-warmup", DEFAULTS.warmup, "replay each version's warm-up records first (default true)")
    health = "grpc.health.v1 on the gRPC port (default true)"
    switch(p, "--enable-grpc-healthcheck-service", DEFAULTS.health_service, health)
    p.add_argument(
        "--typed-fields",
        action="store_true",
        help="answer with float_val/int_val fields like TF Serving (default: compact tensor_content)",
    )
    switch(p, "--enable-serialization-as-tensor-content", None, "the reverse of --typed-fields (TF Serving's flag)")


def _file_flags(parser: argparse.ArgumentParser) -> None:
    """TLS and metrics."""
    p = parser.add_argument_group("TLS and metrics")
    p.add_argument(
        *both("--monitoring-config-file"),
        metavar="FILE",
        help="TF Serving MonitoringConfig text file: Prometheus metrics on the REST port (needs --rest-api-port)",
    )
    p.add_argument(
        *both("--ssl-config-file"),
        metavar="FILE",
        help="TF Serving SSLConfig text file (PEM texts inline; client_verify: mutual TLS) for the gRPC port",
    )
    p.add_argument("--ssl-cert", metavar="PEM", help="PEM certificate chain: serve TLS (with --ssl-key)")
    p.add_argument("--ssl-key", metavar="PEM", help="PEM private key for --ssl-cert")
    p.add_argument("--monitoring-port", type=int, metavar="PORT", help="expose Prometheus metrics at :PORT/metrics")


def _batching(args: argparse.Namespace):
    from facegan.serving.batching import BatchingOptions, parse_batching_parameters

    if args.batching_parameters_file and not args.enable_batching:
        raise UsageError(  # TF Serving: "batching_parameters_file is set without setting enable_batching to true"
            "--batching-parameters-file is set without --enable-batching (TF Serving refuses this too): add "
            "--enable_batching=true"
        )
    if args.batching_parameters_file:
        try:
            return parse_batching_parameters(Path(args.batching_parameters_file).read_text())
        except OSError as e:
            raise UsageError(f"cannot read {args.batching_parameters_file}: {e.strerror}") from None
        except ValueError as e:
            raise UsageError(f"{args.batching_parameters_file}: {e}") from None
    if args.enable_batching:
        return BatchingOptions()
    return None


def image_entry(args: argparse.Namespace, environ) -> None:
    """The tensorflow/serving image's entry, when the command line names no models: its
    tf_serving_entrypoint.sh runs `tensorflow_model_server --port=8500 --rest_api_port=8501
    --model_name=${MODEL_NAME} --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} "$@"`, so the same
    variables pick the model here, and flags given still win as they do after "$@"."""
    if args.model_base_path or args.model_config_file:
        args.model_name = args.model_name or DEFAULT_MODEL_NAME
        args.rest_api_port = args.rest_api_port or 0
        return
    if "MODEL_NAME" not in environ and "MODEL_BASE_PATH" not in environ:
        raise UsageError(
            "name the models: --model_base_path DIR or --model_config_file FILE (or set MODEL_NAME and "
            "MODEL_BASE_PATH, as for the tensorflow/serving image)"
        )
    name = environ.get("MODEL_NAME", "model")  # the image's defaults: ENV MODEL_NAME=model,
    base = environ.get("MODEL_BASE_PATH", "/models")  # ENV MODEL_BASE_PATH=/models
    if not name or not base:
        raise UsageError("MODEL_NAME and MODEL_BASE_PATH must not be empty")
    args.model_base_path = str(Path(base) / name)
    args.model_name = args.model_name or name
    args.rest_api_port = 8501 if args.rest_api_port is None else args.rest_api_port


def run(args: argparse.Namespace) -> int:
    image_entry(args, os.environ)
    # The flags' own units and pairs here; the rules on the values are ServerOptions' (options.py).
    if not 1 <= args.rest_api_timeout_in_ms <= 3_600_000:
        raise UsageError(f"--rest-api-timeout-in-ms must be 1..3600000 (an hour), got {args.rest_api_timeout_in_ms}")
    tensor_content = args.enable_serialization_as_tensor_content
    if args.typed_fields and tensor_content:
        raise UsageError("--typed-fields and --enable_serialization_as_tensor_content=true contradict each other")
    typed_fields = args.typed_fields or tensor_content is False
    if bool(args.ssl_cert) != bool(args.ssl_key):
        raise UsageError("TLS needs both --ssl-cert and --ssl-key")
    if args.ssl_config_file and args.ssl_cert:
        raise UsageError("give TLS either as --ssl-config-file or as --ssl-cert/--ssl-key, not both")
    if args.monitoring_config_file and not args.rest_api_port:
        raise UsageError("--monitoring-config-file serves metrics on the REST port: give --rest-api-port too")
    from facegan.serving.config_files import metrics_path
    from facegan.serving.tls import tls_from_config_file, tls_from_files

    tls = None
    if args.ssl_cert or args.ssl_key:
        tls = tls_from_files(args.ssl_cert, args.ssl_key)
    if args.ssl_config_file:
        tls = tls_from_config_file(args.ssl_config_file)
    metrics_at = metrics_path(args.monitoring_config_file) if args.monitoring_config_file else None
    batching = _batching(args)
    from facegan.api.serving import model_sources

    if args.model_config_file:
        sources = model_sources(config_file=args.model_config_file)
    else:
        sources = model_sources(args.model_base_path, name=args.model_name)
    from facegan.serving.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before TensorFlow and the handler threads allocate (serving/memory.py)
    from facegan.api.serving import Serving

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = ServerOptions(
        host=args.host,
        port=args.port,
        poll_wait_s=args.file_system_poll_wait_seconds,
        max_batch=args.max_batch,
        batching=batching,
        typed_fields=typed_fields,
        monitoring_port=args.monitoring_port,
        rest_port=args.rest_api_port or None,
        rest_timeout_s=args.rest_api_timeout_in_ms / 1000,
        rest_threads=args.rest_api_num_threads,
        cors=args.rest_api_enable_cors_support,
        workers=args.grpc_max_threads,
        warmup=args.enable_model_warmup,
        health_service=args.enable_grpc_healthcheck_service,
        load_retries=LoadRetries(args.max_num_load_retries, args.load_retry_interval_micros / 1e6),
        tls=tls,
        metrics_path=metrics_at,
        config_file=Path(args.model_config_file) if args.model_config_file else None,
        config_poll_s=args.model_config_file_poll_wait_seconds,
    )
    return serve_until_signal(Serving(sources, options))


def serve_until_signal(serving) -> int:
    """Run until SIGTERM or Ctrl-C, then drain in-flight requests and return 0."""
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    serving.start()  # loads TensorFlow and the models: after validation
    print(f"facegan serve: {serving.describe()}", flush=True)
    sleep_until(stop)  # not stop.wait(): a signal another thread received must still wake this one
    log.info("shutting down: draining in-flight requests")
    serving.stop(grace_s=30.0)
    log.info("stopped")
    return 0
