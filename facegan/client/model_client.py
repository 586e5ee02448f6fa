"""What FaceClient (gRPC) and RestClient (REST) share: the pinning options, the face calls built
on `predict`, waiting for a version, and the context-manager protocol. Each door only says how
to send a request (`predict`, `metadata`, `status`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
import numpy as np

from facegan.client.errors import ServingError
from facegan.seeds import check_seeds
from facegan.versions import DEFAULT_MODEL_NAME


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # AVAILABLE, LOADING, UNLOADING, END, ...
    error: str  # why a version ended, if it failed


@dataclass(frozen=True)
class Projection:
    z: np.ndarray  # float32 [latent_dim]: the latent vector found
    image: np.ndarray  # uint8 [H, W, 3]: the face the model makes from it
    loss: float  # mean squared pixel error against the target, pixels in [0, 1]


class ModelClient:
    """One model at one address. `version` or `label` pins requests; otherwise the server's latest.

    Every call has `timeout` seconds in total; UNAVAILABLE is retried with exponential backoff up
    to `retries` times within that budget. Failures raise ServingError (gRPC code + message).
    """

    def __init__(
        self,
        address: str,
        model: str = DEFAULT_MODEL_NAME,
        timeout: float = 10.0,
        tls: bool | str | None = None,
        version: int | None = None,
        client_cert: tuple[str, str] | None = None,
        label: str | None = None,
        retries: int = 3,
    ):
        if version is not None and label:
            raise ValueError("pin a version or a label, not both")
        self.address = address
        self.model = model
        self.timeout = timeout
        self.tls = tls  # None: plain; True: TLS with the system's roots; a path: TLS trusting that CA file
        self.client_cert = client_cert  # (certificate, key) PEM paths for servers that verify clients (mutual TLS)
        self.version = version
        self.label = label
        self.retries = retries
        self._open()

    def _open(self) -> None:
        """Set up the connection (a gRPC channel, a base URL) from the fields above."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def predict(self, signature: str, inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = ()) -> dict:
        raise NotImplementedError

    def metadata(self) -> dict:
        """{"version": N, "signatures": {name: {"inputs"|"outputs": {alias: (dtype, shape)}}}}."""
        raise NotImplementedError

    def status(self) -> list[VersionStatus]:
        raise NotImplementedError

    def generate(self, z) -> np.ndarray:
        """Faces for latent vectors z [N, latent_dim] (the serving_default signature)."""
        z = np.asarray(z, np.float32)
        if z.ndim == 1:
            z = z[None]
        [images] = self.predict("serving_default", {"z": z}, ("images",)).values()
        return np.asarray(images, np.uint8)

    def from_seeds(self, seeds) -> tuple[np.ndarray, np.ndarray]:
        """Faces and their z for integer seeds (the from_seed signature: the same z as `facegan sample`)."""
        out = self.predict("from_seed", {"seed": check_seeds(seeds)})
        return np.asarray(out["images"], np.uint8), np.asarray(out["z"], np.float32)

    def project(self, image, steps: int | None = None) -> Projection:
        """The closest face the model makes to `image` (uint8 [H, W, 3] at the model's resolution):
        the `project` signature (its default step count), or `project_steps` with `steps`."""
        image = np.asarray(image, np.uint8)
        if image.ndim == 3:
            image = image[None]
        if steps is None:
            out = self.predict("project", {"image": image})
        else:
            out = self.predict("project_steps", {"image": image, "steps": np.asarray(steps, np.int32)})
        return Projection(
            z=np.asarray(out["z"], np.float32)[0],
            image=np.asarray(out["images"], np.uint8)[0],
            loss=float(np.asarray(out["loss"]).reshape(-1)[0]),
        )

    def wait_until_available(self, timeout: float = 60.0) -> list[VersionStatus]:
        """Poll the model's status until a version is AVAILABLE (works with TF Serving too)."""
        end = time.monotonic() + timeout
        while True:
            try:
                versions = self.status()
                if any(v.state == "AVAILABLE" for v in versions):
                    return versions
            except ServingError as e:
                waiting = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.DEADLINE_EXCEEDED)
                if e.code not in waiting or time.monotonic() > end:
                    raise
            if time.monotonic() > end:
                raise ServingError(
                    grpc.StatusCode.DEADLINE_EXCEEDED, f"{self.address}: no version of {self.model} became available"
                )
            time.sleep(0.2)
