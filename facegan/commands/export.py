"""`facegan export`: a run's generator -> `<base>/<name>/<version>/` for TF Serving, or
(`--format onnx|litert --out DIR`) a folder for ONNX Runtime or LiteRT."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from facegan.errors import UsageError
from facegan.fileio import check_new_folder
from facegan.layout import PORTABLE_CARD_FILE
from facegan.versions import DEFAULT_MODEL_NAME, MAX_VERSION, check_model_name, parse_version

HELP = "write a run's generator as a versioned SavedModel (or ONNX, LiteRT)"
FORMATS = ("savedmodel", "onnx", "litert")
DEFAULT_BASE_PATH = "models"  # --base-path's default (the flag's own default is None: --format onnx refuses it)
EXAMPLES = """
    facegan export --run runs/00000-fast32
    facegan export --run runs/00000-fast32 --base-path models --name facegan --version 7
    facegan export --run runs/00000-fast32 --checkpoint runs/00000-fast32/checkpoints/ckpt-0150.npz
    saved_model_cli show --dir models/facegan/1 --all
    facegan export --run runs/00000-fast32 --format onnx --out exports/onnx
    facegan export --run runs/00000-fast32 --format litert --out exports/litert
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--checkpoint", help="an epoch number or a checkpoint file (default: the newest intact one)")
    p.add_argument("--format", default="savedmodel", choices=FORMATS, help="savedmodel (default), onnx or litert")
    p.add_argument("--out", help="onnx and litert: a new or empty folder for the model file and its card")
    p.add_argument("--base-path", help=f"savedmodel: TF Serving's base folder (default {DEFAULT_BASE_PATH}/)")
    p.add_argument("--name", help=f"savedmodel: model name (default {DEFAULT_MODEL_NAME})")
    p.add_argument("--version", help="savedmodel: version number (default: highest existing + 1)")


def run(args: argparse.Namespace) -> int:
    if args.checkpoint and not args.checkpoint.isdigit() and not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist")
    if args.format == "savedmodel":
        return export_savedmodel(args)
    return export_portable(args)


def export_portable(args: argparse.Namespace) -> int:
    given = [flag for flag in ("base_path", "name", "version") if getattr(args, flag) is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise UsageError(f"{flag} is for --format savedmodel; --format {args.format} writes to --out")
    if not args.out:
        raise UsageError(f"--format {args.format} needs --out, a new or empty folder")
    check_new_folder(args.out)  # before TensorFlow loads: a mistake costs no time
    os.environ["KERAS_BACKEND"] = "tensorflow"  # both converters start from the TensorFlow graph
    from facegan.export.portable import export_portable

    out = export_portable(args.run, args.out, args.format, args.checkpoint)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(
        f"exported {out} ({args.format}, {size / 1e6:.1f} MB); inputs z, outputs images: see {out / PORTABLE_CARD_FILE}"
    )
    return 0


def export_savedmodel(args: argparse.Namespace) -> int:
    if args.out:
        raise UsageError("--out is for --format onnx or litert; a SavedModel goes to --base-path/--name/<version>")
    base_path = DEFAULT_BASE_PATH if args.base_path is None else args.base_path
    name = DEFAULT_MODEL_NAME if args.name is None else args.name
    version = None
    if args.version is not None:
        version = parse_version(args.version)
        if version is None:
            raise UsageError(
                f"--version must be a positive integer in plain decimal, at most {MAX_VERSION}, "
                f"got {args.version[:40]!r}"
            )
    problem = check_model_name(name)
    if problem:
        raise UsageError(problem)
    os.environ["KERAS_BACKEND"] = "tensorflow"  # the SavedModel is always a TensorFlow graph
    from facegan.export.writer import export

    path = export(args.run, base_path, name, version, args.checkpoint)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"exported {path} ({size / 1e6:.1f} MB); TF Serving config: {Path(base_path) / 'models.config'}")
    return 0
