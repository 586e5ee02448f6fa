"""`facegan sample`: faces for seeds from a run's checkpoint, without a server."""

from __future__ import annotations

import argparse
from pathlib import Path

from facegan.commands.common import seeds as parse_seeds

HELP = "write faces for seeds from a run's latest checkpoint"
EXAMPLES = """
    facegan sample --run runs/00000-fast32 --seeds 0-15 --out faces
    facegan sample --run runs/00000-fast32 --seeds 0,1,4-6 --out faces --grid
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--seeds", required=True, help='seed list, e.g. "0-15" or "0,1,4-6"')
    p.add_argument("--out", required=True, help="output folder for seed0000.png ...")
    p.add_argument("--grid", action="store_true", help="also write grid.png")
    p.add_argument("--checkpoint", help="an epoch number or a checkpoint file (default: the newest intact one)")


def run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)
    from facegan import images
    from facegan.api.runs import Run

    run = Run(args.run)
    faces = run.faces(seeds, args.checkpoint)
    paths = images.save_batch(args.out, seeds, faces)
    if args.grid:
        images.save_png(Path(args.out) / "grid.png", images.auto_grid(faces))
    checkpoint, epoch = run.sampled_from
    print(f"wrote {len(paths)} faces to {args.out} from {checkpoint.name} (epoch {epoch})")
    return 0
