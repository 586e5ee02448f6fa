"""Find a face, measured: how close `project` gets to real faces the model never saw and to
faces it trained on, and whether more steps or more starts help.

The embedded LFW faces are split: the first 80 train a run of `--preset` (default: the quick
start's, `fast32`, with its epochs), the last 20 are held out. Every target is projected with facegan's
projector (the graph the `project` signature exports; a test checks the served and local ones
agree). Reported per setting and per target set:
  - pixel MSE (pixels in [0, 1]) and SSIM (scikit-image, 7x7 window, per channel);
  - the nearest-neighbour check: is the projected face closer (MSE) to its own target than to
    every one of the 80 training faces? (For a training face, its own target is one of them.)
  - best of 64 random seeds' MSE for the same targets, the bar a projection must clear.
A sheet of targets (top) and projections (bottom) goes to docs/projection-32px.png.

    python bench/projection.py                 # ~8 min on 2 cores with fast32 (training included)
    python bench/projection.py --run RUN       # an existing run trained on the first 80 faces
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from facegan.config import DEFAULT_PRESET  # noqa: E402  (light: no TensorFlow)

TRAIN = 80


def split_data(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from facegan.data.cache import save_dataset
    from facegan.data.embedded import embedded_faces

    faces = embedded_faces(32)[0]
    if not path.is_file():
        save_dataset(path, faces[:TRAIN], "embedded LFW faces 0-79 (bench/projection.py)")
    return faces[:TRAIN], faces[TRAIN:]


def train(run_dir: Path, data: Path, preset: str) -> None:
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("ckpt-*")):
        return
    command = [sys.executable, "-m", "facegan.cli", "train", "--preset", preset, "--data", str(data)]
    command += ["--run-dir", str(run_dir)]
    subprocess.run([*command, "--auto-resume"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a run trained on the first 80 embedded faces (default: train one)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help="the preset trained on the 80 faces (default: the default)")
    p.add_argument("--root", default=str(ROOT / "runs" / "projection"))
    p.add_argument("--sheet", default=str(ROOT / "docs" / "projection-32px.png"))
    args = p.parse_args()
    root = Path(args.root)
    train_faces, held_out = split_data(root / "lfw32-first80.npz")
    run_dir = Path(args.run) if args.run else root / f"{args.preset}-first80"
    if not args.run:
        train(run_dir, root / "lfw32-first80.npz", args.preset)

    import tensorflow as tf
    from skimage.metrics import structural_similarity

    from facegan import images
    from facegan.exporting.projection import START_COUNT, make_projector
    from facegan.sampling import generate
    from facegan.training.run import restore_run_generator

    _, generator, ckpt, _ = restore_run_generator(run_dir)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}; {run_dir} {ckpt.name}")
    sets = {"held out (20)": held_out, "training (20 of 80)": train_faces[::4]}
    pool = train_faces.astype(np.float32) / 255.0
    random_faces = generate(generator, np.random.default_rng(1).standard_normal((64, 100))).astype(np.float32) / 255

    def mse(a, b):
        return np.mean((np.asarray(a, np.float32) / 255.0 - np.asarray(b, np.float32) / 255.0) ** 2, axis=(-3, -2, -1))

    print("\n| faces | setting | pixel MSE | SSIM | nearest-neighbour check | s per face |")
    print("|---|---|---|---|---|---|")
    sheet_rows = []
    for name, targets in sets.items():
        best_random = np.mean([np.min(np.mean((random_faces - t / 255.0) ** 2, axis=(1, 2, 3))) for t in targets])
        print(f"| {name} | best of 64 random seeds | {best_random:.5f} | | | |")
        for starts, steps in ((1, 200), (START_COUNT, 50), (START_COUNT, 200), (START_COUNT, 500)):
            projector = tf.function(make_projector(generator, start_count=starts))
            projector(tf.constant(targets[:1]), tf.constant(steps))  # trace once, outside the timing
            started = time.perf_counter()
            found = np.stack(
                [projector(tf.constant(t[None]), tf.constant(steps))["images"].numpy()[0] for t in targets]
            )
            seconds = (time.perf_counter() - started) / len(targets)
            errors = mse(found, targets)
            ssim = np.mean(
                [
                    structural_similarity(face, target, channel_axis=-1, data_range=255, win_size=7)
                    for face, target in zip(found, targets)
                ]
            )
            to_pool = np.mean((found[:, None].astype(np.float32) / 255.0 - pool[None]) ** 2, axis=(2, 3, 4))
            nearest_ok = np.mean(errors <= to_pool.min(axis=1) + 1e-12)
            print(
                f"| {name} | {starts} start(s), {steps} steps | {errors.mean():.5f} | {ssim:.3f} | "
                f"{nearest_ok:.0%} closest to its own target | {seconds:.2f} |"
            )
            if starts == START_COUNT and steps == 200:
                sheet_rows.append((targets[:10], found[:10]))
    tiles = np.concatenate([np.concatenate([t, f]) for t, f in sheet_rows])
    images.save_png(args.sheet, images.grid(images.enlarge(tiles, 3), 4, 10, margin=4))
    print(f"\nwrote {args.sheet}: rows 1-2 held-out targets and their projections, rows 3-4 training faces")


if __name__ == "__main__":
    main()
