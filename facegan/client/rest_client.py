"""RestClient: FaceClient's calls over TF Serving's REST API (`http://host:8501`), stdlib only.

For clients that can reach only the REST port (a proxy, a browser-facing gateway). The answers
are the same arrays as over gRPC; failures raise the same ServingError, with the gRPC code that
TF Serving's HTTP status stands for.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request

import grpc
import numpy as np

from facegan.client.errors import ServingError
from facegan.client.face_client import VersionStatus

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


class RestClient:
    """One model behind a REST base URL. The same methods and errors as FaceClient."""

    def __init__(
        self,
        base_url: str,
        model: str = "facegan",
        timeout: float = 10.0,
        tls: bool | str | None = None,
        version: int | None = None,
        label: str | None = None,
        retries: int = 3,
    ):
        if version is not None and label:
            raise ValueError("pin a version or a label, not both")
        self.address = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.retries = retries
        self._context = ssl.create_default_context(cafile=tls) if isinstance(tls, str) else None
        path = f"{self.address}/v1/models/{urllib.request.quote(model, safe='')}"
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label:
            path += f"/labels/{urllib.request.quote(label, safe='')}"
        self._model_url = path

    def close(self) -> None:
        pass  # urllib opens a connection per call

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

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

    def predict(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Columnar request; the outputs as an {alias: value} object, or one bare output."""
        body = {"signature_name": signature, "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}
        outputs = self._call(":predict", body)["outputs"]
        return outputs if isinstance(outputs, dict) else {"": outputs}

    def generate(self, z) -> np.ndarray:
        z = np.asarray(z, np.float32)
        if z.ndim == 1:
            z = z[None]
        [images] = self.predict("serving_default", {"z": z}).values()
        return np.asarray(images, np.uint8)

    def from_seeds(self, seeds) -> tuple[np.ndarray, np.ndarray]:
        out = self.predict("from_seed", {"seed": np.asarray(seeds, np.int64).reshape(-1)})
        return np.asarray(out["images"], np.uint8), np.asarray(out["z"], np.float32)

    def metadata(self) -> dict:
        """{"version": N, "signatures": {name: {"inputs"|"outputs": {alias: (dtype, shape)}}}}."""
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

    def wait_until_available(self, timeout: float = 60.0) -> list[VersionStatus]:
        end = time.monotonic() + timeout
        while True:
            try:
                versions = self.status()
                if any(v.state == "AVAILABLE" for v in versions):
                    return versions
            except ServingError as e:
                if e.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND) or time.monotonic() > end:
                    raise
            if time.monotonic() > end:
                raise ServingError(
                    grpc.StatusCode.DEADLINE_EXCEEDED, f"{self.address}: no version of {self.model} became available"
                )
            time.sleep(0.2)


def connect(server: str, model: str = "facegan", **options):
    """A client for `server`: RestClient for an http:// or https:// URL, else FaceClient (gRPC host:port)."""
    if server.startswith(("http://", "https://")):
        return RestClient(server, model, **options)
    from facegan.client.face_client import FaceClient

    return FaceClient(server, model, **options)
