"""DiffAugment's transforms: exact shifts and squares, and gradients that reach the generator."""

import keras
import numpy as np
import tensorflow as tf

from facegan.training.augment import DRAWS, augment, cutout, translation


def test_translation_shifts_and_fills_with_zeros():
    x = np.arange(2 * 8 * 8 * 1, dtype=np.float32).reshape(2, 8, 8, 1) + 1
    # shift range is ±1 px at 8 px; u picks offsets: image 0 -> (dy, dx) = (-1, +1), image 1 -> (0, 0)
    u = np.array([[0.0, 0.99], [0.5, 0.5]], np.float32)
    y = keras.ops.convert_to_numpy(translation(x, u))
    np.testing.assert_array_equal(y[1], x[1])
    expected = np.zeros_like(x[0])
    expected[1:, :-1] = x[0, :-1, 1:]  # output row r reads input row r-1, column c reads column c+1
    np.testing.assert_array_equal(y[0], expected)


def test_cutout_zeroes_one_square():
    x = np.ones((3, 16, 16, 3), np.float32)
    y = keras.ops.convert_to_numpy(cutout(x, np.random.default_rng(0).random((3, 2)).astype(np.float32)))
    for img in y:
        zero_rows, zero_cols = np.nonzero(img[..., 0] == 0)
        assert 0 < len(zero_rows) <= 8 * 8  # a half-size square, possibly clipped at the border
        assert (img[zero_rows, zero_cols] == 0).all() and set(np.unique(img)) <= {0.0, 1.0}
        assert zero_rows.max() - zero_rows.min() < 8 and zero_cols.max() - zero_cols.min() < 8


def test_gradients_flow_through_both_transforms():
    x = tf.Variable(np.random.default_rng(0).standard_normal((4, 16, 16, 3)).astype(np.float32))
    u = np.random.default_rng(1).random((4, 2 * DRAWS)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(augment(x, ("translation", "cutout"), u) ** 2)
    grad = tape.gradient(loss, x).numpy()
    assert np.isfinite(grad).all() and (grad != 0).mean() > 0.5  # most pixels survive and get a gradient
