"""`facegan export`: a run's generator -> `<base>/<name>/<version>/` for TF Serving, or
(`--format onnx|litert --out DIR`) a folder for ONNX Runtime or LiteRT."""

from __future__ import annotations

import argparse

from facegan.api.exports import DEFAULT_BASE_PATH, FORMATS
from facegan.layout import MODELS_CONFIG, PORTABLE_CARD_FILE
from facegan.versions import DEFAULT_MODEL_NAME

HELP = "write a run's generator as a versioned SavedModel (or ONNX, LiteRT)"
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
    from facegan.api.exports import export

    exported = export(
        args.run,
        base_path=args.base_path,
        name=args.name,
        version=args.version,
        checkpoint=args.checkpoint,
        format=args.format,
        out=args.out,
    )
    size = f"{exported.size_bytes / 1e6:.1f} MB"
    if exported.format == "savedmodel":
        config = exported.base_path.parent / MODELS_CONFIG
        print(f"exported {exported.path} ({size}); TF Serving config: {config}")
    else:
        card = exported.path / PORTABLE_CARD_FILE
        print(f"exported {exported.path} ({exported.format}, {size}); inputs z, outputs images: see {card}")
    return 0
