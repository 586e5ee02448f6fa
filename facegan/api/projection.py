"""`project`: the face in a model's latent space closest to a photo (Find a face), asked of a
server (gRPC or REST) or computed locally from a run; `facegan project` writes what it returns."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegan import extras
from facegan.client.protocol import DEFAULT_SERVER, PROJECT_MAX_STEPS
from facegan.errors import UsageError


@dataclass(frozen=True)
class Projection:
    target: np.ndarray  # the photo as the model sees it: uint8 [res, res, 3] (centre square, resized like prepare)
    z: np.ndarray  # the latent vector found: float32 [latent_dim]
    image: np.ndarray  # the face z makes: uint8 [res, res, 3]
    loss: float  # pixel MSE between target and image, in the model's [-1, 1] units


@extras.explained
def project(
    photo: bytes | str | os.PathLike,
    *,
    run: str | os.PathLike | None = None,
    server: str = DEFAULT_SERVER,
    steps: int | None = None,
    **client_options,
) -> Projection:
    """Find the face closest to `photo` (JPEG, PNG or WebP bytes, or a path to one): with `run`'s
    generator (EMA weights when kept) in this process, else asked of `server` (host:port for gRPC,
    http://host:port for REST; `client_options` as `facegan.connect`'s: model, label, timeout,
    tls, ...). `steps`: 1..500 optimisation steps (default: the model's, 200)."""
    from facegan.data.photo import check_photo

    if steps is not None and not 1 <= steps <= PROJECT_MAX_STEPS:
        raise UsageError(f"steps must be in 1..{PROJECT_MAX_STEPS}, got {steps}")
    if not isinstance(photo, bytes):
        if not Path(photo).is_file():
            raise UsageError(f"photo {photo} does not exist")
        photo = Path(photo).read_bytes()
    check_photo(photo)  # before any server is asked or TensorFlow loaded
    if run is not None:
        if client_options:
            raise UsageError(f"{sorted(client_options)[0]} is a server's option; a run projects locally")
        if not Path(run).is_dir():
            raise UsageError(f"run folder {run} does not exist")
        return _local(Path(run), photo, steps)
    return _served(server, client_options, photo, steps)


def _served(server: str, options: dict, data: bytes, steps: int | None) -> Projection:
    from facegan.client import connect
    from facegan.data.photo import photo_face

    with connect(server, **options) as client:
        signature = client.metadata()["signatures"].get("project")
        if signature is None:
            raise UsageError(f"the model at {server} has no project signature (export it with this facegan)")
        resolution = int(signature["inputs"]["image"][1][1])
        target = photo_face(data, resolution)
        result = client.project(target, steps)
    return Projection(target, result.z, result.image, result.loss)


def _local(run_dir: Path, data: bytes, steps: int | None) -> Projection:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    from facegan.data.photo import photo_face
    from facegan.exporting.projection import DEFAULT_STEPS, make_projector
    from facegan.training.run import restore_run_generator

    cfg, generator, _, _ = restore_run_generator(run_dir)
    target = photo_face(data, cfg.model.resolution)
    out = tf.function(make_projector(generator))(tf.constant(target[None]), tf.constant(steps or DEFAULT_STEPS))
    return Projection(target, out["z"].numpy()[0], out["images"].numpy()[0], float(out["loss"].numpy()[0]))
