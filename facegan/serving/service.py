"""PredictionService and ModelService with TF Serving's documented semantics and status codes."""

from __future__ import annotations

import functools
import logging
import time

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from facegan.client.errors import ServingError
from facegan.client.protocol import DEFAULT_MAX_BATCH, MAX_MESSAGE_BYTES
from facegan.client.tensors import TensorError, declared_shape, dtype_name, from_numpy, to_numpy
from facegan.serving.manager import ModelManager
from facegan.serving.metrics import ServerMetrics
from facegan.serving.servable import Signature
from facegan.serving.text import RateLimitedLog, shorten

log = logging.getLogger("facegan.serve")
INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNKNOWN_CODE = grpc.StatusCode.UNKNOWN.value[0]  # tensorflow.error.Code uses gRPC's numbers


OTHER_MODEL = "_other"  # the metric label of every model name the server does not serve
requests_log = RateLimitedLog(log)  # client errors: a flood of bad requests costs a few lines


class Undecodable:
    """A request body that is not the message it should be (gRPC would answer INTERNAL)."""

    def __init__(self, message_name: str):
        self.message_name = message_name


def lenient(message_class):
    """A request deserializer that turns bytes that do not parse into Undecodable."""

    def parse(data: bytes):
        try:
            return message_class.FromString(data)
        except Exception:  # DecodeError, or a nested message that does not parse
            return Undecodable(message_class.DESCRIPTOR.full_name)

    return parse


def _rpc(method):
    """Turn ServingError into the RPC's status; count, time and log every call. Metric labels and
    log lines carry a model name only when the server serves that model, so clients that invent
    names cannot grow /metrics or the log."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        name = "" if isinstance(request, Undecodable) else request.model_spec.name
        model = name if name in self.manager.sources else OTHER_MODEL
        try:
            if isinstance(request, Undecodable):
                raise ServingError(INVALID, f"the request is not a valid {request.message_name}")
            return method(self, request, context)
        except ServingError as e:
            code = e.code
            requests_log.log(logging.WARNING, "%s %s: %s", method.__name__, shorten(name), e)
            context.abort(e.code, e.message)
        except Exception as e:  # a bug or a failing model: INTERNAL, never a hung client
            code = grpc.StatusCode.INTERNAL
            log.exception("%s %s failed", method.__name__, shorten(name))
            context.abort(code, shorten(f"{type(e).__name__}: {e}", 300))
        finally:
            self.metrics.requests.labels(method.__name__, model, code.name).inc()
            self.metrics.latency.labels(method.__name__, model).observe(time.perf_counter() - start)

    return wrapper


def requested_version(spec) -> tuple[int | None, str]:
    """(version, label) a ModelSpec asks for: (N, "") pinned, (None, "stable") labelled, (None, "") the latest."""
    choice = spec.WhichOneof("version_choice")
    return (spec.version.value, "") if choice == "version" else (None, spec.version_label if choice else "")


def _names(names: list[str], limit: int = 5) -> str:
    """A few client-supplied names, each shortened: an error never echoes a flood back."""
    shown = [shorten(n) for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{shown}{more}"


def validate_inputs(signature: Signature, given, max_batch: int) -> dict[str, np.ndarray]:
    """Decoded inputs that match the signature exactly, or INVALID_ARGUMENT naming the input.

    Dtype, rank, every fixed dimension and the batch size are checked on the shape the request
    declares, before any array is built, so a small request that claims a huge tensor costs
    nothing; then decoding checks the claim against the bytes or values actually sent."""
    missing = sorted(set(signature.inputs) - set(given))
    extra = sorted(set(given) - set(signature.inputs))
    if missing or extra:
        raise ServingError(
            INVALID, f"inputs do not match the signature: missing {_names(missing)}, unexpected {_names(extra)}"
        )
    arrays = {}
    batch = None
    for alias, spec in signature.inputs.items():
        proto = given[alias]
        if proto.dtype != spec.dtype:
            raise ServingError(
                INVALID, f"input '{alias}' must be {dtype_name(spec.dtype)}, got {dtype_name(proto.dtype)}"
            )
        try:
            shape = declared_shape(proto)
        except TensorError as e:
            raise ServingError(INVALID, f"input '{alias}': {e}") from None
        if spec.shape is not None and (
            len(shape) != len(spec.shape) or any(want not in (-1, got) for want, got in zip(spec.shape, shape))
        ):
            raise ServingError(INVALID, f"input '{alias}' must have shape {list(spec.shape)}, got {shape}")
        if not shape:
            raise ServingError(INVALID, f"input '{alias}' needs a batch dimension")
        if batch is not None and shape[0] != batch:
            raise ServingError(INVALID, f"input '{alias}' has batch size {shape[0]}, other inputs {batch}")
        batch = shape[0]
        if not 1 <= batch <= max_batch:
            raise ServingError(INVALID, f"input '{alias}' has batch size {batch}; this server allows 1..{max_batch}")
        try:
            # No honest request carries more values than bytes (a signature with free inner dims)
            array = to_numpy(proto, max_elements=MAX_MESSAGE_BYTES)
        except TensorError as e:
            raise ServingError(INVALID, f"input '{alias}': {e}") from None
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ServingError(INVALID, f"input '{alias}' contains NaN or infinite values")
        arrays[alias] = array
    return arrays


class PredictionService:
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
                raise ServingError(
                    grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{shorten(name)}" not found.'
                )
            unknown = sorted(set(request.output_filter) - set(signature.outputs))
            if unknown:
                raise ServingError(INVALID, f"output tensor alias not found in signature: {_names(unknown)}")
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
            unsupported = sorted(fields - {"signature_def"})
            raise ServingError(INVALID, f"Metadata field {shorten(unsupported[0])} is not supported")
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


class ModelService:
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
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {shorten(spec.name)}"
                )
            versions = {version: versions[version]}
        response = get_model_status_pb2.GetModelStatusResponse()
        for v, st in sorted(versions.items()):
            status = response.model_version_status.add(version=v, state=st.state)
            status.status.error_code = UNKNOWN_CODE if st.error else 0
            status.status.error_message = st.error
        return response


def generic_handlers(prediction: PredictionService, models: ModelService) -> list[grpc.GenericRpcHandler]:
    """TF Serving's two services, with request parsing that cannot fail into INTERNAL."""

    def unary(behavior, request_class, response_class):
        return grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=lenient(request_class), response_serializer=response_class.SerializeToString
        )

    return [
        grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService",
            {
                "Predict": unary(prediction.Predict, predict_pb2.PredictRequest, predict_pb2.PredictResponse),
                "GetModelMetadata": unary(
                    prediction.GetModelMetadata,
                    get_model_metadata_pb2.GetModelMetadataRequest,
                    get_model_metadata_pb2.GetModelMetadataResponse,
                ),
            },
        ),
        grpc.method_handlers_generic_handler(
            "tensorflow.serving.ModelService",
            {
                "GetModelStatus": unary(
                    models.GetModelStatus,
                    get_model_status_pb2.GetModelStatusRequest,
                    get_model_status_pb2.GetModelStatusResponse,
                ),
            },
        ),
    ]
