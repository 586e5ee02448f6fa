"""`facegan serve`: TF Serving's gRPC and REST APIs for exported models. Flags and files are checked
before TensorFlow loads, so a typo answers in a fraction of a second."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from facegan.client.protocol import DEFAULT_PORT
from facegan.errors import UsageError
from facegan.serving.options import LoadRetries, ServerOptions
from facegan.stopping import STOP_SIGNALS
from facegan.versions import DEFAULT_MODEL_NAME

log = logging.getLogger("facegan.serve")
HELP = "serve exported models over TensorFlow Serving's gRPC and REST APIs"
EXAMPLES = f"""
    facegan serve --model-base-path models/facegan --model-name facegan --port {DEFAULT_PORT} --rest-api-port 8501
    facegan serve --model-config-file models/models.config --host 0.0.0.0
    facegan serve --model-config-file models/models.config --model-config-file-poll-wait-seconds 30 \\
        --rest-api-port 8501 --monitoring-config-file deploy/k8s/config/monitoring.config
    facegan serve --model-base-path models/facegan --batching-parameters-file deploy/k8s/config/batching_parameters.txt
    facegan serve --model-base-path models/facegan --ssl-cert server.crt --ssl-key server.key --monitoring-port 9100
"""


DEFAULTS = ServerOptions()  # the flags' defaults are the options' own


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-base-path", help="folder of numbered versions, e.g. models/facegan")
    src.add_argument("--model-config-file", help="TF Serving model_config_list text file, e.g. models/models.config")
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="name clients ask for (with --model-base-path)")
    p.add_argument("--host", default=DEFAULTS.host, help="address to bind (0.0.0.0: all interfaces)")
    p.add_argument(
        "--port", type=int, default=DEFAULTS.port, help=f"gRPC port (default {DEFAULTS.port}, 0: any free port)"
    )
    p.add_argument(
        "--rest-api-port",
        type=int,
        default=0,
        metavar="N",
        help="TF Serving's REST API on this port, e.g. 8501 (default 0: off, as in TF Serving)",
    )
    p.add_argument(
        "--rest-api-timeout-in-ms",
        type=int,
        default=round(DEFAULTS.rest_timeout_s * 1000),
        metavar="MS",
        help=f"each REST request's deadline (default {DEFAULTS.rest_timeout_s * 1000:.0f}, as TF Serving); "
        "projections on a saturated server may need more",
    )
    p.add_argument(
        "--file-system-poll-wait-seconds",
        type=float,
        default=DEFAULTS.poll_wait_s,
        metavar="S",
        help=f"how often to look for new or removed versions (default {DEFAULTS.poll_wait_s:g}, 0: never)",
    )
    p.add_argument(
        "--max-num-load-retries",
        type=int,
        default=DEFAULTS.load_retries.max_retries,
        metavar="N",
        help=f"retry a failed version N times (default {DEFAULTS.load_retries.max_retries}, as TF Serving)",
    )
    p.add_argument(
        "--load-retry-interval-micros",
        type=int,
        default=round(DEFAULTS.load_retries.interval_s * 1e6),
        metavar="US",
        help=f"wait this long between those tries (default {DEFAULTS.load_retries.interval_s:g} s, as TF Serving)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULTS.max_batch,
        help=f"largest batch one request may ask for (default {DEFAULTS.max_batch})",
    )
    p.add_argument("--enable-batching", action="store_true", help="merge concurrent requests into one model call")
    p.add_argument("--batching-parameters-file", help="TF Serving BatchingParameters text file (implies batching)")
    p.add_argument(
        "--typed-fields",
        action="store_true",
        help="answer with float_val/int_val fields like TF Serving (default: compact tensor_content)",
    )
    p.add_argument(
        "--model-config-file-poll-wait-seconds",
        type=float,
        default=DEFAULTS.config_poll_s,
        metavar="S",
        help="re-read --model-config-file every S seconds: labels, policies, models added or removed (default 0: once)",
    )
    p.add_argument(
        "--monitoring-config-file",
        help="TF Serving MonitoringConfig text file: Prometheus metrics on the REST port (needs --rest-api-port)",
    )
    p.add_argument(
        "--ssl-config-file",
        help="TF Serving SSLConfig text file (PEM texts inline; client_verify: mutual TLS) for the gRPC port",
    )
    p.add_argument("--ssl-cert", help="PEM certificate chain: serve TLS (with --ssl-key)")
    p.add_argument("--ssl-key", help="PEM private key for --ssl-cert")
    p.add_argument("--monitoring-port", type=int, help="expose Prometheus metrics at :PORT/metrics")


def _batching(args: argparse.Namespace):
    from facegan.serving.batching import BatchingOptions, parse_batching_parameters

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


def run(args: argparse.Namespace) -> int:
    from facegan.serving.model_config import ModelSource, check_sources, sources_from_config_file

    # The flags' own units and pairs here; the rules on the values are ServerOptions' (options.py).
    if not 1 <= args.rest_api_timeout_in_ms <= 3_600_000:
        raise UsageError(f"--rest-api-timeout-in-ms must be 1..3600000 (an hour), got {args.rest_api_timeout_in_ms}")
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
    if args.model_config_file:
        sources = sources_from_config_file(args.model_config_file)
    else:
        sources = [ModelSource(args.model_name, Path(args.model_base_path))]
    check_sources(sources)
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
        typed_fields=args.typed_fields,
        monitoring_port=args.monitoring_port,
        rest_port=args.rest_api_port or None,
        rest_timeout_s=args.rest_api_timeout_in_ms / 1000,
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
    stop.wait()
    log.info("shutting down: draining in-flight requests")
    serving.stop(grace_s=30.0)
    log.info("stopped")
    return 0
