"""Find a face: project an image into the generator's latent space, inside the TensorFlow graph.

StyleGAN's projector, for a DCGAN, as a served operation: gradient descent on `z` so that
G(z) matches the target. It runs as one graph of standard kernels (a While loop of Adam
steps), so TF Serving itself can run it, and a client without TensorFlow sends an image and
gets back the closest face and its z.

1. Starts: START_COUNT latent vectors drawn once from a fixed seed (the same for every request),
   so a projection is deterministic for the same image and steps.
2. All starts take SCOUT_STEPS Adam steps together (one batch); the start with the lowest loss
   after them is kept. A single start from z = 0 or a random z often settles in a poor basin;
   scouting several cheaply is the usual remedy (measured in bench/projection.py).
3. The kept z takes the remaining steps alone.

Loss: mean squared pixel error in [-1, 1] plus PRIOR_WEIGHT * (mean(z^2) - 1)^2, which keeps z
near the shell where N(0, 1) vectors live (the generator was only trained there). The reported
`loss` is the pixel error alone, in [0, 1] pixel units (MSE), comparable across step counts.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from facegan.client.protocol import PROJECT_MAX_STEPS, PROJECT_STEPS
from facegan.sampling import to_uint8

DEFAULT_STEPS = PROJECT_STEPS
MAX_STEPS = PROJECT_MAX_STEPS  # bound on one request's work
START_COUNT = 16  # candidate starts scouted in one batch
SCOUT_STEPS = 20  # Adam steps every start takes before the best one is kept
START_SEED = 20240  # the starts are the same for every request: a deterministic answer
LEARNING_RATE = 0.05  # Adam on z (z's entries are ~N(0, 1))
PRIOR_WEIGHT = 0.01


def starts(latent_dim: int, count: int = START_COUNT) -> np.ndarray:
    return np.random.default_rng(START_SEED).standard_normal((count, latent_dim)).astype(np.float32)


def make_projector(generator, start_count: int = START_COUNT, scout_steps: int = SCOUT_STEPS):
    """(image uint8 [1, H, W, 3], steps int32 scalar) -> {"z", "images", "loss"}, traceable by tf.function.
    The exported signatures use the defaults; bench/projection.py varies them."""
    latent_dim = int(generator.input_shape[-1])
    start_z = tf.constant(starts(latent_dim, start_count))

    def objective(z, target):
        fake = generator(z, training=False)
        pixel = tf.reduce_mean(tf.square(tf.cast(fake, tf.float32) - target), axis=[1, 2, 3])
        prior = tf.square(tf.reduce_mean(tf.square(z), axis=1) - 1.0)
        return pixel, pixel + PRIOR_WEIGHT * prior

    def adam(z, target, steps):
        """`steps` Adam steps on every row of z (each row's loss is independent of the others)."""

        def body(i, z, m, v):
            with tf.GradientTape() as tape:
                tape.watch(z)
                _, total = objective(z, target)
                summed = tf.reduce_sum(total)  # rows are independent: d(sum)/dz_i = d(loss_i)/dz_i
            grad = tape.gradient(summed, z)
            t = tf.cast(i + 1, tf.float32)
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * tf.square(grad)
            m_hat = m / (1.0 - tf.pow(0.9, t))
            v_hat = v / (1.0 - tf.pow(0.999, t))
            return i + 1, z - LEARNING_RATE * m_hat / (tf.sqrt(v_hat) + 1e-8), m, v

        zeros = tf.zeros_like(z)
        _, z, _, _ = tf.while_loop(lambda i, *_: i < steps, body, [tf.constant(0), z, zeros, zeros])
        return z

    def project(image, steps):
        target = tf.cast(image, tf.float32) / 127.5 - 1.0  # [1, H, W, 3] in the generator's range
        scout = tf.minimum(steps, scout_steps)
        scouted = adam(start_z, target, scout)
        _, totals = objective(scouted, target)
        best = scouted[tf.argmin(totals) : tf.argmin(totals) + 1]
        z = adam(best, target, steps - scout)
        pixel, _ = objective(z, target)
        return {
            "z": z,
            "images": to_uint8(generator(z, training=False)),
            "loss": pixel / 4.0,  # MSE in [-1, 1] -> MSE in [0, 1] pixel units
        }

    return project
