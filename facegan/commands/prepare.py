"""`facegan prepare`: a folder or .zip of images -> a training cache."""

from __future__ import annotations

import argparse

from facegan.errors import UsageError

HELP = "decode a folder or .zip of images into a training cache"
EXAMPLES = """
    facegan prepare --src ~/faces --res 64 --out data/faces64.npz
    facegan prepare --src img_align_celeba.zip --res 64 --out data/celeba64.npz --workers 8
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", required=True, help="folder (searched recursively) or .zip of JPEG/PNG/WebP files")
    p.add_argument("--res", type=int, default=64, help="output side in pixels (default 64)")
    p.add_argument("--out", required=True, help="the .npz cache to write")
    p.add_argument("--workers", type=int, default=None, help="decoding threads (default: one per core)")


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    from facegan.data.prepare import prepare

    manifest = prepare(args.src, args.res, args.out, workers=args.workers)
    print(
        f"wrote {args.out}: {manifest['count']} images at {manifest['resolution']}px "
        f"({manifest['skipped']} skipped), sha256 {manifest['sha256'][:12]}"
    )
    return 0
