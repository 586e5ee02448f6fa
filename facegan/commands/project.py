"""`facegan project`: the face in a model's latent space closest to a photo (facegan.api.projection),
asked of a server (gRPC or REST) or computed locally from a run; writes the four files."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facegan.client.protocol import PROJECT_TIMEOUT_S
from facegan.commands.common import add_server_options, server_options

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
    from facegan.api.projection import project

    if args.run:
        result = project(args.image, run=args.run, steps=args.steps)
    else:
        result = project(args.image, server=args.server, steps=args.steps, **server_options(args))
    _write(Path(args.out), result.target, result.z, result.image)
    source = args.run or args.server
    print(
        f"projected {args.image} with {source}: pixel MSE {result.loss:.5f}; wrote {args.out}/compare.png "
        "(target | projected)"
    )
    return 0


def _write(out: Path, target: np.ndarray, z: np.ndarray, projected: np.ndarray) -> None:
    from facegan import fileio, images

    images.save_png(out / "target.png", target)
    images.save_png(out / "projected.png", projected)
    with fileio.atomic_path(out / "z.npy") as tmp:
        np.save(tmp, np.asarray(z, np.float32), allow_pickle=False)
    factor = max(1, COMPARE_SIDE // target.shape[0])
    pair = images.enlarge(np.stack([target, projected]), factor)
    images.save_png(out / "compare.png", images.grid(pair, 1, 2, margin=8))
