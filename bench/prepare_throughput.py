"""Images/s of `facegan prepare` vs the lecture's sequential loader, on the same generated JPEGs.

The lecture's loader (T81-558 7.2) does, for every file: Image.open -> resize(ANTIALIAS) ->
np.asarray, one file after another. Both run here in one process on one JPEG set shaped like
CelebA's aligned faces (178x218), so the ratio is what matters. `facegan prepare` decodes with
W worker threads (default: one per core), so per core = ratio / W.

    python bench/prepare_throughput.py              # 2000 images, 64 px, all cores
    python bench/prepare_throughput.py --count 500 --res 128
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.data.prepare import prepare


def photo_jpegs(folder: Path, count: int) -> list[Path]:
    """178x218 crops (CelebA's aligned size) of the real colour photographs that ship with
    scikit-image, saved at JPEG quality 90: photo statistics without a download."""
    import skimage.data as sd

    photos = [
        getattr(sd, n)()
        for n in (
            "astronaut",
            "coffee",
            "chelsea",
            "rocket",
            "cat",
            "hubble_deep_field",
            "immunohistochemistry",
            "retina",
        )
    ]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        p = photos[i % len(photos)]
        y, x = rng.integers(0, p.shape[0] - 218), rng.integers(0, p.shape[1] - 178)
        path = folder / f"{i:06d}.jpg"
        Image.fromarray(p[y : y + 218, x : x + 178, :3]).save(path, quality=90)
        paths.append(path)
    return paths


def noise_jpegs(folder: Path, count: int) -> list[Path]:
    """Synthetic JPEGs, smooth gradients plus strong per-pixel noise: far more entropy than a
    photo, so entropy decoding (which draft mode cannot shorten) dominates. A worst case."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:218, 0:178]
    paths = []
    for i in range(count):
        base = np.stack([(xx * (1 + i % 3) + yy) % 256, (yy * 2 + i) % 256, (xx + yy * (i % 5)) % 256], -1)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        p = folder / f"{i:06d}.jpg"
        Image.fromarray(img).save(p, quality=90)
        paths.append(p)
    return paths


def lecture_loader(paths: list[Path], res: int) -> np.ndarray:
    out = []
    for p in paths:
        image = Image.open(p).resize((res, res), Image.Resampling.LANCZOS)  # the lecture's ANTIALIAS
        out.append(np.asarray(image))
    return np.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="decoding threads (default: one per core)")
    ap.add_argument(
        "--images",
        choices=("photos", "noise"),
        default="photos",
        help="crops of real photographs (default) or the synthetic noisy worst case",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "jpegs"
        folder.mkdir()
        paths = (photo_jpegs if args.images == "photos" else noise_jpegs)(folder, args.count)
        t0 = time.perf_counter()
        lecture_loader(paths, args.res)
        base = args.count / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        prepare(folder, args.res, Path(tmp) / "out.npz", workers=args.workers, progress=False)
        ours = args.count / (time.perf_counter() - t0)
    ratio = ours / base
    print(f"{args.count} JPEGs 178x218 ({args.images}) -> {args.res}px, {os.cpu_count()} cores, {args.workers} workers")
    print(f"lecture loop (sequential)   {base:9.1f} images/s")
    print(f"facegan prepare             {ours:9.1f} images/s")
    print(f"ratio {ratio:.2f}x, {ratio / args.workers:.2f}x per worker (target >= 2.0x per core)")


if __name__ == "__main__":
    main()
