"""`facegan export`: a run's generator -> `<base>/<name>/<version>/` for TF Serving."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from facegan.errors import UsageError
from facegan.versions import DEFAULT_MODEL_NAME, MAX_VERSION, check_model_name, parse_version

HELP = "write a run's generator as a versioned SavedModel"
EXAMPLES = """
    facegan export --run runs/00000-fast32
    facegan export --run runs/00000-fast32 --base-path models --name facegan --version 7
    facegan export --run runs/00000-fast32 --checkpoint runs/00000-fast32/checkpoints/ckpt-0150.npz
    saved_model_cli show --dir models/facegan/1 --all
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--checkpoint", help="an epoch number or a checkpoint file (default: the newest intact one)")
    p.add_argument("--base-path", default="models", help="TF Serving's base folder (default models/)")
    p.add_argument("--name", default=DEFAULT_MODEL_NAME, help=f"model name (default {DEFAULT_MODEL_NAME})")
    p.add_argument("--version", help="version number (default: highest existing + 1)")


def run(args: argparse.Namespace) -> int:
    version = None
    if args.version is not None:
        version = parse_version(args.version)
        if version is None:
            raise UsageError(
                f"--version must be a positive integer in plain decimal, at most {MAX_VERSION}, "
                f"got {args.version[:40]!r}"
            )
    problem = check_model_name(args.name)
    if problem:
        raise UsageError(problem)
    if args.checkpoint and not args.checkpoint.isdigit() and not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist")
    os.environ["KERAS_BACKEND"] = "tensorflow"  # the SavedModel is always a TensorFlow graph
    from facegan.export.writer import export

    path = export(args.run, args.base_path, args.name, version, args.checkpoint)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"exported {path} ({size / 1e6:.1f} MB); TF Serving config: {Path(args.base_path) / 'models.config'}")
    return 0
