"""TF Serving's configuration files that its pip package ships no Python module for, read with
protobuf's own text format: BatchingParameters (--batching_parameters_file), MonitoringConfig
(--monitoring_config_file) and SSLConfig (--ssl_config_file). The messages are declared here
field for field as in TF Serving's .proto files (session_bundle_config.proto, monitoring_config.proto,
ssl_config.proto, same numbers and types), so a file written for TF Serving parses unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from facegan.errors import UsageError

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # TF Serving's PrometheusExporter::kPrometheusPath

# (message, [(field, number, type)]); type: a scalar ("bool", "string", "repeated int64") or a message's
# full name (google.protobuf's wrappers where TF Serving tells "unset" from zero)
MESSAGES = [
    (
        "BatchingParameters",
        [
            ("max_batch_size", 1, ".google.protobuf.Int64Value"),
            ("batch_timeout_micros", 2, ".google.protobuf.Int64Value"),
            ("max_enqueued_batches", 3, ".google.protobuf.Int64Value"),
            ("num_batch_threads", 4, ".google.protobuf.Int64Value"),
            ("thread_pool_name", 5, ".google.protobuf.StringValue"),
            ("allowed_batch_sizes", 6, "repeated int64"),
            ("pad_variable_length_inputs", 7, "bool"),
            ("enable_large_batch_splitting", 8, ".google.protobuf.BoolValue"),
            ("max_execution_batch_size", 9, ".google.protobuf.Int64Value"),
        ],
    ),
    ("PrometheusConfig", [("enable", 1, "bool"), ("path", 2, "string")]),
    ("MonitoringConfig", [("prometheus_config", 1, ".tensorflow.serving.PrometheusConfig")]),
    (
        "SSLConfig",
        [
            ("server_key", 1, "string"),
            ("server_cert", 2, "string"),
            ("custom_ca", 3, "string"),
            ("client_verify", 4, "bool"),
        ],
    ),
]


@cache
def _pool():
    from google.protobuf import descriptor_pb2, descriptor_pool, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    f = descriptor_pb2.FieldDescriptorProto
    messages = []
    for name, fields in MESSAGES:
        declared = []
        for field, number, kind in fields:
            spec = {"name": field, "number": number, "label": f.LABEL_OPTIONAL}
            if kind == "repeated int64":
                spec.update(type=f.TYPE_INT64, label=f.LABEL_REPEATED)
            elif kind == "bool":
                spec.update(type=f.TYPE_BOOL)
            elif kind == "string":
                spec.update(type=f.TYPE_STRING)
            else:
                spec.update(type=f.TYPE_MESSAGE, type_name=kind)
            declared.append(f(**spec))
        messages.append(descriptor_pb2.DescriptorProto(name=name, field=declared))
    pool.Add(
        descriptor_pb2.FileDescriptorProto(
            name="facegan/tf_serving_config_files.proto",
            package="tensorflow.serving",
            syntax="proto3",
            dependency=["google/protobuf/wrappers.proto"],
            message_type=messages,
        )
    )
    return pool


@cache
def config_message(name: str) -> type:
    """The message class tensorflow.serving.<name>, e.g. "BatchingParameters"."""
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"tensorflow.serving.{name}"))


def read_config(path: str | os.PathLike, name: str, what: str):
    """Parse a text-format config file into tensorflow.serving.<name>; one-line UsageError if not."""
    from google.protobuf import text_format

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return text_format.Parse(text, config_message(name)())
    except text_format.ParseError as e:
        raise UsageError(f"{what} {path}: {e}") from None


def metrics_path(path: str | os.PathLike) -> str | None:
    """--monitoring_config_file -> the REST path that serves Prometheus metrics, or None when off."""
    config = read_config(path, "MonitoringConfig", "monitoring config file")
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    served = prometheus.path or PROMETHEUS_PATH
    if not served.startswith("/") or served.startswith("/v1/"):
        raise UsageError(f"monitoring config file {path}: path must start with / and not /v1/, got {served!r}")
    return served


@dataclass(frozen=True)
class TlsConfig:
    """TF Serving's SSLConfig: the PEM texts themselves (not file names), as TF Serving reads them."""

    server_key: bytes
    server_cert: bytes
    custom_ca: bytes | None  # CA that signs client certificates (with client_verify)
    client_verify: bool  # mutual TLS: a client without a certificate signed by custom_ca is refused


def tls_config(path: str | os.PathLike) -> TlsConfig:
    config = read_config(path, "SSLConfig", "SSL config file")
    if not config.server_key or not config.server_cert:
        raise UsageError(f"SSL config file {path} needs server_key and server_cert (the PEM texts)")
    if config.client_verify and not config.custom_ca:
        raise UsageError(f"SSL config file {path}: client_verify needs custom_ca (the CA of the client certificates)")
    for field in ("server_key", "server_cert", "custom_ca"):
        value = getattr(config, field)
        if value and "-----BEGIN " not in value:
            raise UsageError(f"SSL config file {path}: {field} must hold PEM text (-----BEGIN ...), not a file name")
    return TlsConfig(
        server_key=config.server_key.encode(),
        server_cert=config.server_cert.encode(),
        custom_ca=config.custom_ca.encode() or None,
        client_verify=config.client_verify,
    )
