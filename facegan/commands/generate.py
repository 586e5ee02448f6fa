"""`facegan generate`: faces for seeds, fetched from a server over gRPC or REST (no TensorFlow needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from facegan.commands.common import add_server_options, server_options
from facegan.commands.common import seeds as parse_seeds
from facegan.errors import UsageError

HELP = "write faces for seeds, fetched from a server (gRPC or REST)"
EXAMPLES = """
    facegan generate --server localhost:8500 --seeds 0-15 --out faces --grid
    facegan generate --server localhost:8500 --seeds 0,1,4-6 --out faces --truncation 0.7
    facegan generate --server http://localhost:8501 --seeds 0-3 --out faces      # over REST
    facegan generate --server serving.example.com:443 --tls --seeds 7 --out faces --version 3
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_server_options(p, timeout=30.0)
    p.add_argument("--seeds", required=True, help='seed list, e.g. "0-15" or "0,1,4-6"')
    p.add_argument("--out", required=True, help="output folder for seed0000.png ...")
    p.add_argument("--grid", action="store_true", help="also write grid.png")
    p.add_argument(
        "--truncation",
        type=float,
        default=1.0,
        metavar="PSI",
        help="scale each z by PSI in [0, 1]: less variety, fewer broken faces (default 1)",
    )
    p.add_argument("--version", type=int, help="pin a model version (default: the server's latest)")


def run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)
    if not 0.0 <= args.truncation <= 1.0:
        raise UsageError(f"--truncation must be in [0, 1], got {args.truncation}")
    options = server_options(args)
    import numpy as np

    from facegan import images
    from facegan.client import connect
    from facegan.client.protocol import DEFAULT_MAX_BATCH

    faces = []
    with connect(args.server, version=args.version, **options) as client:
        for i in range(0, len(seeds), DEFAULT_MAX_BATCH):  # a batch every server accepts
            chunk, z = client.from_seeds(seeds[i : i + DEFAULT_MAX_BATCH])
            if args.truncation != 1.0:
                chunk = client.generate(args.truncation * z)
            faces.append(chunk)
    faces = np.concatenate(faces)
    paths = images.save_batch(args.out, seeds, faces)
    if args.grid:
        images.save_png(Path(args.out) / "grid.png", images.auto_grid(faces))
    print(f"wrote {len(paths)} faces ({faces.shape[1]}px) to {args.out} from {args.server}")
    return 0
