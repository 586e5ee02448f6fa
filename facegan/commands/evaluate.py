"""`facegan evaluate`: SWD, face rate, memorization and D accuracy of a run or an export (see evaluate_report)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from facegan.errors import UsageError
from facegan.evaluation.face_rate import MIN_NEIGHBORS

HELP = "SWD, face rate, memorization and D accuracy of a run or an export"
EXAMPLES = """
    facegan evaluate --run runs/00000-fast32
    facegan evaluate --model models/facegan/3 --data data/faces64.npz --num-images 8192 --seed 1
    facegan evaluate --run runs/00000-fast32 --json > report.json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="run folder (its latest checkpoint; EMA weights when kept)")
    which.add_argument("--model", help="an exported version folder, e.g. models/facegan/3")
    p.add_argument("--data", help="real images (.npz); default: what the run or model was trained on")
    p.add_argument("--num-images", type=int, default=8192, help="images per side, capped at the data set's size")
    p.add_argument("--seed", type=int, default=0, help="fixes the real subset, z, patches and projections")
    p.add_argument(
        "--out", help="folder for report.json and memorization.png (default <run>/eval or eval/<name>-<version>)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--no-ema", action="store_true", help="a run's raw generator instead of its EMA weights")
    p.add_argument(
        "--face-threshold",
        type=int,
        default=MIN_NEIGHBORS,
        help=f"the face detector's confidence threshold: overlapping detections a face needs (default {MIN_NEIGHBORS})",
    )


def run(args: argparse.Namespace) -> int:
    if args.num_images < 1:
        raise UsageError(f"--num-images must be >= 1, got {args.num_images}")
    if args.run and not Path(args.run).is_dir():
        raise UsageError(f"run folder {args.run} does not exist")
    if args.model and not Path(args.model).is_dir():
        raise UsageError(f"model version folder {args.model} does not exist")
    if args.data and not Path(args.data).is_file():
        raise UsageError(f"data file {args.data} does not exist")
    if args.face_threshold < 1:
        raise UsageError(f"--face-threshold must be >= 1, got {args.face_threshold}")
    if args.no_ema and not args.run:
        raise UsageError("--no-ema applies to --run (an export holds one generator)")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from facegan.commands.evaluate_report import evaluate, table

    report = evaluate(
        args.run,
        args.model,
        args.data,
        args.num_images,
        args.seed,
        args.out,
        ema=not args.no_ema,
        face_threshold=args.face_threshold,
    )
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0
