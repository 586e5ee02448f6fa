"""RestClient: FaceClient's calls over TF Serving's REST API (`http://host:8501`), stdlib only.

For clients that can reach only the REST port (a proxy, a browser-facing gateway). The answers
are the same arrays as over gRPC; failures raise the same ServingError, with the gRPC code that
TF Serving's HTTP status stands for.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request

import grpc
import numpy as np

from facegan.client.errors import ServingError
from facegan.client.model_client import ModelClient, VersionStatus
from facegan.versions import DEFAULT_MODEL_NAME

FROM_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
MAX_RESPONSE_BYTES = 256 * 1024 * 1024  # 64 faces at 128 px as JSON numbers are about 13 MB


def _dtype_name(text: str) -> str:
    """ "DT_FLOAT" -> "float32", as FaceClient.metadata names dtypes."""
    names = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_INT64": "int64", "DT_INT32": "int32",
             "DT_UINT8": "uint8", "DT_STRING": "string", "DT_BOOL": "bool"}  # fmt: skip
    return names.get(text, text)


def _from_json(value) -> np.ndarray:
    """An output's JSON value as an array; `{"b64": ...}` items (string tensors) as bytes."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        array = np.empty(len(value), dtype=object)
        array[:] = [base64.b64decode(v["b64"]) for v in value]
        return array
    return np.asarray(value)


class RestClient(ModelClient):
    """One model behind a REST base URL (see ModelClient). `tls`: a CA file for https:// servers."""

    def __init__(self, base_url: str, model: str = DEFAULT_MODEL_NAME, **options):
        super().__init__(base_url.rstrip("/"), model, **options)

    def _open(self) -> None:
        self._context = ssl.create_default_context(cafile=self.tls) if isinstance(self.tls, str) else None
        if self.client_cert:
            self._context = self._context or ssl.create_default_context()
            self._context.load_cert_chain(*self.client_cert)
        path = f"{self.address}/v1/models/{urllib.request.quote(self.model, safe='')}"
        if self.version is not None:
            path += f"/versions/{int(self.version)}"
        elif self.label:
            path += f"/labels/{urllib.request.quote(self.label, safe='')}"
        self._model_url = path
        self._outputs: dict[str, list[str]] = {}  # signature -> output aliases, from the metadata

    def _call(self, suffix: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._model_url + suffix, data=data, method="GET" if data is None else "POST")
        request.add_header("Content-Type", "application/json")
        deadline = time.monotonic() + self.timeout
        for attempt in range(self.retries + 1):
            try:
                timeout = max(deadline - time.monotonic(), 0.001)
                with urllib.request.urlopen(request, timeout=timeout, context=self._context) as response:
                    return json.loads(response.read(MAX_RESPONSE_BYTES))
            except urllib.error.HTTPError as e:
                code = FROM_HTTP.get(e.code, grpc.StatusCode.INTERNAL)
                try:
                    message = json.loads(e.read(65536))["error"]
                except (ValueError, KeyError, TypeError):
                    message = f"HTTP {e.code} {e.reason}"
                if code != grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise ServingError(code, f"{self.address}: {message}") from None
            except (urllib.error.URLError, OSError) as e:  # refused, reset, timed out
                reason = getattr(e, "reason", e)
                if attempt == self.retries or time.monotonic() >= deadline:
                    raise ServingError(grpc.StatusCode.UNAVAILABLE, f"{self.address}: {reason}") from None
            backoff = 0.1 * 2**attempt
            if time.monotonic() + backoff >= deadline:
                raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, f"{self.address}: no answer in time")
            time.sleep(backoff)
        raise AssertionError("unreachable")

    def predict(self, signature: str, inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = ()) -> dict:
        """Columnar request: {alias: array}; a single bare output comes back under its requested name.
        (REST has no output filter: every output of the signature is sent.)"""
        body = {"signature_name": signature, "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}
        answer = self._call(":predict", body)["outputs"]
        if not isinstance(answer, dict):  # one output comes back bare: name it
            answer = {outputs[0] if outputs else self._output_aliases(signature)[0]: answer}
        return {alias: _from_json(value) for alias, value in answer.items()}

    def _output_aliases(self, signature: str) -> list[str]:
        if signature not in self._outputs:
            named = self.metadata()["signatures"].get(signature or "serving_default", {}).get("outputs", {})
            self._outputs[signature] = list(named) or [""]
        return self._outputs[signature]

    def metadata(self) -> dict:
        response = self._call("/metadata")
        signatures = response["metadata"]["signature_def"]["signature_def"]

        def tensors(infos):
            return {
                alias: (_dtype_name(info["dtype"]), [int(d["size"]) for d in info["tensor_shape"].get("dim", [])])
                for alias, info in sorted(infos.items())
            }

        return {
            "version": int(response["model_spec"]["version"]),
            "signatures": {
                name: {"inputs": tensors(sig.get("inputs", {})), "outputs": tensors(sig.get("outputs", {}))}
                for name, sig in sorted(signatures.items())
                if not name.startswith("__")
            },
        }

    def status(self) -> list[VersionStatus]:
        return [
            VersionStatus(int(s["version"]), s["state"], s.get("status", {}).get("error_message", ""))
            for s in self._call("")["model_version_status"]
        ]


def connect(server: str, model: str = DEFAULT_MODEL_NAME, **options):
    """A client for `server`: RestClient for an http:// or https:// URL, else FaceClient (gRPC host:port)."""
    if server.startswith(("http://", "https://")):
        return RestClient(server, model, **options)
    from facegan.client.face_client import FaceClient

    return FaceClient(server, model, **options)
