"""One loaded version of a SavedModel: its signatures, a thread-safe call, and warm-up replay."""

from __future__ import annotations

import contextlib
import functools
import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from facegan.client.errors import ServingError
from facegan.client.tensors import DTYPES, to_numpy
from facegan.layout import VersionDir
from facegan.serving.batching import Batcher, BatchingOptions
from facegan.serving.graph_errors import graph_error
from facegan.serving.projections.cancel import Cancel
from facegan.serving.projections.queue import ProjectionQueue
from facegan.serving.projections.worker import ProjectionWorker
from facegan.serving.request import DEFAULT_SIGNATURE, Request

MAX_WARMUP_RECORDS = 1000  # TF Serving's limit


@dataclass(frozen=True)
class TensorSpec:
    dtype: int  # tensorflow DataType enum
    shape: tuple[int, ...] | None  # -1 for an unknown dimension; None for unknown rank


@dataclass(frozen=True)
class Signature:
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


def _spec(info) -> TensorSpec:
    shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
    return TensorSpec(info.dtype, shape)


def read_signature_defs(path: Path):
    """The "serve" meta graph's SignatureDef map, as TF Serving's GetModelMetadata returns it."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString(VersionDir(path).saved_model.read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph.signature_def
    raise ValueError(f"{path} has no meta graph tagged 'serve'")


_gc_pause = threading.Lock()
_gc_pauses = 0  # loads in progress (the manager loads one at a time; counted all the same)
_gc_was_enabled = True  # as the first of them found it (a caller may have turned it off itself)


@contextlib.contextmanager
def cyclic_gc_paused():
    """Python's cyclic garbage collector off, in every thread, while TensorFlow builds a SavedModel's
    graphs. A collection that another thread started midway (a request's allocation crossing the
    threshold) crashed the server with a segmentation fault during hot swaps: the fault handler
    showed it collecting while this thread was inside TensorFlow's graph import (docs/serving.md,
    "Hot swaps as fast as they come"). Requests keep running meanwhile; the garbage they leave
    waits the load's seconds."""
    global _gc_pauses, _gc_was_enabled
    with _gc_pause:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
        _gc_pauses += 1
        gc.disable()
    try:
        yield
    finally:
        with _gc_pause:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


class Servable:
    """A SavedModel version loaded with TensorFlow. `predict` and `invoke` may be called from many threads."""

    def __init__(
        self,
        name: str,
        version: int,
        path: Path,
        on_call: Callable[[int], None] | None = None,
        batching: BatchingOptions | None = None,
        projections: ProjectionQueue | None = None,
    ):
        import tensorflow as tf

        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = read_signature_defs(path)
        with cyclic_gc_paused():
            module = tf.saved_model.load(str(path), tags=["serve"])
        self._module = module  # keeps the variables alive for the concrete functions
        self._functions = {}
        self.signatures: dict[str, Signature] = {}
        for key, sig in self.signature_defs.items():
            if key.startswith("__") or key not in module.signatures:
                continue  # e.g. __saved_model_init_op: not callable
            for info in list(sig.inputs.values()) + list(sig.outputs.values()):
                if info.dtype not in DTYPES:
                    raise ValueError(f"signature {key!r} uses unsupported dtype {info.dtype}")
            self._functions[key] = module.signatures[key]
            self.signatures[key] = Signature(
                {k: _spec(v) for k, v in sig.inputs.items()}, {k: _spec(v) for k, v in sig.outputs.items()}
            )
        if not self.signatures:
            raise ValueError(f"{path} has no callable signatures")
        self._on_call = on_call
        # Batchable: every input has a free batch dimension, so requests can be merged row-wise.
        # The rest (the projection: one image, a step count, hundreds of model steps) never
        # join a batch queue; they go through the server's ProjectionQueue (a few at a time, a
        # bounded queue, cancelled when abandoned), so a burst of them cannot starve generation.
        self.batchable = {
            key
            for key, sig in self.signatures.items()
            if all(spec.shape and spec.shape[0] == -1 for spec in sig.inputs.values())
        }
        self._projections = projections if projections is not None else ProjectionQueue()
        self._worker = ProjectionWorker(path)  # the unbatchable signatures' nice-10 process, started at first use
        self._batchers = (
            {}
            if batching is None
            else {
                key: Batcher(functools.partial(self.invoke, key), batching, f"{name}-{version}-{key}")
                for key in self.signatures
                if key in self.batchable
            }
        )

    def predict(self, request: Request, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the request's signature now, through its batch queue when batching is on, or (a
        signature that cannot be batched) through the ProjectionQueue: when it is its turn, and
        stopped at its deadline or when its client is gone."""
        signature = request.signature
        if signature in self._batchers:
            return self._batchers[signature].submit(inputs, request.deadline)
        if signature in self.batchable:
            return self.invoke(signature, inputs)
        return self._projections.take_turn(request, lambda cancel: self._project(signature, inputs, cancel))

    def _project(self, signature: str, inputs: dict[str, np.ndarray], cancel: Cancel) -> dict[str, np.ndarray]:
        if self._on_call is not None:
            self._on_call(1)
        return self._worker.call(signature, inputs, cancel)

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()
        self._worker.close()

    def invoke(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One model invocation; `inputs` were validated against `self.signatures[signature]`."""
        import tensorflow as tf

        if self._on_call is not None:
            first = next(iter(inputs.values()))
            self._on_call(len(first) if first.ndim else 1)
        try:
            outputs = self._functions[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as e:  # an in-graph check on the request (e.g. steps out of range)
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, graph_error(e.message)) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def warm_up(self) -> int:
        """Replay assets.extra/tf_serving_warmup_requests (Predict logs); any failure fails the load."""
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_log_pb2

        path = VersionDir(self.path).warmup
        if not path.is_file():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.WhichOneof("log_type") != "predict_log":
                raise ValueError("warm-up records other than Predict are not supported")
            request = log.predict_log.request
            signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
            if signature not in self.signatures:
                raise ValueError(f"warm-up request for unknown signature {signature!r}")
            self.invoke(signature, {k: to_numpy(v) for k, v in request.inputs.items()})
            count += 1
        return count
