"""Adaptive discriminator augmentation (ADA, Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data").

On 100 faces D learns the training images by heart (by epoch 40 of the quick start it already
calls 85-95 % of real and of fake images right) and then teaches G less about what faces share. ADA shows D every
image -- real and generated alike, in both losses -- through random transforms applied with
probability p, and steers p with the overfitting signal r_t = E[sign(D(x_real))]: above the
target (0.6 in the paper) D is too sure of the real images, so p goes up; below it p comes down.
Because the same transforms hit real and fake images, and each one is applied with p < 1, G is
not pushed to produce augmented faces (the paper's "non-leaking" condition).

The transforms are the ones that are safe for faces (the paper's pixel blitting + geometric +
colour groups, minus 90-degree rotations: a face upside down is not a face): horizontal flip,
integer translation by up to 1/8 of the side, isotropic scaling (log-normal, sigma 0.2 ln 2),
brightness (+N(0, 0.2)) and contrast (x log-normal, sigma 0.5 ln 2, about each image's mean).
Flip, translation and scaling are one bilinear resampling per axis with mirrored borders, written
as two small per-image matrices, so every transform is differentiable. All in keras.ops: the
caller draws the uniform numbers (a SeedGenerator on TensorFlow, a key on JAX), as for DiffAugment.
"""

from __future__ import annotations

import math

from keras import ops

DRAWS = 11  # uniform numbers per image: 5 gates, flip, 2 shifts, scale, brightness, contrast
TRANSLATE = 0.125  # largest shift, as a fraction of the side
SCALE_STD = 0.2 * math.log(2)  # log of the isotropic scale factor ~ N(0, this)
BRIGHTNESS_STD = 0.2  # added to every pixel of an image (images are in [-1, 1])
CONTRAST_STD = 0.5 * math.log(2)  # log of the contrast factor ~ N(0, this)


def overfitting(real_logits):
    """r_t = E[sign(D(x_real))]: 1 when D calls every real image real with any margin, 0 at chance."""
    return ops.mean(ops.sign(ops.cast(real_logits, "float32")))


def adjust(p, real_logits, target: float, batch: int, images: int):
    """The next p: up by batch/images when r_t > target, down by as much when below, kept in [0, 1].
    `images` is how many images it takes p to cross from 0 to 1 (StyleGAN2-ADA's ada_kimg x 1000)."""
    step = ops.sign(overfitting(real_logits) - target) * (batch / images)
    return ops.clip(p + step, 0.0, 1.0)


def _normal(u):
    """Uniform [0, 1) -> standard normal (inverse CDF), clipped away from the infinite ends."""
    u = ops.clip(u, 1e-6, 1.0 - 1e-6)
    return math.sqrt(2.0) * ops.erfinv(2.0 * u - 1.0)


def _reflect(index, size: int):
    """Mirror integer positions into 0..size-1 (..., 2, 1, 0, 1, 2, ..., size-1, size-2, ...)."""
    period = 2 * size - 2
    index = ops.mod(index, period)
    return ops.where(index > size - 1, period - index, index)


def resampling(size: int, flip, shift, scale):
    """[N, size, size] matrices M: (M @ line)[j] is the line read at source position
    c + (j' - c) / scale - shift (c the centre, j' = size-1-j when flipped), bilinearly, with
    mirrored borders. flip: 0/1, shift: pixels, scale: factor; each [N]."""
    c = (size - 1) / 2.0
    j = ops.cast(ops.arange(size), "float32")[None, :]
    j = j + flip[:, None] * (size - 1 - 2.0 * j)
    source = c + (j - c) / scale[:, None] - shift[:, None]
    below = ops.floor(source)
    frac = (source - below)[:, :, None]
    below = ops.cast(below, "int32")
    low = ops.one_hot(_reflect(below, size), size)
    high = ops.one_hot(_reflect(below + 1, size), size)
    return (1.0 - frac) * low + frac * high


def augment(x, p, u):
    """x [N, H, W, C] in [-1, 1] through each transform with probability p; u: [N, DRAWS] uniform [0, 1)."""
    n, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
    dtype = x.dtype
    x = ops.cast(x, "float32")
    on = ops.cast(u[:, :5] < p, "float32")  # which transforms each image gets
    flip = on[:, 0] * ops.cast(u[:, 5] < 0.5, "float32")
    ty = on[:, 1] * ops.round((2.0 * u[:, 6] - 1.0) * TRANSLATE * h)
    tx = on[:, 1] * ops.round((2.0 * u[:, 7] - 1.0) * TRANSLATE * w)
    scale = ops.exp(on[:, 2] * SCALE_STD * _normal(u[:, 8]))
    rows = resampling(h, ops.zeros((n,)), ty, scale)
    cols = resampling(w, flip, tx, scale)
    x = ops.einsum("nij,njwc->niwc", rows, x)
    x = ops.einsum("nkw,niwc->nikc", cols, x)
    x = x + (on[:, 3] * BRIGHTNESS_STD * _normal(u[:, 9]))[:, None, None, None]
    contrast = ops.exp(on[:, 4] * CONTRAST_STD * _normal(u[:, 10]))[:, None, None, None]
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    x = x + (contrast - 1.0) * (x - mean)  # (x - mean) * contrast + mean, exact when contrast is 1
    return ops.cast(x, dtype)
