"""The two definitions that make "seed 42" the same face everywhere.

`seed_to_z` and `to_uint8` are used by training previews, `facegan sample`, the exported
SavedModel's signatures and the tests. They are written once, here, in TensorFlow/Keras ops so
the export can trace them into its graph. `to_uint8` and `generate` run on any Keras backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

SEED_TO_Z_ALGORITHM = "tf.random.stateless_normal([latent_dim], seed=[seed, 0], alg='philox'), float32"


def seed_to_z(seeds, latent_dim: int):
    """int64 seeds [N] -> float32 z [N, latent_dim] (a tf.Tensor), each row N(0, 1) and fixed by its seed alone."""
    import tensorflow as tf  # here, not at the top: JAX training previews need only `generate`

    seeds = tf.cast(tf.reshape(seeds, [-1]), tf.int64)

    def one(seed):
        return tf.random.stateless_normal(
            [latent_dim], seed=tf.stack([seed, tf.zeros_like(seed)]), alg="philox", dtype=tf.float32
        )

    # map_fn keeps each row a function of its own seed, independent of the batch it arrives in.
    return tf.map_fn(one, seeds, fn_output_signature=tf.TensorSpec([latent_dim], tf.float32))


def to_uint8(x):
    """Generator output in [-1, 1] -> uint8 pixels (round half to even, then clip)."""
    x = ops.cast(x, "float32")
    return ops.cast(ops.clip(ops.round((x + 1.0) * 127.5), 0.0, 255.0), "uint8")


def generate(generator: keras.Model, z, batch_size: int = 64) -> np.ndarray:
    """Run the generator in inference mode on z [N, latent_dim] -> uint8 NHWC NumPy images."""
    z = np.asarray(z, np.float32)
    out = [
        keras.ops.convert_to_numpy(to_uint8(generator(z[i : i + batch_size], training=False)))
        for i in range(0, len(z), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, *generator.output_shape[1:]), np.uint8)
