"""`UpConv2D`: nearest-neighbour upsampling followed by a 3x3 'same' convolution, computed exactly
but with 2.25x fewer multiply-adds when the factor is 2.

After a 2x nearest upsampling every 3x3 window covers only 2x2 distinct source pixels, so each
of the four output phases is a 2x2 convolution of the *source* with taps summed from the 3x3
kernel. One 2x2 convolution with 4*filters outputs computes all phases; they are then
interleaved. The layer owns the same (3, 3, in, filters) kernel and bias as Conv2D, so the
network, its parameters and its gradients are the lecture's; only the arithmetic is cheaper.
"""
from __future__ import annotations

import keras
from keras import layers, ops

# For output phase p (0 or 1), which of the 3 taps (offsets -1, 0, +1) land on each of the 2
# source pixels the window covers: phase 0 covers source offsets (-1, 0), phase 1 (0, +1).
_PHASE_TAPS = ((( 1.0, 0.0, 0.0), (0.0, 1.0, 1.0)),
               (( 1.0, 1.0, 0.0), (0.0, 0.0, 1.0)))


def _depth_to_space(x, block: int):
    n, h, w, c = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2], x.shape[-1] // (block * block)
    x = ops.reshape(x, (n, h, w, block, block, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (n, h * block, w * block, c))


@keras.saving.register_keras_serializable(package="facegan")
class UpConv2D(layers.Layer):
    def __init__(self, filters: int, size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.size = size

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(3, 3, input_shape[-1], self.filters),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        if self.size != 2:
            # Other factors keep the plain two-step form (still the same function and weights).
            self.upsample = layers.UpSampling2D(self.size, dtype=self.dtype_policy)

    def call(self, x):
        if self.size != 2:
            y = ops.conv(self.upsample(x), self.kernel, padding="same")
            return y + self.bias
        taps = ops.convert_to_tensor(_PHASE_TAPS, dtype=self.kernel.dtype)  # [phase, 2, 3]
        # phase kernels [2(a), 2(b), in, py, px, out] = sum over the 3x3 taps that fall on (a, b)
        k = ops.einsum("yak,xbl,klio->abiyxo", taps, taps, self.kernel)
        k = ops.reshape(k, (2, 2, k.shape[2], 4 * self.filters))
        y = ops.conv(ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), ops.cast(k, x.dtype), padding="valid")
        h, w = ops.shape(x)[1], ops.shape(x)[2]
        # phase (py, px) reads rows py..py+h-1 and columns px..px+w-1 of the padded result;
        # depth_to_space's channel order (py * 2 + px) is the kernel's (py, px) order.
        f = self.filters
        y = ops.concatenate([y[:, py:py + h, px:px + w, (2 * py + px) * f:(2 * py + px + 1) * f]
                             for py in (0, 1) for px in (0, 1)], axis=-1)
        y = _depth_to_space(y, 2)
        return y + ops.cast(self.bias, y.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        scale = lambda d: None if d is None else d * self.size  # noqa: E731
        return (n, scale(h), scale(w), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "size": self.size}
