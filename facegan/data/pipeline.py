"""Training batches from a uint8 image array: the tf.data pipeline (TensorFlow) and its NumPy twin (JAX).

Each epoch's order and flips are stateless functions of (seed, epoch), so a resumed run sees
exactly the batches the uninterrupted run would have seen from that epoch on.
"""

from __future__ import annotations

import numpy as np

from facegan.errors import DataError


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Whole batches per epoch; the remainder of an epoch's shuffled order is dropped."""
    if batch_size > n:
        raise DataError(f"batch size {batch_size} is larger than the data set ({n} images)")
    return n // batch_size


def numpy_batches(images: np.ndarray, batch_size: int, seed: int, flip: bool, first_epoch: int, epochs: int):
    """The same pipeline without TensorFlow (the JAX backend): yields float32 [-1, 1] batches.

    Order and flips are functions of (seed, epoch) here too, so resume is exact; the random
    streams are NumPy's, so the batches differ from the TensorFlow pipeline's.
    """
    n = len(images)
    steps = steps_per_epoch(n, batch_size)

    def batches():
        for epoch in range(first_epoch, epochs):
            rng = np.random.default_rng([seed, epoch])
            order = rng.permutation(n)[: steps * batch_size].reshape(steps, batch_size)
            coins = rng.random((steps, batch_size)) < 0.5
            for step in range(steps):
                x = images[order[step]]
                if flip:
                    x = np.where(coins[step][:, None, None, None], x[:, :, ::-1], x)
                yield x.astype(np.float32) / 127.5 - 1.0

    return batches(), steps


def make_dataset(images: np.ndarray, batch_size: int, seed: int, flip: bool, first_epoch: int, epochs: int):
    """uint8 array -> shuffled batches of float32 images in [-1, 1], epochs first_epoch..epochs-1.

    Order and flips come from TensorFlow's stateless random ops, so the pipeline is
    deterministic for a seed and restartable at any epoch.
    """
    import tensorflow as tf

    n = len(images)
    steps = steps_per_epoch(n, batch_size)
    pixels = tf.convert_to_tensor(images)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([seed, epoch]))
        order = tf.reshape(order[: steps * batch_size], [steps, batch_size])
        return tf.data.Dataset.from_tensor_slices(order).enumerate().map(lambda step, idx: (epoch, step, idx))

    def load(epoch, step, idx):
        x = tf.gather(pixels, idx)
        if flip:
            coin = tf.random.stateless_uniform([batch_size], seed=tf.stack([seed + 1, epoch * steps + step]))
            x = tf.where((coin < 0.5)[:, None, None, None], tf.reverse(x, axis=[2]), x)
        return tf.cast(x, tf.float32) / 127.5 - 1.0

    ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), steps
