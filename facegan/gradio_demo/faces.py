"""What the demo asks the server for, and how it checks its inputs (no Gradio, no TensorFlow).

Every face comes from the gRPC server: `from_seed` for seeds, `serving_default` for z vectors
the demo computes (interpolations, edits), so the page works the same against `facegan serve`
or the official TensorFlow Serving.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from facegan.client import FaceClient, RestClient, connect
from facegan.client.errors import ServingError
from facegan.client.latent import slerp
from facegan.client.model_client import Projection
from facegan.client.protocol import PROJECT_MAX_STEPS, PROJECT_TIMEOUT_S
from facegan.data.photo import photo_face
from facegan.errors import DataError
from facegan.seeds import MAX_SEED
from facegan.versions import DEFAULT_MODEL_NAME

MAX_FACES = 16
MAX_FRAMES = 32  # frames of one interpolation or exploration


class DemoError(ValueError):
    """A message for the page: bad input, or the server could not answer."""


def whole_number(value, name: str, lo: int, hi: int) -> int:
    """An int in lo..hi, or a DemoError that says what was wrong."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DemoError(f"{name} must be a whole number, got {value!r}") from None
    if not np.isfinite(number) or not number.is_integer():
        raise DemoError(f"{name} must be a whole number, got {value!r}")
    if not lo <= number <= hi:
        raise DemoError(f"{name} must be between {lo} and {hi}, got {int(number)}")
    return int(number)


def number(value, name: str) -> float:
    """A finite float, or a DemoError that names the field."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise DemoError(f"{name} must be a number, got {str(value)[:40]!r}") from None
    if not np.isfinite(result):
        raise DemoError(f"{name} must be a finite number, got {value!r}")
    return result


def latent(values, latent_dim: int) -> np.ndarray:
    """A z the demo holds (a projected photo's), checked against the model's latent size."""
    z = np.asarray(values, np.float32).reshape(-1)
    if z.shape != (latent_dim,) or not np.isfinite(z).all():
        raise DemoError(f"the found face's z has {z.size} numbers; this model takes {latent_dim}: project again")
    return z


def readable(error: ServingError, address: str) -> str:
    if error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return (
            f"The face server at {address} is not answering ({error.code.name}). Is `facegan serve` "
            "(or TensorFlow Serving) running? This page works again as soon as it is back."
        )
    if error.code == grpc.StatusCode.NOT_FOUND:
        return f"The server has no such model or version: {error.message}. Pick another version under Model."
    return f"The server refused the request ({error.code.name}): {error.message}"


@dataclass(frozen=True)
class Faces:
    images: np.ndarray  # uint8 [N, H, W, 3]
    captions: list[str]
    version: int  # the model version that answered


class FaceSource:
    """One client per pinned version: FaceClient for host:port (gRPC channels are thread-safe and
    reconnect on their own), RestClient for an http(s):// URL."""

    def __init__(
        self,
        address: str,
        model: str = DEFAULT_MODEL_NAME,
        timeout: float = 10.0,
        tls=None,
        client_cert=None,
        label: str | None = None,
        project_timeout: float = PROJECT_TIMEOUT_S,
    ):
        self.address = address
        self.project_timeout = max(project_timeout, 0.001)  # a projection's own deadline (protocol.py says why)
        self.label = label  # what "latest" means for this demo: a version label (stable, canary) or the newest
        self.model = model
        self.timeout = timeout
        self.tls = tls
        self.client_cert = client_cert
        self._clients: dict[tuple[int | None, float], FaceClient | RestClient] = {}
        self._lock = threading.Lock()

    def client(self, version: int | None = None, timeout: float | None = None) -> FaceClient | RestClient:
        """The client for `version` whose calls have `timeout` seconds (default: the demo's)."""
        key = (version, timeout or self.timeout)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = connect(
                    self.address,
                    self.model,
                    timeout=key[1],
                    tls=self.tls,
                    version=version,
                    label=self.label if version is None else None,
                    client_cert=self.client_cert,
                )
            return self._clients[key]

    def _ask(self, fn):
        try:
            return fn()
        except ServingError as e:
            raise DemoError(readable(e, self.address)) from None

    def answering_version(self, version):
        """The version that answers a request pinned to `version` (None: ask the server for its latest)."""
        return self._ask(lambda: self.client(version).metadata()["version"]) if version is None else version

    def seeds(self, seed, count, truncation=1.0, version=None) -> Faces:
        seed = whole_number(seed, "seed", 0, MAX_SEED)
        count = whole_number(count, "count", 1, MAX_FACES)
        psi = number(truncation, "truncation")
        if not 0.0 <= psi <= 1.0:
            raise DemoError(f"truncation must be between 0 and 1, got {truncation}")
        if seed + count - 1 > MAX_SEED:
            raise DemoError(
                f"seeds end at {MAX_SEED}: from seed {seed} there are {MAX_SEED - seed + 1} faces, not {count}"
            )
        seeds = list(range(seed, seed + count))
        client = self.client(version)
        images, z = self._ask(lambda: client.from_seeds(seeds))
        if psi != 1.0:
            images = self._ask(lambda: client.generate(psi * z))
        return Faces(images, [f"seed {s}" for s in seeds], self.answering_version(version))

    def interpolate(self, seed_a, seed_b, steps, version=None, z_from=None) -> Faces:
        """From seed_a's face (or the face of `z_from`, a projected photo's z) to seed_b's."""
        a = whole_number(seed_a, "first seed", 0, MAX_SEED)
        b = whole_number(seed_b, "second seed", 0, MAX_SEED)
        steps = whole_number(steps, "steps", 2, MAX_FRAMES)
        client = self.client(version)
        _, z = self._ask(lambda: client.from_seeds([a, b]))
        start = z[0] if z_from is None else latent(z_from, z.shape[1])
        t = np.linspace(0.0, 1.0, steps)
        images = self._ask(lambda: client.generate(slerp(start, z[1], t)))
        return Faces(images, [f"t = {x:.2f}" for x in t], self.answering_version(version))

    def project(self, photo_path, steps, version=None) -> tuple[np.ndarray, Projection, int]:
        """(the photo as the model sees it, the projection, the version that answered)."""
        if not photo_path:
            raise DemoError("upload a photo first")
        steps = whole_number(steps, "steps", 1, PROJECT_MAX_STEPS)
        try:
            data = Path(photo_path).read_bytes()
        except OSError as e:
            raise DemoError(f"the upload could not be read: {e.strerror}") from None
        client = self.client(version)
        signature = self._ask(client.metadata)["signatures"].get("project")
        if signature is None:
            raise DemoError("this model has no project signature: export it again with this facegan")
        try:
            target = photo_face(data, int(signature["inputs"]["image"][1][1]))
        except DataError as e:
            raise DemoError(f"That photo can't be used: {e}.") from None
        try:
            result = self.client(version, self.project_timeout).project(target, steps)
        except ServingError as e:
            raise DemoError(self._projection_failed(e, version)) from None
        return target, result, self.answering_version(version)

    def _projection_failed(self, error: ServingError, version) -> str:
        """The cause in words: a projection past its deadline on a server that answers otherwise
        is not a server that is down."""
        if error.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            try:
                self.client(version).status()
            except ServingError:
                return readable(error, self.address)
            return (
                f"The face server at {self.address} is up, but finding the face took longer than "
                f"{self.project_timeout:g} s, so it was stopped. The server may be busy with other "
                "projections, or (the first one on a server) still starting their process: try again in a moment."
            )
        return readable(error, self.address)

    def explore(self, seed, dim, lo, hi, steps, version=None, z_base=None) -> Faces:
        """Sweep one number of seed's z (or of `z_base`, a projected photo's z)."""
        seed = whole_number(seed, "seed", 0, MAX_SEED)
        steps = whole_number(steps, "steps", 2, MAX_FRAMES)
        lo = number(lo, "the range's start")
        hi = number(hi, "the range's end")
        if lo >= hi or max(abs(lo), abs(hi)) > 10:
            raise DemoError(f"the range must satisfy -10 <= from < to <= 10, got {lo} .. {hi}")
        client = self.client(version)
        _, z = self._ask(lambda: client.from_seeds([seed]))
        if z_base is not None:
            z = latent(z_base, z.shape[1])[None]
        dim = whole_number(dim, "dimension", 0, z.shape[1] - 1)
        values = np.linspace(lo, hi, steps, dtype=np.float32)
        edited = np.repeat(z, steps, axis=0)
        edited[:, dim] = values
        images = self._ask(lambda: client.generate(edited))
        return Faces(images, [f"z[{dim}] = {v:+.2f}" for v in values], self.answering_version(version))

    def model_info(self) -> dict:
        """Versions with their state, and the signatures of the latest version."""
        client = self.client(None)
        versions = self._ask(client.status)
        meta = self._ask(client.metadata)
        return {"versions": versions, "version": meta["version"], "signatures": meta["signatures"]}
