"""The gRPC front door: TF Serving's PredictionService and ModelService over the shared Predictor.

Only the wire format lives here: TensorProtos in and out, ModelSpecs, the SignatureDefMap in an
Any, and request parsing that cannot fail into INTERNAL. What is valid, and what answers, is
decided once, in predictor.py, for gRPC and REST alike.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import grpc
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
)

from facegan.client.errors import ServingError
from facegan.client.tensors import from_numpy
from facegan.serving.predictor import INVALID, Predictor
from facegan.serving.request import DEFAULT_SIGNATURE, ModelRef, Request, grpc_client_gone_hook
from facegan.serving.text import shorten

UNKNOWN_CODE = grpc.StatusCode.UNKNOWN.value[0]  # tensorflow.error.Code uses gRPC's numbers


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
    """One gRPC call through Predictor.call (metrics, log); a ServingError becomes its status."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        model = "" if isinstance(request, Undecodable) else _model_name(request)
        try:
            with self.predictor.accounted(method.__name__, model):
                if isinstance(request, Undecodable):
                    raise ServingError(INVALID, f"the request is not a valid {request.message_name}")
                return method(self, request, context)
        except ServingError as e:
            context.abort(e.code, e.message)

    return wrapper


def _model_name(request) -> str:
    """The model a request names (MultiInference: its first task's), for the metrics and the log."""
    if request.DESCRIPTOR.fields_by_name.get("model_spec") is not None:
        return request.model_spec.name
    return request.tasks[0].model_spec.name if request.tasks else ""


def model_ref(spec) -> ModelRef:
    """The model a ModelSpec means: a pinned version, a label, or (neither) the latest."""
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return ModelRef(spec.name, version=spec.version.value)
    if choice == "version_label":
        return ModelRef(spec.name, label=spec.version_label)
    return ModelRef(spec.name)


class PredictionService:
    def __init__(self, predictor: Predictor, typed_fields: bool = False):
        self.predictor = predictor
        self.typed_fields = typed_fields

    @_rpc
    def Predict(self, request, context):
        spec = request.model_spec
        remaining = context.time_remaining()
        call = Request(
            model_ref(spec),
            spec.signature_name,
            tuple(request.output_filter),
            deadline=None if remaining is None else time.monotonic() + remaining,
            on_client_gone=grpc_client_gone_hook(context),
        )
        # TensorProtos: validated against any signature as they are
        prediction = self.predictor.predict(call, lambda signature: request.inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = prediction.version
        response.model_spec.signature_name = prediction.signature
        for alias, array in prediction.outputs.items():
            response.outputs[alias].CopyFrom(from_numpy(array, tensor_pb2.TensorProto, self.typed_fields))
        return response

    @_rpc
    def Classify(self, request, context):
        self.predictor.refuse_inference(model_ref(request.model_spec), request.model_spec.signature_name, "classify")

    @_rpc
    def Regress(self, request, context):
        self.predictor.refuse_inference(model_ref(request.model_spec), request.model_spec.signature_name, "regress")

    @_rpc
    def MultiInference(self, request, context):
        """TF Serving's checks of the tasks (multi_inference.cc), then each task as Classify or
        Regress: no facegan signature classifies or regresses."""
        if not request.tasks:
            raise ServingError(INVALID, "Expected at least one task")
        names = {task.model_spec.name for task in request.tasks}
        if "" in names:
            raise ServingError(INVALID, "Found ModelSpec with an empty model name.")
        if len(names) > 1:
            raise ServingError(INVALID, "All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        seen = set()
        for task in request.tasks:
            signature = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if signature in seen:
                raise ServingError(INVALID, f"Duplicate evaluation of signature: {shorten(signature)}")
            seen.add(signature)
        for task in request.tasks:
            method = task.method_name.removeprefix("tensorflow/serving/")
            if method not in ("classify", "regress"):
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED, f"Unsupported signature method_name: {shorten(task.method_name)}"
                )
            self.predictor.refuse_inference(model_ref(task.model_spec), task.model_spec.signature_name, method)

    @_rpc
    def GetModelMetadata(self, request, context):
        fields = set(request.metadata_field)
        if not fields:
            raise ServingError(INVALID, "GetModelMetadataRequest must specify at least one metadata_field")
        if fields != {"signature_def"}:
            unsupported = sorted(fields - {"signature_def"})
            raise ServingError(INVALID, f"Metadata field {shorten(unsupported[0])} is not supported")
        spec = request.model_spec
        version, signature_defs = self.predictor.metadata(model_ref(spec))
        return metadata_response(spec.name, version, signature_defs)


def metadata_response(model: str, version: int, signature_defs):
    """GetModelMetadataResponse with the SignatureDefMap packed in `metadata["signature_def"]`."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = model
    response.model_spec.version.value = version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, value in signature_defs.items():
        signature_map.signature_def[key].CopyFrom(value)
    response.metadata["signature_def"].Pack(signature_map)
    return response


def status_response(versions: dict):
    """GetModelStatusResponse for {version: VersionState}."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for v, st in sorted(versions.items()):
        status = response.model_version_status.add(version=v, state=st.state)
        status.status.error_code = UNKNOWN_CODE if st.error else 0
        status.status.error_message = st.error
    return response


class ModelService:
    def __init__(self, predictor: Predictor, reload_config: Callable[[object], None]):
        self.predictor = predictor
        self.reload_config = reload_config  # Server.reload_config: a ModelServerConfig -> served, or ServingError

    @_rpc
    def GetModelStatus(self, request, context):
        spec = request.model_spec
        return status_response(self.predictor.status(model_ref(spec)))

    def HandleReloadConfigRequest(self, request, context):
        """TF Serving's way to change what is served without a restart (model_service_impl.cc): a
        model_config_list replaces the running one, checked as a config-file edit is. Anyone who
        reaches the gRPC port may call it, as in TF Serving (docs/serving.md says so)."""
        try:
            with self.predictor.accounted("HandleReloadConfigRequest", ""):
                if isinstance(request, Undecodable):
                    raise ServingError(INVALID, f"the request is not a valid {request.message_name}")
                if request.config.WhichOneof("config") != "model_config_list":
                    raise ServingError(
                        INVALID,
                        "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                        "Only ModelConfigList is currently supported",
                    )
                self.reload_config(request.config)
        except ServingError as e:
            context.abort(e.code, e.message)
        return model_management_pb2.ReloadConfigResponse()


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
                "Classify": unary(
                    prediction.Classify,
                    classification_pb2.ClassificationRequest,
                    classification_pb2.ClassificationResponse,
                ),
                "Regress": unary(
                    prediction.Regress, regression_pb2.RegressionRequest, regression_pb2.RegressionResponse
                ),
                "MultiInference": unary(
                    prediction.MultiInference,
                    inference_pb2.MultiInferenceRequest,
                    inference_pb2.MultiInferenceResponse,
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
                "HandleReloadConfigRequest": unary(
                    models.HandleReloadConfigRequest,
                    model_management_pb2.ReloadConfigRequest,
                    model_management_pb2.ReloadConfigResponse,
                ),
            },
        ),
    ]
