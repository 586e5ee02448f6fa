"""Training images/s: facegan's step vs a plain re-implementation of the lecture's notebook step.

Both use the same networks, batch and resolution, in one process, on the same machine. The
lecture's step is `@tf.function` without XLA, a sigmoid discriminator and BinaryCrossentropy
on probabilities (T81-558 7.2). facegan's is `FaceGAN.train_step` as `fit()` runs it.

    python bench/train_throughput.py                 # 64 px, batch 32 (the issue's target setting)
    python bench/train_throughput.py --res 32 --steps 10
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from facegan.config import ModelConfig
from facegan.training.backend import Backend
from facegan.training.cpu import cpu_info
from facegan.training.gan import FaceGAN
from facegan.training.models import build_discriminator, build_generator


def lecture_step(cfg: ModelConfig, batch: int):
    """The notebook's train_step, verbatim in structure."""
    cfg = dataclasses.replace(cfg, fused_upconv=False, fused_batchnorm=False)  # the notebook's layers
    generator = build_generator(cfg)
    logits = build_discriminator(cfg)
    discriminator = keras.Sequential([logits, keras.layers.Activation("sigmoid")])
    cross_entropy = keras.losses.BinaryCrossentropy()
    g_opt, d_opt = keras.optimizers.Adam(1.5e-4, 0.5), keras.optimizers.Adam(1.5e-4, 0.5)

    @tf.function
    def train_step(images):
        seed = tf.random.normal([batch, cfg.latent_dim])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(seed, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = cross_entropy(tf.ones_like(real_output), real_output) + cross_entropy(
                tf.zeros_like(fake_output), fake_output
            )
        g_opt.apply_gradients(
            zip(gen_tape.gradient(gen_loss, generator.trainable_variables), generator.trainable_variables)
        )
        d_opt.apply_gradients(
            zip(disc_tape.gradient(disc_loss, discriminator.trainable_variables), discriminator.trainable_variables)
        )
        return gen_loss, disc_loss

    return lambda images: [t.numpy() for t in train_step(images)]


def facegan_step(cfg: ModelConfig, batch: int, xla: bool, mixed: bool):
    with Backend.current().precision_policy(mixed):
        gan = FaceGAN(build_generator(cfg), build_discriminator(cfg), seed=0)
        gan.compile(
            keras.optimizers.Adam(1.5e-4, beta_1=0.5), keras.optimizers.Adam(1.5e-4, beta_1=0.5), jit_compile=xla
        )
        gan.build_optimizers()
    gan.make_train_function()
    return lambda images: gan.train_function(iter([images]))


def measure(step, images, steps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step(images)
    t0 = time.perf_counter()
    for _ in range(steps):
        out = step(images)
    keras.tree.map_structure(lambda x: np.asarray(x), out)  # wait for the last step
    return steps * len(images) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    cfg = ModelConfig(resolution=args.res)
    images = tf.random.uniform((args.batch, args.res, args.res, 3), -1, 1)
    keras.utils.set_random_seed(0)

    rows = [("lecture step (tf.function, no XLA)", measure(lecture_step(cfg, args.batch), images, args.steps))]
    for name, xla, mixed in (
        ("facegan, XLA off", False, False),
        ("facegan, XLA on", True, False),
        ("facegan, XLA off, --mixed-precision", False, True),
        ("facegan, XLA on, --mixed-precision", True, True),
    ):
        rows.append((name, measure(facegan_step(cfg, args.batch, xla, mixed), images, args.steps)))
    base = rows[0][1]
    print(f"\n{cpu_info().describe()}, TF {tf.__version__}, {args.res}px, batch {args.batch}, {args.steps} timed steps")
    print(f"{'step':40s} {'images/s':>10s} {'vs lecture':>10s}")
    for name, ips in rows:
        print(f"{name:40s} {ips:10.2f} {ips / base:9.2f}x")


if __name__ == "__main__":
    main()
