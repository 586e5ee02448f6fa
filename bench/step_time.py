"""Seconds per training step of a preset and of its variants, as ratios measured in one process.

    python bench/step_time.py --preset fast32 --variant r1="--r1-gamma 0.01" \
        --variant lazy16="--r1-gamma 0.01 --r1-every 16"

Each GAN is built as `facegan train` builds it (the preset with the variant's flags, parsed by the
command's own parser; its precision policy; `FaceGAN.train_step` in a tf.function, as fit() runs
it without a strategy), warmed up, then timed in rounds: every round runs each GAN for --steps
steps in turn, so a machine that gets busier slows all of them alike. A GAN's figure is its median
over the rounds; the ratio to the plain preset is the median of the per-round ratios. A lever
that acts on some steps only (lazy R1) needs --steps to be a multiple of its period.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import variants as variant_flags

from facegan.api.train_options import config_for
from facegan.commands import train as train_command
from facegan.training.backend import Backend
from facegan.training.cpu import cpu_info
from facegan.training.run import build_gan


def config(preset: str, flags: list[str]):
    parser = argparse.ArgumentParser(prog="facegan train")
    train_command.add_arguments(parser)
    return config_for(preset, train_command.options(parser.parse_args(flags)))


def timed_step(preset: str, flags: list[str], backend: Backend):
    """(a function running n steps, the config): the GAN built under the config's precision policy."""
    import keras
    import tensorflow as tf

    cfg = config(preset, flags)
    keras.utils.set_random_seed(cfg.train.seed)
    with backend.precision_policy(cfg.train.mixed_precision):
        gan = build_gan(cfg, backend, steps_per_epoch=3)
    size = cfg.model.resolution
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (cfg.train.batch_size, size, size, 3)), "float32")
    step = tf.function(gan.train_step, jit_compile=backend.jit_compile(cfg.train.xla))

    def run(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            logs = step(real)
        float(logs["g_loss"])  # wait for the last step
        return time.perf_counter() - started

    return run, cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="fast32")
    ap.add_argument("--variant", action="append", default=[], metavar='NAME="FLAGS"')
    ap.add_argument("--steps", type=int, default=32, help="steps per GAN per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    backend = Backend.current()
    runs = {}
    for name, flags in variant_flags.parse(ap, args.variant):
        run, cfg = timed_step(args.preset, flags, backend)
        run(args.steps)  # trace and warm up
        runs[args.preset + name] = run
    print(f"CPU: {cpu_info().describe()}; {args.preset}: batch {cfg.train.batch_size}, {cfg.model.resolution} px")
    seconds = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            seconds[name].append(run(args.steps) / args.steps)
    plain = seconds[args.preset]
    for name, times in seconds.items():
        ratio = statistics.median(t / p for t, p in zip(times, plain))
        print(f"{name:28s} {1e3 * statistics.median(times):7.1f} ms/step  x{ratio:.3f} of {args.preset}")


if __name__ == "__main__":
    main()
