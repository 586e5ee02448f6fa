"""PredictionService and ModelService with TF Serving's documented semantics and status codes."""

from __future__ import annotations

import functools
import logging
import time

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from facegan.client.errors import ServingError
from facegan.client.protocol import DEFAULT_MAX_BATCH
from facegan.client.tensors import TensorError, dtype_name, from_numpy, to_numpy
from facegan.serving.manager import ModelManager
from facegan.serving.metrics import ServerMetrics
from facegan.serving.servable import Signature

log = logging.getLogger("facegan.serve")
INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNKNOWN_CODE = grpc.StatusCode.UNKNOWN.value[0]  # tensorflow.error.Code uses gRPC's numbers


def _rpc(method):
    """Turn ServingError into the RPC's status; count, time and log every call."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return method(self, request, context)
        except ServingError as e:
            code = e.code
            log.warning("%s %s: %s", method.__name__, request.model_spec.name, e)
            context.abort(e.code, e.message)
        except Exception as e:  # a bug or a failing model: INTERNAL, never a hung client
            code = grpc.StatusCode.INTERNAL
            log.exception("%s %s failed", method.__name__, request.model_spec.name)
            context.abort(code, f"{type(e).__name__}: {e}")
        finally:
            model = request.model_spec.name
            self.metrics.requests.labels(method.__name__, model, code.name).inc()
            self.metrics.latency.labels(method.__name__, model).observe(time.perf_counter() - start)

    return wrapper


def requested_version(spec) -> tuple[int | None, str]:
    """(version, label) a ModelSpec asks for: (N, "") pinned, (None, "stable") labelled, (None, "") the latest."""
    choice = spec.WhichOneof("version_choice")
    return (spec.version.value, "") if choice == "version" else (None, spec.version_label if choice else "")


def validate_inputs(signature: Signature, given, max_batch: int) -> dict[str, np.ndarray]:
    """Decoded inputs that match the signature exactly, or INVALID_ARGUMENT naming the input."""
    missing = sorted(set(signature.inputs) - set(given))
    extra = sorted(set(given) - set(signature.inputs))
    if missing or extra:
        raise ServingError(INVALID, f"inputs do not match the signature: missing {missing}, unexpected {extra}")
    arrays, batch = {}, None
    for alias, spec in signature.inputs.items():
        proto = given[alias]
        if proto.dtype != spec.dtype:
            raise ServingError(
                INVALID, f"input '{alias}' must be {dtype_name(spec.dtype)}, got {dtype_name(proto.dtype)}"
            )
        try:
            array = to_numpy(proto)
        except TensorError as e:
            raise ServingError(INVALID, f"input '{alias}': {e}") from None
        if spec.shape is not None and (
            array.ndim != len(spec.shape) or any(w not in (-1, g) for w, g in zip(spec.shape, array.shape))
        ):
            raise ServingError(INVALID, f"input '{alias}' must have shape {list(spec.shape)}, got {list(array.shape)}")
        if array.ndim == 0:
            raise ServingError(INVALID, f"input '{alias}' needs a batch dimension")
        if batch is not None and len(array) != batch:
            raise ServingError(INVALID, f"input '{alias}' has batch size {len(array)}, other inputs {batch}")
        batch = len(array)
        if not 1 <= batch <= max_batch:
            raise ServingError(INVALID, f"input '{alias}' has batch size {batch}; this server allows 1..{max_batch}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ServingError(INVALID, f"input '{alias}' contains NaN or infinite values")
        arrays[alias] = array
    return arrays


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(
        self,
        manager: ModelManager,
        metrics: ServerMetrics,
        max_batch: int = DEFAULT_MAX_BATCH,
        typed_fields: bool = False,
    ):
        self.manager = manager
        self.metrics = metrics
        self.max_batch = max_batch
        self.typed_fields = typed_fields

    @_rpc
    def Predict(self, request, context):
        spec = request.model_spec
        with self.manager.pin(spec.name, *requested_version(spec)) as servable:
            name = spec.signature_name or "serving_default"
            signature = servable.signatures.get(name)
            if signature is None:
                raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
            unknown = sorted(set(request.output_filter) - set(signature.outputs))
            if unknown:
                raise ServingError(INVALID, f"output tensor alias not found in signature: {', '.join(unknown)}")
            inputs = validate_inputs(signature, request.inputs, self.max_batch)
            remaining = context.time_remaining()
            deadline = None if remaining is None else time.monotonic() + remaining
            outputs = servable.predict(name, inputs, deadline)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = name
            for alias in request.output_filter or signature.outputs:
                response.outputs[alias].CopyFrom(from_numpy(outputs[alias], tensor_pb2.TensorProto, self.typed_fields))
            return response

    @_rpc
    def GetModelMetadata(self, request, context):
        fields = set(request.metadata_field)
        if not fields:
            raise ServingError(INVALID, "GetModelMetadataRequest must specify at least one metadata_field")
        if fields != {"signature_def"}:
            raise ServingError(INVALID, f"Metadata field {sorted(fields - {'signature_def'})[0]} is not supported")
        spec = request.model_spec
        with self.manager.pin(spec.name, *requested_version(spec)) as servable:
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = servable.version
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for key, value in servable.signature_defs.items():
                signature_map.signature_def[key].CopyFrom(value)
            response.metadata["signature_def"].Pack(signature_map)
            return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager, metrics: ServerMetrics):
        self.manager = manager
        self.metrics = metrics

    @_rpc
    def GetModelStatus(self, request, context):
        spec = request.model_spec
        if not spec.name:
            raise ServingError(INVALID, "Missing model name in request.")
        versions = self.manager.status(spec.name)
        version, label = requested_version(spec)
        if label:
            version = self.manager.resolve(spec.name, label=label)
        if version is not None:
            if version not in versions:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {spec.name}")
            versions = {version: versions[version]}
        response = get_model_status_pb2.GetModelStatusResponse()
        for v, st in sorted(versions.items()):
            status = response.model_version_status.add(version=v, state=st.state)
            status.status.error_code = UNKNOWN_CODE if st.error else 0
            status.status.error_message = st.error
        return response
