"""`facegan evaluate`: SWD, face rate, memorization and D accuracy of a run or an export (facegan.api.evaluation)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from facegan.commands.common import renamed
from facegan.errors import UsageError
from facegan.evaluation import face_rate
from facegan.evaluation.face_rate import MIN_NEIGHBORS

HELP = "SWD, face rate, memorization and D accuracy of a run or an export"
EXAMPLES = """
    facegan evaluate --run runs/00000-fast32
    facegan evaluate --version-dir models/facegan/3 --data data/faces64.npz --num-images 8192 --seed 1
    facegan evaluate --run runs/00000-fast32 --json > report.json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="run folder (its latest checkpoint; EMA weights when kept)")
    which.add_argument("--version-dir", metavar="DIR", help="an exported version folder, e.g. models/facegan/3")
    renamed(p, "--model", "--version-dir DIR")
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
    if args.version_dir and not Path(args.version_dir).is_dir():
        raise UsageError(f"model version folder {args.version_dir} does not exist")
    if args.data and not Path(args.data).is_file():
        raise UsageError(f"data file {args.data} does not exist")
    if args.face_threshold < 1:
        raise UsageError(f"--face-threshold must be >= 1, got {args.face_threshold}")
    if args.no_ema and not args.run:
        raise UsageError("--no-ema applies to --run (an export holds one generator)")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from facegan.api.evaluation import evaluate

    report = evaluate(
        args.run,
        args.version_dir,
        args.data,
        args.num_images,
        args.seed,
        args.out,
        ema=not args.no_ema,
        face_threshold=args.face_threshold,
    )
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


def table(report: dict) -> str:
    """The report as `facegan evaluate` prints it."""
    from facegan.api.evaluation import MEMORIZATION_FACES

    s, m = report["swd_x1e3"], report["memorization"]
    levels = [k for k in s if k != "swd"]
    lines = [
        f"evaluated {report['source']} on {report['images']} images per side at {report['resolution']} px "
        f"(seed {report['seed']}, {report['seconds']} s)",
        "",
        "| SWD x1e3 | " + " | ".join(f"{k[4:]} px" for k in levels) + " | average |",
        "|---" * (len(levels) + 2) + "|",
        "| | " + " | ".join(f"{s[k]:.2f}" for k in levels) + f" | {s['swd']:.2f} |",
        "",
        f"memorization: median distance of {MEMORIZATION_FACES} generated faces to their nearest training image "
        f"{m['median_nn_distance']:.2f} (min {m['min_nn_distance']:.2f}); training images to each other "
        f"{m['train_median_nn_distance']:.2f}; ratio {m['ratio']:.2f} (well below 1: copies)",
    ]
    if "discriminator" in report:
        d = report["discriminator"]
        lines.append(
            f"discriminator accuracy: real {d['accuracy_real']:.2f} ({d['real_images']}), "
            f"generated {d['accuracy_fake']:.2f}"
        )
    c = report["color"]
    lines.append(f"colour (mean |R-G|+|G-B|, 0 = gray): generated {c['generated']:.3f}, real {c['real']:.3f}")
    f = report["face_rate"]
    if f is None:
        lines.append(f"face rate: not measured ({face_rate.INSTALL} adds OpenCV's face detector)")
    else:
        lines.append(
            f"face rate: {f['generated']:.2f} of {f['images']} generated images have a face; real images "
            f"{f['real']:.2f} (the ceiling); {f['detector']}, min neighbors {f['min_neighbors']}, "
            f"upscaled to {f['min_side_px']} px"
        )
    r = report["realism"]
    lines.append(
        f"against real faces ({r['floor']}; ratio 1 = as close as real to real): "
        f"SWD {r['swd_x1e3']['generated']:.1f} vs {r['swd_x1e3']['floor']:.1f} ({r['swd_x1e3']['ratio']:.2f}x); "
        f"spectral gap at radii {r['spectrum']['band_radii'][0]}-{r['spectrum']['band_radii'][1]} "
        f"{r['spectrum']['generated']:.3f} vs {r['spectrum']['floor']:.3f} ({r['spectrum']['ratio']:.2f}x)"
    )
    strict = r["strict_face_rate"]
    if strict is not None:
        low, high = strict["real_interval"]
        lines.append(
            f"strict face rate (min neighbors {strict['min_neighbors']}): generated {strict['generated']:.2f}, "
            f"real {strict['real']:.2f} (95 % interval {low:.2f}-{high:.2f})"
        )
    sheet = ", faces.png (above the line: a face found, boxed; below: none)" if f is not None else ""
    lines.append(f"wrote {report['written']}/report.json, memorization.png (generated | nearest training image){sheet}")
    return "\n".join(lines)
