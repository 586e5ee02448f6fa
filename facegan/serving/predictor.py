"""The one code path behind both front doors (gRPC in service.py, REST in rest.py).

Model, version and label resolution, input validation (declared shapes before any allocation,
dtypes, batch cap, NaN), the batching queue, deadlines, metrics and the request log all live
here; a front door only turns its wire format into `InputTensor`s and the answer back.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
import numpy as np

from facegan.client.errors import ServingError
from facegan.client.protocol import DEFAULT_MAX_BATCH, MAX_MESSAGE_BYTES
from facegan.client.tensors import TensorError, declared_shape, dtype_name, to_numpy
from facegan.serving.manager import ModelManager, VersionState
from facegan.serving.metrics import ServerMetrics
from facegan.serving.rate_limited_log import REQUESTS_LOG
from facegan.serving.request import DEFAULT_SIGNATURE, ModelRef, Request
from facegan.serving.servable import Signature
from facegan.serving.text import shorten

log = logging.getLogger("facegan.serve")
INVALID = grpc.StatusCode.INVALID_ARGUMENT
OTHER_MODEL = "_other"  # the metric label of every model name the server does not serve
requests_log = logging.getLogger(REQUESTS_LOG)  # client errors, rate-limited (rate_limited_log.py)


class InputTensor(Protocol):
    """One named input as a front door received it: what it claims first, the values on demand."""

    dtype: int  # tensorflow DataType enum
    shape: list[int]  # as declared (checked before decode() is called)

    def decode(self) -> np.ndarray: ...


class ProtoInput:
    """A TensorProto from a gRPC request (or a warm-up record)."""

    def __init__(self, proto):
        self.proto = proto
        self.dtype = proto.dtype
        self.shape = declared_shape(proto)  # TensorError for unknown rank or negative dims

    def decode(self) -> np.ndarray:
        # no honest request carries more values than bytes (a signature with free inner dims)
        return to_numpy(self.proto, max_elements=MAX_MESSAGE_BYTES)


class ArrayInput:
    """An array a front door already decoded (REST's JSON), with the dtype it was converted to."""

    def __init__(self, array: np.ndarray, dtype: int):
        self.array = array
        self.dtype = dtype
        self.shape = list(array.shape)

    def decode(self) -> np.ndarray:
        return self.array


def names(values: list[str], limit: int = 5) -> str:
    """The first few client-supplied names in sorted order, each shortened: an error never echoes
    a flood back, and naming 5 of 300,000 costs no sort of all of them."""
    shown = [shorten(n) for n in heapq.nsmallest(limit, values)]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return f"{shown}{more}"


def validate_inputs(signature: Signature, given: Mapping, max_batch: int) -> dict[str, np.ndarray]:
    """Decoded inputs that match the signature exactly, or INVALID_ARGUMENT naming the input.

    `given` maps aliases to InputTensors, or to TensorProtos (wrapped here). Dtype, rank, every
    fixed dimension and the batch size are checked on the declared shape before any array is
    built, so a small request that claims a huge tensor costs nothing; then decoding checks the
    claim against the bytes or values actually sent."""
    missing = [alias for alias in signature.inputs if alias not in given]
    extra = [alias for alias in given if alias not in signature.inputs]
    if missing or extra:
        raise ServingError(
            INVALID, f"inputs do not match the signature: missing {names(missing)}, unexpected {names(extra)}"
        )
    arrays = {}
    batch = None
    for alias, spec in signature.inputs.items():
        try:
            tensor = given[alias] if hasattr(given[alias], "decode") else ProtoInput(given[alias])
        except TensorError as e:
            raise ServingError(INVALID, f"input '{alias}': {e}") from None
        if tensor.dtype != spec.dtype:
            raise ServingError(
                INVALID, f"input '{alias}' must be {dtype_name(spec.dtype)}, got {dtype_name(tensor.dtype)}"
            )
        shape = tensor.shape
        if spec.shape is not None and (
            len(shape) != len(spec.shape) or any(want not in (-1, got) for want, got in zip(spec.shape, shape))
        ):
            raise ServingError(INVALID, f"input '{alias}' must have shape {list(spec.shape)}, got {shape}")
        if not shape and spec.shape != ():  # a scalar only where the signature declares one (project's steps)
            raise ServingError(INVALID, f"input '{alias}' needs a batch dimension")
        if shape:
            if batch is not None and shape[0] != batch:
                raise ServingError(INVALID, f"input '{alias}' has batch size {shape[0]}, other inputs {batch}")
            batch = shape[0]
            if not 1 <= batch <= max_batch:
                raise ServingError(
                    INVALID, f"input '{alias}' has batch size {batch}; this server allows 1..{max_batch}"
                )
        try:
            array = tensor.decode()
        except TensorError as e:
            raise ServingError(INVALID, f"input '{alias}': {e}") from None
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ServingError(INVALID, f"input '{alias}' contains NaN or infinite values")
        arrays[alias] = array
    return arrays


@dataclass(frozen=True)
class Prediction:
    version: int  # the version that answered
    signature: str  # the signature that ran (serving_default for an empty name)
    outputs: dict[str, np.ndarray]  # the requested outputs, in the signature's order


class Predictor:
    """What a request may ask of the models, whichever door it came through."""

    def __init__(self, manager: ModelManager, metrics: ServerMetrics, max_batch: int = DEFAULT_MAX_BATCH):
        self.manager = manager
        self.metrics = metrics
        self.max_batch = max_batch

    @contextlib.contextmanager
    def accounted(self, method: str, model: str, entrypoint: str = "GRPC") -> Iterator[None]:
        """Count, time and log one call; ServingError passes through for the door to answer,
        anything else becomes INTERNAL. Metric labels and log lines name a model only when the
        server serves it, so clients that invent names cannot grow /metrics or the log.
        Predict calls also count in TF Serving's series (entrypoint "GRPC" or "REST", as it labels them)."""
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        label = model if model in self.manager.sources else OTHER_MODEL
        try:
            yield
        except ServingError as e:
            code = e.code
            requests_log.log(logging.WARNING, "%s %s: %s", method, shorten(model), e)
            raise
        except Exception as e:  # a bug or a failing model: INTERNAL, never a hung client
            code = grpc.StatusCode.INTERNAL
            # One rate-limited line naming where it failed: a request that trips a bug over and over
            # must not fill the log with tracebacks.
            where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
            at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
            message = shorten(f"{type(e).__name__}: {e}", 300)
            requests_log.log(logging.ERROR, "%s %s failed%s: %s", method, shorten(model), at, message)
            raise ServingError(code, message) from None
        finally:
            seconds = time.perf_counter() - start
            self.metrics.requests.labels(method, label, code.name).inc()
            self.metrics.latency.labels(method, label).observe(seconds)
            if method == "Predict":
                self.metrics.tf_serving.record(label, code.name, method, entrypoint, seconds)

    def predict(self, request: Request, read_inputs: Callable[[Signature], Mapping]) -> Prediction:
        """Run one signature of the version the request means. `read_inputs` turns the request's
        inputs into {alias: InputTensor or TensorProto} once the signature is known (REST's JSON
        needs its dtypes); malformed ones raise INVALID_ARGUMENT."""
        with self.manager.pin(request.model) as servable:
            name = request.signature
            signature = servable.signatures.get(name)
            if signature is None:
                raise ServingError(
                    grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{shorten(name)}" not found.'
                )
            unknown = sorted(set(request.output_filter) - set(signature.outputs))
            if unknown:
                raise ServingError(INVALID, f"output tensor alias not found in signature: {names(unknown)}")
            arrays = validate_inputs(signature, read_inputs(signature), self.max_batch)
            outputs = servable.predict(request, arrays)
            wanted = request.output_filter or list(signature.outputs)
            return Prediction(servable.version, name, {alias: outputs[alias] for alias in wanted})

    def refuse_inference(self, ref: ModelRef, signature_name: str, method: str) -> None:
        """Classify and Regress (and MultiInference's tasks) as TF Serving answers them for a model
        whose signatures all predict: the model and version as any call resolves them (NOT_FOUND
        ...), then INVALID_ARGUMENT naming the signature and its method (classifier.cc and
        regressor.cc, with --enable_signature_method_name_check's words). `method` is
        "classify" or "regress"."""
        with self.manager.pin(ref) as servable:
            name = signature_name or DEFAULT_SIGNATURE
            signature = servable.signature_defs.get(name)
            if signature is None:
                raise ServingError(INVALID, f"No signature was found with the name: {shorten(name)}")
            kind = {"classify": "classification", "regress": "regression"}[method]
            raise ServingError(
                INVALID,
                f"Expected {kind} signature method_name to be tensorflow/serving/{method}. "
                f"Was: {signature.method_name}",
            )

    def metadata(self, ref: ModelRef):
        """(version, the SignatureDef map) of the version a request means."""
        with self.manager.pin(ref) as servable:
            return servable.version, servable.signature_defs

    def status(self, ref: ModelRef) -> dict[int, VersionState]:
        if not ref.name:
            raise ServingError(INVALID, "Missing model name in request.")
        versions = self.manager.status(ref.name)
        version = self.manager.resolve(ref) if ref.label else ref.version
        if version is None:
            return versions
        if version not in versions:
            message = f"Could not find version {version} of model {shorten(ref.name)}"
            raise ServingError(grpc.StatusCode.NOT_FOUND, message)
        return {version: versions[version]}
