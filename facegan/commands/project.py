"""`facegan project`: the face in a model's latent space closest to a photo (see
facegan.exporting.projection), asked of a server (gRPC or REST) or computed locally from a run."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facegan.client.protocol import PROJECT_MAX_STEPS, PROJECT_TIMEOUT_S
from facegan.commands.common import add_server_options, server_options
from facegan.errors import UsageError

HELP = "find the face closest to a photo: its z, the projected face, a side-by-side comparison"
EXAMPLES = """
    facegan project --image photo.jpg --out projected/                 # facegan serve / TF Serving on localhost:8500
    facegan project --server http://localhost:8501 --image photo.jpg --out projected/ --steps 400
    facegan project --run runs/00000-fast32 --image photo.jpg --out projected/   # locally, no server
"""
COMPARE_SIDE = 256  # compare.png shows target and projection enlarged to this side


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_server_options(p, timeout=PROJECT_TIMEOUT_S)
    p.add_argument("--run", help="project locally with this run's generator (EMA weights when kept) instead")
    p.add_argument("--image", required=True, help="the photo (JPEG, PNG, WebP): centre square, resized like prepare")
    p.add_argument("--out", required=True, help="folder for target.png, projected.png, z.npy and compare.png")
    p.add_argument("--steps", type=int, help="optimisation steps, 1..500 (default: the model's, 200)")


def run(args: argparse.Namespace) -> int:
    if args.steps is not None and not 1 <= args.steps <= PROJECT_MAX_STEPS:
        raise UsageError(f"--steps must be in 1..{PROJECT_MAX_STEPS}, got {args.steps}")
    image = Path(args.image)
    if not image.is_file():
        raise UsageError(f"photo {image} does not exist")
    data = image.read_bytes()
    from facegan.data.photo import check_photo

    check_photo(data)  # before any server is asked or TensorFlow loaded
    if args.run:
        if not Path(args.run).is_dir():
            raise UsageError(f"run folder {args.run} does not exist")
        target, z, projected, loss = _local(args.run, data, args.steps)
        source = args.run
    else:
        options = server_options(args)
        target, z, projected, loss = _served(args.server, options, data, args.steps)
        source = args.server
    _write(Path(args.out), target, z, projected)
    print(f"projected {image} with {source}: pixel MSE {loss:.5f}; wrote {args.out}/compare.png (target | projected)")
    return 0


def _served(server: str, options: dict, data: bytes, steps: int | None):
    from facegan.client import connect
    from facegan.data.photo import photo_face

    with connect(server, **options) as client:
        signature = client.metadata()["signatures"].get("project")
        if signature is None:
            raise UsageError(f"the model at {server} has no project signature (export it with this facegan)")
        resolution = int(signature["inputs"]["image"][1][1])
        target = photo_face(data, resolution)
        result = client.project(target, steps)
    return target, result.z, result.image, result.loss


def _local(run_dir: str, data: bytes, steps: int | None):
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    from facegan.data.photo import photo_face
    from facegan.exporting.projection import DEFAULT_STEPS, make_projector
    from facegan.training.run import restore_run_generator

    cfg, generator, _, _ = restore_run_generator(run_dir)
    target = photo_face(data, cfg.model.resolution)
    out = tf.function(make_projector(generator))(tf.constant(target[None]), tf.constant(steps or DEFAULT_STEPS))
    return target, out["z"].numpy()[0], out["images"].numpy()[0], float(out["loss"].numpy()[0])


def _write(out: Path, target: np.ndarray, z: np.ndarray, projected: np.ndarray) -> None:
    from facegan import fileio, images

    images.save_png(out / "target.png", target)
    images.save_png(out / "projected.png", projected)
    with fileio.atomic_path(out / "z.npy") as tmp:
        np.save(tmp, np.asarray(z, np.float32), allow_pickle=False)
    factor = max(1, COMPARE_SIDE // target.shape[0])
    pair = images.enlarge(np.stack([target, projected]), factor)
    images.save_png(out / "compare.png", images.grid(pair, 1, 2, margin=8))
