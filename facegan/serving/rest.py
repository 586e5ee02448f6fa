"""The REST front door: TF Serving's RESTful API (api_rest.md) over the shared Predictor.

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            GetModelStatusResponse as JSON
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   GetModelMetadataResponse as JSON
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    row ("instances") or columnar ("inputs")

Only the wire format lives here: the URL, JSON <-> arrays (TF Serving's one-output/several-output
rules, `{"b64": ...}` for string tensors whose alias ends in `_bytes`) and HTTP status codes.
Resolution, validation, limits, batching, deadlines, metrics and logs are the Predictor's, the
same as for gRPC. HTTP itself is waitress's (see docs/serving.md: concurrency, keep-alive, timeouts, body
limits), never parsed here.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable

import grpc
import numpy as np
from google.protobuf import json_format

from facegan.client.errors import ServingError
from facegan.client.tensors import DT_STRING, DTYPE_NAMES, DTYPES
from facegan.serving.predictor import INVALID, ArrayInput, Predictor
from facegan.serving.servable import Signature
from facegan.serving.service import metadata_response, status_response
from facegan.serving.text import shorten
from facegan.versions import parse_version

# A predict body is at most this: the largest honest one, 64 z vectors of 100 floats as JSON, is
# about 130 KB. It bounds what JSON parsing can cost (a list of a million zeros).
MAX_BODY_BYTES = 4 * 1024 * 1024
REQUEST_TIMEOUT_S = 30.0  # REST has no client deadline: a request waits this long at most in the batch queue
# google.rpc.Code -> HTTP, as TF Serving (and gRPC-gateway) map them
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 411: "Length Required", 413: "Payload Too Large",
           429: "Too Many Requests", 499: "Client Closed Request", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip
ROUTE = re.compile(
    r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[^/:]*))?$"
)


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _json_value(array: np.ndarray, alias: str):
    """An output as nested lists; string tensors as text, or `{"b64": ...}` when the alias ends in _bytes."""
    if array.dtype.kind != "O":
        return array.tolist()
    if alias.endswith("_bytes"):
        encode = lambda b: {"b64": base64.b64encode(b).decode("ascii")}
    else:
        encode = lambda b: b.decode("utf-8", "replace")
    flat = [encode(v) for v in array.ravel()]
    return np.array(flat, dtype=object).reshape(array.shape).tolist() if array.ndim > 1 else flat


def _array(value, alias: str, dtype: int) -> np.ndarray:
    """A JSON value -> an array of the signature's dtype, refusing ragged lists, text or floats where
    numbers or integers belong, and integers out of the dtype's range."""
    if dtype == DT_STRING:

        def text(v):
            if isinstance(v, dict) and set(v) == {"b64"} and isinstance(v["b64"], str):
                return base64.b64decode(v["b64"], validate=True)
            if isinstance(v, str):
                return v.encode("utf-8")
            raise HttpError(400, f"input '{alias}' must hold strings or {{\"b64\": ...}} objects")

        return np.vectorize(text, otypes=[object])(np.asarray(value, dtype=object))
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise HttpError(400, f"input '{alias}' is a ragged list: every row must have the same length") from None
    if array.size == 0:
        return array.astype(DTYPES[dtype][0])
    target = np.dtype(DTYPES[dtype][0])
    allowed = {"i": "iu", "u": "iu", "f": "iuf", "b": "b"}[target.kind]
    if array.dtype.kind not in allowed:
        got = {"f": "floats", "U": "text", "b": "booleans", "O": "mixed values or numbers out of range"}.get(
            array.dtype.kind, str(array.dtype)
        )
        raise HttpError(400, f"input '{alias}' must hold {DTYPE_NAMES[dtype]} values, got {got}")
    if target.kind in "iu":
        info = np.iinfo(target)
        if array.min() < info.min or array.max() > info.max:
            raise HttpError(400, f"input '{alias}' has values outside the {DTYPE_NAMES[dtype]} range")
    return array.astype(target)


def json_inputs(body: dict, signature: Signature) -> dict[str, ArrayInput]:
    """{alias: input} from a predict body (row or columnar format), for this signature."""
    row = "instances" in body
    if row == ("inputs" in body):
        raise HttpError(400, 'a predict body needs exactly one of "instances" (rows) or "inputs" (columns)')
    aliases = list(signature.inputs)
    values = body["instances" if row else "inputs"]
    if row and not isinstance(values, list):
        raise HttpError(400, '"instances" must be a list with one item per row')
    by_alias: dict = {}
    named = isinstance(values, dict) and set(values) != {"b64"}  # a tensor is never an object, but b64 bytes
    if row:
        named = bool(values) and all(isinstance(v, dict) and set(v) != {"b64"} for v in values)
    if len(aliases) == 1 and not named:
        by_alias[aliases[0]] = values
    elif row:
        for i, instance in enumerate(values):
            if not isinstance(instance, dict):
                raise HttpError(400, f"instance {i} must be an object of the inputs {aliases}")
            for alias in set(instance) | set(aliases):
                if alias not in instance or alias not in aliases:
                    raise HttpError(400, f"instance {i} must name exactly the inputs {aliases}")
                by_alias.setdefault(alias, []).append(instance[alias])
    elif isinstance(values, dict):
        by_alias = values
    else:
        raise HttpError(400, f'"inputs" must be an object of the inputs {aliases}')
    known = {alias: value for alias, value in by_alias.items() if alias in signature.inputs}
    inputs = {alias: ArrayInput(_array(value, alias, signature.inputs[alias].dtype), signature.inputs[alias].dtype)
              for alias, value in known.items()}  # fmt: skip
    for alias in set(by_alias) - set(known):  # the Predictor names unexpected inputs
        inputs[alias] = ArrayInput(np.zeros(0), 0)
    return inputs


def json_outputs(outputs: dict[str, np.ndarray], row: bool) -> dict:
    """TF Serving's shapes: one output -> the bare value; several -> an object per row or per alias."""
    if len(outputs) == 1:
        [(alias, array)] = outputs.items()
        return {"predictions" if row else "outputs": _json_value(array, alias)}
    values = {alias: _json_value(array, alias) for alias, array in outputs.items()}
    if not row:
        return {"outputs": values}
    batch = len(next(iter(values.values())))
    return {"predictions": [{alias: v[i] for alias, v in values.items()} for i in range(batch)]}


class RestApp:
    """The WSGI application."""

    def __init__(
        self,
        predictor: Predictor,
        max_body_bytes: int = MAX_BODY_BYTES,
        metrics_path: str | None = None,
    ):
        self.predictor = predictor
        self.max_body_bytes = max_body_bytes
        self.metrics_path = metrics_path  # --monitoring_config_file's prometheus path; None: not served

    def __call__(self, environ, start_response):
        if self.metrics_path is not None and environ.get("PATH_INFO") == self.metrics_path:
            return self._metrics(environ, start_response)
        try:
            status, payload = self.route(environ)
        except HttpError as e:
            status, payload = e.status, {"error": e.message}
        body = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {REASONS.get(status, '')}", headers)
        return [body]

    def _metrics(self, environ, start_response):
        """Prometheus text, as TF Serving serves it at its monitoring path."""
        if environ["REQUEST_METHOD"] != "GET":
            body = json.dumps({"error": "use GET for metrics"}).encode()
            start_response(
                "405 Method Not Allowed", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        body = self.predictor.metrics.page()
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4"), ("Content-Length", str(len(body)))])
        return [body]

    def route(self, environ) -> tuple[int, dict]:
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        match = ROUTE.match(path)
        if not match:
            raise HttpError(404, f"no such endpoint: {shorten(path)} (see /v1/models/<name>)")
        model = match["model"]
        version = None
        if match["version"] is not None:
            version = parse_version(match["version"])
            if version is None:
                raise HttpError(400, f"version must be a decimal number, got {shorten(match['version'])!r}")
        label = match["label"] or ""
        if match["verb"] is not None:
            if match["verb"] != "predict":
                raise HttpError(400, f"verb {shorten(match['verb'])!r} is not supported; facegan serves :predict")
            self._method(method, "POST")
            body = self._body(environ)
            return 200, self._answer("Predict", model, lambda: self._predict(model, version, label, body))
        self._method(method, "GET")
        if match["metadata"]:
            return 200, self._answer("GetModelMetadata", model, lambda: self._metadata(model, version, label))
        return 200, self._answer("GetModelStatus", model, lambda: self._status(model, version, label))

    @staticmethod
    def _method(method: str, allowed: str) -> None:
        if method != allowed:
            raise HttpError(405, f"{method} is not allowed here; use {allowed}")

    def _body(self, environ) -> dict:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HttpError(400, "Content-Length is not a number") from None
        if length > self.max_body_bytes:
            raise HttpError(413, f"the body has {length} bytes; at most {self.max_body_bytes} are accepted")
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as e:
            raise HttpError(400, f"the body is not valid JSON: {shorten(str(e), 120)}") from None
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        return body

    def _answer(self, method: str, model: str, work: Callable[[], dict]) -> dict:
        try:
            with self.predictor.call(method, model, entrypoint="REST"):
                return work()
        except ServingError as e:
            raise HttpError(HTTP_STATUS.get(e.code, 500), e.message) from None

    def _predict(self, model: str, version: int | None, label: str, body: dict) -> dict:
        signature_name = body.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise ServingError(INVALID, '"signature_name" must be a string')

        def inputs(signature: Signature):
            try:
                return json_inputs(body, signature)
            except HttpError as e:  # malformed tensors are the client's error, as on gRPC
                raise ServingError(INVALID, e.message) from None

        prediction = self.predictor.predict(
            model, version, label, signature_name, inputs, [], time.monotonic() + REQUEST_TIMEOUT_S
        )
        return json_outputs(prediction.outputs, row="instances" in body)  # json_inputs checked it is one of two

    def _metadata(self, model: str, version: int | None, label: str) -> dict:
        answered, signature_defs = self.predictor.metadata(model, version, label)
        return _proto_json(metadata_response(model, answered, signature_defs))

    def _status(self, model: str, version: int | None, label: str) -> dict:
        return _proto_json(status_response(self.predictor.status(model, version, label)))


def _proto_json(message) -> dict:
    """protobuf's own JSON mapping, as TF Serving prints it: field names as in the .proto, int64 as
    strings, enum names, fields at their default values included."""
    return json.loads(
        json_format.MessageToJson(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    )


class RestServer:
    """waitress serving RestApp on host:port in a background thread."""

    def __init__(
        self,
        predictor: Predictor,
        host: str,
        port: int,
        threads: int = 8,
        metrics_path: str | None = None,
    ):
        from waitress.server import create_server

        self.app = RestApp(predictor, metrics_path=metrics_path)
        self._server = create_server(
            self.app,
            host=host,
            port=port,
            threads=threads,  # requests answered at once; slow clients are buffered, not given a thread
            channel_timeout=30,  # a connection idle (or trickling) this long is closed
            max_request_body_size=MAX_BODY_BYTES,  # 413 beyond, before the app sees anything
            max_request_header_size=64 * 1024,
            connection_limit=256,
            ident="facegan",
            expose_tracebacks=False,
        )
        self.port = self._server.effective_port
        self._thread = threading.Thread(target=self._server.run, name="facegan-rest", daemon=True)

    def start(self) -> RestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        from waitress import wasyncore

        self._server.close()
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._server._map)
        self._thread.join(timeout=5)
