"""Differentiable augmentation for the discriminator (DiffAugment, Zhao et al. 2020).

With few training faces the discriminator memorises them and stops teaching the generator.
Translating and cutting out *both* real and generated images, differentiably, every time the
discriminator sees them (in both losses) keeps it honest without leaking augmentations into
the generator's output. Written in keras.ops; the caller draws the uniform numbers (a
SeedGenerator on TensorFlow, a key on JAX), so both steps share this code.
"""

from __future__ import annotations

from keras import ops

DRAWS = 2  # uniform numbers per image per transform


def _offsets(u, count: int):
    """u in [0, 1) -> integers 0..count-1."""
    return ops.minimum(ops.cast(ops.floor(u * count), "int32"), count - 1)


def translation(x, u, ratio: float = 0.125):
    """Shift each image by up to ratio*size pixels in each direction, filling with zeros (black)."""
    h, w = x.shape[1], x.shape[2]
    shift = int(h * ratio + 0.5)
    ty = _offsets(u[:, :1], 2 * shift + 1) - shift
    tx = _offsets(u[:, 1:2], 2 * shift + 1) - shift
    padded = ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))  # out-of-range reads land on this zero border
    rows = ops.clip(ops.arange(h, dtype="int32")[None, :] + ty + 1, 0, h + 1)
    cols = ops.clip(ops.arange(w, dtype="int32")[None, :] + tx + 1, 0, w + 1)
    x = ops.take_along_axis(padded, rows[:, :, None, None], axis=1)
    return ops.take_along_axis(x, cols[:, None, :, None], axis=2)


def cutout(x, u, ratio: float = 0.5):
    """Zero one square of ratio*size per image, centred anywhere in the image."""
    h, w = x.shape[1], x.shape[2]
    half = int(h * ratio + 0.5) // 2
    cy, cx = _offsets(u[:, :1], h), _offsets(u[:, 1:2], w)
    inside_y = ops.abs(ops.arange(h, dtype="int32")[None, :] - cy) < half
    inside_x = ops.abs(ops.arange(w, dtype="int32")[None, :] - cx) < half
    keep = ops.logical_not(ops.logical_and(inside_y[:, :, None], inside_x[:, None, :]))
    return x * ops.cast(keep, x.dtype)[:, :, :, None]


def augment(x, policy: tuple[str, ...], u):
    """Apply the policy's transforms in order; u: uniform [0, 1) numbers, [N, DRAWS * len(policy)]."""
    for i, name in enumerate(policy):
        x = TRANSFORMS[name](x, u[:, DRAWS * i : DRAWS * (i + 1)])
    return x


TRANSFORMS = {"translation": translation, "cutout": cutout}  # the names TrainConfig.augment accepts
