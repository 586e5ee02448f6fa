"""TF Serving's gRPC messages without importing TensorFlow.

The official `tensorflow_serving.apis` modules import `tensorflow.core.framework.*_pb2`, and
Python then runs `tensorflow/__init__.py`: ~3 s and ~1.5 GB of runtime just to build a request.
The client and the demo instead load the very same .proto descriptors from `protos.binpb`
(a FileDescriptorSet dumped from the official modules by `python -m facegan.client.protocol`)
into a private descriptor pool, so the messages are byte-for-byte the official ones on the wire
and never clash with the official classes when both are loaded in one process.
"""

from __future__ import annotations

import enum
import threading
from functools import cache
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

DESCRIPTORS = Path(__file__).with_name("protos.binpb")
OFFICIAL_MODULES = (
    "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.get_model_metadata_pb2",
    "tensorflow_serving.apis.get_model_status_pb2",
    "tensorflow_serving.config.model_server_config_pb2",
)

PREDICT = "/tensorflow.serving.PredictionService/Predict"
GET_MODEL_METADATA = "/tensorflow.serving.PredictionService/GetModelMetadata"
GET_MODEL_STATUS = "/tensorflow.serving.ModelService/GetModelStatus"
PREDICTION_SERVICE = "tensorflow.serving.PredictionService"

DEFAULT_PORT = 8500  # TF Serving's gRPC port
DEFAULT_SERVER = f"localhost:{DEFAULT_PORT}"
# Rows one Predict may ask for: `facegan serve`'s default --max-batch, and the chunk size of
# `facegan generate` (TF Serving itself has no such cap).
DEFAULT_MAX_BATCH = 64
PROJECT_STEPS = 200  # the `project` signature's optimisation steps
PROJECT_MAX_STEPS = 500  # `project_steps` accepts 1..this (~5 s of one core's work at 32 px)
# A projection's deadline, from the demo and `facegan project --server`: the first one on a server
# also starts the version's projection process (TensorFlow's import and the model's load, up to
# the server's 120 s START_TIMEOUT_S on a slow, busy machine), then runs up to 500 steps.
PROJECT_TIMEOUT_S = 180.0
# DEFAULT_MAX_BATCH faces at 128 px sent as typed int_val fields (up to 2 bytes per value) stay well below this.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
# A client whose server went away reconnects within ~2 s of its return (gRPC's default backoff
# grows to 2 minutes, which would leave the demo broken long after the server is back).
CLIENT_OPTIONS = [
    *GRPC_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class ModelState(enum.IntEnum):
    """tensorflow.serving.ModelVersionStatus.State: a model version's life cycle."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


def state_name(value: int) -> str:
    """The state's name, or the number itself for a state this client does not know."""
    try:
        return ModelState(value).name
    except ValueError:
        return str(value)


def official_descriptor_set() -> bytes:
    """The FileDescriptorSet of the official modules and everything they import (needs TensorFlow)."""
    import importlib

    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def walk(fd):
        if fd.name in files:
            return
        for dep in fd.dependencies:
            walk(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        files[fd.name] = proto

    for name in OFFICIAL_MODULES:
        walk(importlib.import_module(name).DESCRIPTOR)
    return descriptor_pb2.FileDescriptorSet(file=list(files.values())).SerializeToString(deterministic=True)


_lock = threading.Lock()  # one pool per process: two would give two incompatible classes per message


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for fd in descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes()).file:
        pool.Add(fd)
    return pool


def message(full_name: str) -> type:
    """The message class for a full proto name, e.g. "tensorflow.serving.PredictRequest"."""
    with _lock:
        return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))


def main() -> None:
    DESCRIPTORS.write_bytes(official_descriptor_set())
    print(f"wrote {DESCRIPTORS} ({DESCRIPTORS.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
