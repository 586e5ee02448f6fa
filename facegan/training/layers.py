"""`UpConv2D`: nearest-neighbour upsampling followed by a 3x3 'same' convolution, computed exactly
but with 2.25x fewer multiply-adds when the factor is 2.

After a 2x nearest upsampling every 3x3 window covers only 2x2 distinct source pixels, so the
pair is a stride-2 transposed convolution of the *source* with a 4x4 kernel whose taps are sums
of the 3x3 kernel's. The layer owns the same (3, 3, in, filters) kernel and bias as Conv2D, so
the network, its parameters and its gradients are the lecture's; only the arithmetic is cheaper
(and a transposed convolution is one library call in both directions, which on oneDNN runs
about 2x faster than upsample + conv for the lecture's 64 px layer, backward included). Where
the plain pair measured faster, the layer computes that instead (`plain_pair_is_faster`).
"""

from __future__ import annotations

import keras
from keras import layers, ops

# Row k of the 4x4 transposed kernel sums the 3x3 taps (offsets -1, 0, +1) that reach source
# pixel m from output pixel 2m + k - 1: output 2i reads x[i-1] through tap -1 and x[i] through
# taps 0 and +1; output 2i+1 reads x[i] through taps -1 and 0 and x[i+1] through tap +1.
_TAPS_4x3 = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def plain_pair_is_faster(backend: str, platform: str, compute_dtype: str) -> bool:
    """Whether upsample + conv beats the transposed form on (Keras backend, "cpu"/"gpu", dtype).

    As measured with the same weights and function (bench/gpu_train.py --forms, and
    bench/train_throughput.py on CPUs; the figures: docs/performance.md, "The GPU benchmark"):
    the pair on XLA's CPU backend (JAX on a CPU, where the transposed form is several times
    slower) and on a GPU in float32; the transposed form with TensorFlow on a CPU (oneDNN) and on
    a GPU in bfloat16 (float16 is taken to behave like bfloat16: not measured).
    """
    if platform == "gpu":
        return compute_dtype == "float32"
    return backend == "jax"


def _platform() -> str:
    """ "gpu" when the backend computes on a GPU, else "cpu"."""
    if keras.backend.backend() == "jax":
        import jax

        return "gpu" if jax.default_backend() == "gpu" else "cpu"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    return "cpu"


def padded_channels(platform: str, compute_dtype: str) -> int:
    """The channel count that a convolution's few image channels (3 in, 3 out) are zero-padded to
    for the arithmetic, or 0 for none.

    16 channels is the measured best for a GPU in bfloat16, where the busiest kernel of the
    unpadded step was a 3-channel convolution in thin tiles (bench/gpu_train.py --pad-rgb; the
    figures: docs/performance.md). Float32 and CPUs were not measured, so they keep the plain
    shapes (on a CPU the zeros would be real extra work).
    """
    if platform == "gpu" and compute_dtype in ("bfloat16", "float16"):
        return 16
    return 0


@keras.saving.register_keras_serializable(package="facegan")
class ImageConv2D(layers.Conv2D):
    """Conv2D for the layers that touch the image's few channels (G's to_rgb, D's first conv).

    The same weights and the same function as Conv2D; where `padded_channels` says so, the input
    and kernel are zero-padded to that many channels for the convolution and the extra outputs
    dropped (zero taps add exact zeros), which gives the GPU's convolution kernels shapes they
    tile well.
    """

    def convolution_op(self, inputs, kernel):
        target = padded_channels(_platform(), self.compute_dtype)
        cin, cout = kernel.shape[2], kernel.shape[3]
        pad_in = max(0, target - cin)
        pad_out = max(0, target - cout)
        if pad_in:
            inputs = ops.pad(inputs, ((0, 0), (0, 0), (0, 0), (0, pad_in)))
        if pad_in or pad_out:
            kernel = ops.pad(kernel, ((0, 0), (0, 0), (0, pad_in), (0, pad_out)))
        y = super().convolution_op(inputs, kernel)
        if pad_out:
            y = y[..., :cout]
        return y


@keras.saving.register_keras_serializable(package="facegan")
class UpConv2D(layers.Layer):
    def __init__(self, filters: int, size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.size = size

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(3, 3, input_shape[-1], self.filters), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        # Other factors (and JAX on a CPU) keep the plain two-step form: the same function and weights.
        # Built here even when unused: Keras's fit() treats an unbuilt sublayer as an unbuilt model.
        self.upsample = layers.UpSampling2D(self.size, dtype=self.dtype_policy)
        self.upsample.build(input_shape)

    def call(self, x):
        if self.size != 2 or plain_pair_is_faster(keras.backend.backend(), _platform(), self.compute_dtype):
            y = ops.conv(self.upsample(x), self.kernel, padding="same")
            return y + self.bias
        taps = ops.convert_to_tensor(_TAPS_4x3, dtype=self.kernel.dtype)
        # Two small matrix products (2.5x faster than the equivalent einsum on TF), giving the
        # (4, 4, out, in) layout conv_transpose wants.
        k = ops.tensordot(taps, ops.transpose(self.kernel, (0, 1, 3, 2)), axes=[[1], [0]])  # (4y, 3x, o, i)
        k = ops.transpose(ops.tensordot(taps, k, axes=[[1], [1]]), (1, 0, 2, 3))
        y = ops.conv_transpose(x, ops.cast(k, x.dtype), strides=2, padding="same")
        return y + ops.cast(self.bias, y.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        scale = lambda d: None if d is None else d * self.size
        return (n, scale(h), scale(w), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "size": self.size}


@keras.saving.register_keras_serializable(package="facegan")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization, trained through TensorFlow's fused kernel when it can be.

    Keras 3 normalises with separate mean, variance and affine ops, each a pass over the
    activation in both directions; at 64 px that was a quarter of the generator's step on a
    CPU. TensorFlow's FusedBatchNorm does it in one pass each way. The math, the weights and the
    moving statistics (biased batch variance, Keras's momentum rule) are Keras's; inference and
    other backends use Keras's own path.
    """

    def call(self, inputs, training=None, mask=None):
        fusable = (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and self.center
            and self.scale
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.backend() == "tensorflow"
        )
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = ops.cast(inputs, "float32")  # as Keras does: statistics in float32 under mixed precision
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32"), epsilon=self.epsilon, is_training=True
        )
        # The kernel reports the Bessel-corrected variance; Keras averages the biased one.
        n = ops.cast(ops.prod(ops.shape(x)[:3]), "float32")
        variance = variance * (n - 1.0) / n
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + ops.cast(mean, self.moving_mean.dtype) * (1.0 - m))
        self.moving_variance.assign(
            self.moving_variance * m + ops.cast(variance, self.moving_variance.dtype) * (1.0 - m)
        )
        return ops.cast(y, self.compute_dtype)


def spectral_normalize(kernel, u, training: bool):
    """kernel / sigma, sigma its largest singular value (as a [-1, out] matrix), estimated by one
    power-iteration step from `u`, the running estimate of the leading right singular vector
    (Miyato et al. 2018). In training `u` advances one step per call; the division is part of
    the graph, so gradients see it (unlike keras.layers.SpectralNormalization, which overwrites
    the kernel variable with the normalised value and so does nothing under JAX's stateless step)."""
    w = ops.reshape(ops.cast(kernel, "float32"), (-1, kernel.shape[-1]))
    u_old = ops.cast(u, "float32")
    v = _unit(ops.matmul(u_old, ops.transpose(w)))
    u_new = ops.stop_gradient(_unit(ops.matmul(v, w)))
    v = ops.stop_gradient(v)
    sigma = ops.sum(ops.matmul(v, w) * u_new)
    if training:
        u.assign(u_new)
    return ops.cast(kernel, "float32") / sigma


def _unit(x):
    return x / (ops.sqrt(ops.sum(ops.square(x))) + 1e-12)


class _SpectralKernel:
    """Adds the power iteration's vector u (non-trainable: a running estimate) after the layer's own
    build; `normalized_kernel` is then the kernel the layer computes with."""

    def build(self, input_shape):
        super().build(input_shape)
        out = self.kernel.shape[-1]
        self.u = self.add_weight(name="u", shape=(1, out), initializer="random_normal", trainable=False)

    def normalized_kernel(self, dtype, training):
        return ops.cast(spectral_normalize(self.kernel, self.u, training), dtype)


@keras.saving.register_keras_serializable(package="facegan")
class SpectralConv2D(_SpectralKernel, layers.Conv2D):
    """Conv2D with a spectrally normalised kernel (no activation: the discriminator adds its own)."""

    def call(self, inputs, training=False):
        kernel = self.normalized_kernel(inputs.dtype, training)
        y = ops.conv(inputs, kernel, strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate)
        return y + ops.cast(self.bias, y.dtype)


@keras.saving.register_keras_serializable(package="facegan")
class SpectralDense(_SpectralKernel, layers.Dense):
    """Dense with a spectrally normalised kernel (no activation)."""

    def call(self, inputs, training=False):
        return ops.matmul(inputs, self.normalized_kernel(inputs.dtype, training)) + ops.cast(self.bias, inputs.dtype)
