"""The REST front door: TF Serving's RESTful API (api_rest.md) over the shared Predictor.

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            GetModelStatusResponse as JSON
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   GetModelMetadataResponse as JSON
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    row ("instances") or columnar ("inputs")

Only HTTP lives here: the URL, the body, status codes and headers; JSON <-> arrays is
`json_tensor.py`'s. Resolution, validation, limits, batching, deadlines, metrics and logs are the
Predictor's, the same as for gRPC. HTTP itself is waitress's (see docs/serving.md: concurrency,
keep-alive, timeouts, body limits), never parsed here.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import traceback
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path

import grpc
from google.protobuf import json_format

from facegan.client.errors import ServingError
from facegan.serving.json_tensor import json_inputs, json_outputs
from facegan.serving.options import ServerOptions
from facegan.serving.predictor import INVALID, Predictor
from facegan.serving.rate_limited_log import REQUESTS_LOG
from facegan.serving.request import ModelRef, Request
from facegan.serving.servable import Signature
from facegan.serving.service import metadata_response, status_response
from facegan.serving.text import shorten
from facegan.versions import parse_version

requests_log = logging.getLogger(REQUESTS_LOG)  # client errors, rate-limited (rate_limited_log.py)

# A predict body is at most this: the largest honest one, 64 z vectors of 100 floats as JSON, is
# about 130 KB. It bounds what JSON parsing can cost (a list of a million zeros).
MAX_BODY_BYTES = 4 * 1024 * 1024
# google.rpc.Code -> HTTP, as TF Serving (and gRPC-gateway) map them
CLIENT_CLOSED_REQUEST = 499  # nginx's code for a cancelled request, which TF Serving uses too; not in HTTPStatus
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.FAILED_PRECONDITION: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.OUT_OF_RANGE: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.UNAUTHENTICATED: HTTPStatus.UNAUTHORIZED,
    grpc.StatusCode.PERMISSION_DENIED: HTTPStatus.FORBIDDEN,
    grpc.StatusCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: HTTPStatus.CONFLICT,
    grpc.StatusCode.ABORTED: HTTPStatus.CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: HTTPStatus.TOO_MANY_REQUESTS,
    grpc.StatusCode.CANCELLED: CLIENT_CLOSED_REQUEST,
    grpc.StatusCode.UNIMPLEMENTED: HTTPStatus.NOT_IMPLEMENTED,
    grpc.StatusCode.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: HTTPStatus.GATEWAY_TIMEOUT,
}
ROUTE = re.compile(
    r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[^/:]*))?$"
)


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# TF Serving's --rest_api_enable_cors_support adds these to every answer of its REST API
# (model_servers/http_rest_api_util.cc, AddCORSHeaders)
CORS_HEADERS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, GET"),
    ("Access-Control-Allow-Headers", "Content-Type"),
]


def respond(
    start_response, status: int, body: bytes, content_type: str = "application/json", headers: list | None = None
) -> list[bytes]:
    """Every response: the status line with its reason phrase, the type and the length."""
    reason = "Client Closed Request" if status == CLIENT_CLOSED_REQUEST else HTTPStatus(status).phrase
    start_response(
        f"{int(status)} {reason}",
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])],
    )
    return [body]


class RestApp:
    """The WSGI application."""

    def __init__(
        self,
        predictor: Predictor,
        max_body_bytes: int = MAX_BODY_BYTES,
        metrics_path: str | None = None,
        timeout_s: float = ServerOptions.rest_timeout_s,
        cors: bool = False,
    ):
        self.predictor = predictor
        self.cors = cors  # CORS_HEADERS on every answer under /v1/models, as TF Serving's flag does
        self.timeout_s = timeout_s  # every request's deadline: in the batch queue, a projection's wait and run
        self.max_body_bytes = max_body_bytes
        self.metrics_path = metrics_path  # --monitoring_config_file's prometheus path; None: not served

    def __call__(self, environ, start_response):
        if self.metrics_path is not None and environ.get("PATH_INFO") == self.metrics_path:
            return self._metrics(environ, start_response)
        api = ROUTE.match(environ.get("PATH_INFO", "")) is not None
        headers = CORS_HEADERS if self.cors and api else []
        if api and environ["REQUEST_METHOD"] == "OPTIONS":  # a CORS preflight, answered as TF Serving does
            if re.search(r"https?://", environ.get("HTTP_ORIGIN", "")):
                return respond(start_response, HTTPStatus.OK, b"", headers=headers)
            body = json.dumps({"error": "Origin header is missing in CORS preflight"}).encode()
            return respond(start_response, HTTPStatus.BAD_REQUEST, body, headers=headers)
        try:
            status, payload = self.route(environ)
        except HttpError as e:
            status, payload = e.status, {"error": e.message}
        except Exception as e:  # a bug: a short 500 and one rate-limited line, never waitress's traceback
            where = traceback.extract_tb(e.__traceback__)[-1]
            requests_log.log(
                logging.ERROR,
                "REST %s %s failed at %s:%d: %s",
                environ.get("REQUEST_METHOD", "?"),
                shorten(environ.get("PATH_INFO", "")),
                Path(where.filename).name,
                where.lineno,
                shorten(f"{type(e).__name__}: {e}", 200),
            )
            status, payload = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error (logged by the server)"}
        return respond(start_response, status, json.dumps(payload).encode(), headers=headers)

    def _metrics(self, environ, start_response):
        """Prometheus text, as TF Serving serves it at its monitoring path."""
        if environ["REQUEST_METHOD"] != "GET":
            body = json.dumps({"error": "use GET for metrics"}).encode()
            return respond(start_response, HTTPStatus.METHOD_NOT_ALLOWED, body)
        return respond(start_response, HTTPStatus.OK, self.predictor.metrics.page(), "text/plain; version=0.0.4")

    def route(self, environ) -> tuple[int, dict]:
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        match = ROUTE.match(path)
        if not match:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no such endpoint: {shorten(path)} (see /v1/models/<name>)")
        ref = self._model_ref(match)
        if match["verb"] is not None:
            if match["verb"] not in ("predict", "classify", "regress"):
                raise HttpError(
                    HTTPStatus.BAD_REQUEST, f"verb {shorten(match['verb'])!r} is not supported; facegan serves :predict"
                )
            self._method(method, "POST")
            body = self._body(environ)
            if match["verb"] != "predict":  # TF Serving's answer for a model without such signatures: a 400
                verb = match["verb"]
                signature = body.get("signature_name", "")
                signature = signature if isinstance(signature, str) else ""
                call = "Classify" if verb == "classify" else "Regress"
                return HTTPStatus.OK, self._answer(
                    call, ref, lambda: self.predictor.refuse_inference(ref, signature, verb)
                )
            return HTTPStatus.OK, self._answer("Predict", ref, lambda: self._predict(ref, body))
        self._method(method, "GET")
        if match["metadata"]:
            return HTTPStatus.OK, self._answer("GetModelMetadata", ref, lambda: self._metadata(ref))
        return HTTPStatus.OK, self._answer("GetModelStatus", ref, lambda: self._status(ref))

    @staticmethod
    def _model_ref(match: re.Match) -> ModelRef:
        """The model the URL means: /versions/N, /labels/L, or (neither) the latest."""
        if match["version"] is not None:
            version = parse_version(match["version"])
            if version is None:
                message = f"version must be a decimal number, got {shorten(match['version'])!r}"
                raise HttpError(HTTPStatus.BAD_REQUEST, message)
            return ModelRef(match["model"], version=version)
        return ModelRef(match["model"], label=match["label"] or "")

    @staticmethod
    def _method(method: str, allowed: str) -> None:
        if method != allowed:
            raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here; use {allowed}")

    def _body(self, environ) -> dict:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number") from None
        if length > self.max_body_bytes:
            raise HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body has {length} bytes; at most {self.max_body_bytes} are accepted",
            )
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as e:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {shorten(str(e), 120)}") from None
        if not isinstance(body, dict):
            raise HttpError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return body

    def _answer(self, method: str, ref: ModelRef, work: Callable[[], dict]) -> dict:
        try:
            with self.predictor.accounted(method, ref.name, entrypoint="REST"):
                return work()
        except ServingError as e:
            raise HttpError(HTTP_STATUS.get(e.code, HTTPStatus.INTERNAL_SERVER_ERROR), e.message) from None

    def _predict(self, ref: ModelRef, body: dict) -> dict:
        signature_name = body.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise ServingError(INVALID, '"signature_name" must be a string')

        def read_inputs(signature: Signature):  # malformed tensors raise INVALID_ARGUMENT, as on gRPC
            return json_inputs(body, signature)

        # waitress does not say when a client leaves: the deadline alone ends an abandoned call
        request = Request(ref, signature_name, deadline=time.monotonic() + self.timeout_s)
        prediction = self.predictor.predict(request, read_inputs)
        return json_outputs(prediction.outputs, row="instances" in body)  # json_inputs checked it is one of two

    def _metadata(self, ref: ModelRef) -> dict:
        answered, signature_defs = self.predictor.metadata(ref)
        return _proto_json(metadata_response(ref.name, answered, signature_defs))

    def _status(self, ref: ModelRef) -> dict:
        return _proto_json(status_response(self.predictor.status(ref)))


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
        timeout_s: float = ServerOptions.rest_timeout_s,
        cors: bool = False,
    ):
        from waitress.adjustments import Adjustments
        from waitress.task import ThreadedTaskDispatcher

        from facegan.serving.http_guard import CHECK_EVERY_S, GuardedServer

        self.app = RestApp(predictor, metrics_path=metrics_path, timeout_s=timeout_s, cors=cors)
        self._sockets: dict = {}  # waitress's socket map: ours, so stop() can close every connection in it
        adjustments = Adjustments(
            host=host,
            port=port,
            threads=threads,  # requests answered at once; slow clients are buffered, not given a thread
            channel_timeout=30,  # a connection idle this long is closed (trickling: http_guard.py)
            cleanup_interval=CHECK_EVERY_S,  # how often idle connections and http_guard's deadlines are checked
            # 413 beyond MAX_BODY_BYTES, before the app sees anything (waitress refuses a body of
            # this size itself, so one byte more lets exactly MAX_BODY_BYTES through to the app)
            max_request_body_size=MAX_BODY_BYTES + 1,
            max_request_header_size=64 * 1024,
            connection_limit=256,  # at the limit, http_guard.py closes the longest-waiting unfinished request
            ident="facegan",
            expose_tracebacks=False,
        )
        # waitress logs "Task queue depth is N" for every request that waits for a worker: under
        # load that is a line per request, which the rate-limited log exists to prevent.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(threads)
        try:
            self._server = GuardedServer(
                self.app, self._sockets, dispatcher=dispatcher, adj=adjustments, sockinfo=adjustments.listen[0]
            )
        except BaseException:  # the port is busy: the worker threads started above must not outlive this
            dispatcher.shutdown()
            raise
        self.port = self._server.effective_port
        self._thread = threading.Thread(target=self._server.run, name="facegan-rest", daemon=True)

    def start(self) -> RestServer:
        self._thread.start()
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop listening; let the requests in progress be answered, for up to grace_s (computed
        and sent: the loop keeps running meanwhile); then end the worker threads and close every
        connection, and the server's loop, its socket map empty, returns. Sockets are closed inside
        the loop's own thread (waitress's trigger runs a function there): closed from here, a
        descriptor could vanish while the loop's select() holds it, and the loop thread would die
        with EBADF."""
        from waitress import wasyncore

        # the listening socket only: waitress's own close() also closes the trigger, and answers
        # finished after that could not wake the loop to be sent
        self._in_loop(lambda: wasyncore.dispatcher.close(self._server))
        end = time.monotonic() + grace_s
        while self._answering() and time.monotonic() < end:
            time.sleep(0.05)
        self._server.task_dispatcher.shutdown()
        self._in_loop(lambda: wasyncore.close_all(self._sockets))
        if self._thread.ident is not None:  # never started: nothing to join (Server's failed start)
            self._thread.join(timeout=5)

    def _answering(self) -> bool:
        """A request is being computed or waits for a worker, or an answer is still unsent. (A
        connection in the middle of sending its request is not: it is closed unanswered.)"""
        dispatcher = self._server.task_dispatcher
        with dispatcher.lock:
            if dispatcher.queue or dispatcher.active_count:
                return True
        connections = list(self._sockets.values())
        return any(getattr(c, "requests", None) or getattr(c, "total_outbufs_len", 0) for c in connections)

    def _in_loop(self, action) -> None:
        """Run `action` in the event loop's thread, and wait for it; directly when no loop runs."""
        if not self._thread.is_alive():
            action()
            return
        done = threading.Event()

        def run_then_signal():
            try:
                action()
            finally:
                done.set()

        try:
            self._server.trigger.pull_trigger(run_then_signal)
        except OSError as e:  # the wake-up pipe is gone (see GuardedServer.run): act from here
            requests_log.log(
                logging.WARNING, "REST: cannot wake the event loop (%s); stopping it from outside", e.strerror
            )
            action()
            return
        if not done.wait(timeout=5):  # a loop stuck elsewhere: act from here, as waitress itself would
            requests_log.log(
                logging.WARNING, "REST: the event loop did not answer within 5 s; stopping it from outside"
            )
            action()
