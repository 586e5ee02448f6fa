"""FaceClient: faces from a TF Serving-compatible gRPC server (`facegan serve` or tensorflow/serving).

Needs only grpcio, protobuf and NumPy: importing it does not load TensorFlow.

    client = FaceClient("localhost:8500")
    faces, z = client.from_seeds([0, 1, 2])     # uint8 [3, H, W, 3], float32 [3, latent_dim]
    faces = client.generate(0.7 * z)            # the same seeds, truncated
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import numpy as np

from facegan.client import protocol
from facegan.client.errors import ServingError
from facegan.client.model_client import ModelClient, VersionStatus
from facegan.client.tensors import TensorError, dtype_name, from_numpy, shape_of, to_numpy


class FaceClient(ModelClient):
    """One gRPC channel to one model (see ModelClient for pinning, deadlines and retries).

    tls: None (plain), True (TLS with the system's root certificates) or a CA certificate path.
    """

    def _open(self) -> None:
        if self.tls:
            roots = None if self.tls is True else Path(self.tls).read_bytes()
            if self.client_cert:
                cert, key = (Path(p).read_bytes() for p in self.client_cert)
                credentials = grpc.ssl_channel_credentials(roots, private_key=key, certificate_chain=cert)
            else:
                credentials = grpc.ssl_channel_credentials(roots)
            self._channel = grpc.secure_channel(self.address, credentials, options=protocol.CLIENT_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(self.address, options=protocol.CLIENT_OPTIONS)
        self._tensor = protocol.message("tensorflow.TensorProto")

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request, response_name: str):
        rpc = self._channel.unary_unary(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=protocol.message(response_name).FromString,
        )
        deadline = time.monotonic() + self.timeout
        for attempt in range(self.retries + 1):
            try:
                return rpc(request, timeout=max(deadline - time.monotonic(), 0.001))
            except grpc.RpcError as e:
                backoff = 0.1 * 2**attempt
                if (
                    e.code() != grpc.StatusCode.UNAVAILABLE
                    or attempt == self.retries
                    or time.monotonic() + backoff >= deadline
                ):
                    raise ServingError(e.code(), f"{self.address}: {e.details()}") from None
                time.sleep(backoff)

    def _spec(self, message, signature: str = ""):
        spec = message.model_spec
        spec.name = self.model
        if signature:
            spec.signature_name = signature
        if self.version is not None:
            spec.version.value = self.version
        elif self.label:
            spec.version_label = self.label
        return message

    def predict(
        self, signature: str, inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = ()
    ) -> dict[str, np.ndarray]:
        request = self._spec(protocol.message("tensorflow.serving.PredictRequest")(), signature)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(from_numpy(value, self._tensor))
        request.output_filter.extend(outputs)
        response = self._call(protocol.PREDICT, request, "tensorflow.serving.PredictResponse")
        try:
            return {key: to_numpy(proto) for key, proto in response.outputs.items()}
        except TensorError as e:
            raise ServingError(grpc.StatusCode.INTERNAL, f"{self.address}: bad response tensor: {e}") from None

    def metadata(self) -> dict:
        request = self._spec(protocol.message("tensorflow.serving.GetModelMetadataRequest")())
        request.metadata_field.append("signature_def")
        response = self._call(protocol.GET_MODEL_METADATA, request, "tensorflow.serving.GetModelMetadataResponse")
        signature_map = protocol.message("tensorflow.serving.SignatureDefMap")()
        if not response.metadata["signature_def"].Unpack(signature_map):
            raise ServingError(grpc.StatusCode.INTERNAL, f"{self.address}: metadata is not a SignatureDefMap")

        def tensors(infos):
            return {k: (dtype_name(v.dtype), shape_of(v)) for k, v in sorted(infos.items())}

        return {
            "version": response.model_spec.version.value,
            "signatures": {
                name: {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}
                for name, sig in sorted(signature_map.signature_def.items())
                if not name.startswith("__")
            },
        }

    def status(self) -> list[VersionStatus]:
        request = self._spec(protocol.message("tensorflow.serving.GetModelStatusRequest")())
        response = self._call(protocol.GET_MODEL_STATUS, request, "tensorflow.serving.GetModelStatusResponse")
        return [
            VersionStatus(s.version, protocol.state_name(s.state), s.status.error_message)
            for s in response.model_version_status
        ]
