"""The lecture's DCGAN networks (T81-558 7.2), built with the Keras functional API.

Both builders take the run's `ModelConfig`, so the generator rebuilt for `sample` or `export`
is the one that was trained. Under a mixed-precision policy the last layers stay float32: the
tanh image and the discriminator's logit feed losses and uint8 conversion.
"""

from __future__ import annotations

import keras
from keras import layers

from facegan.config import ModelConfig
from facegan.training.layers import FusedBatchNormalization, ImageConv2D, SpectralConv2D, SpectralDense, UpConv2D

BASE = 4  # the generator's first feature map is BASE x BASE
BASE_UPSAMPLES = 3  # 4 -> 8 -> 16 -> 32 before the resolution-specific tail


def build_generator(cfg: ModelConfig) -> keras.Model:
    """z [N, latent_dim] -> image [N, res, res, channels] in [-1, 1]."""
    width = lambda filters: max(1, round(filters * cfg.g_width))
    z = keras.Input((cfg.latent_dim,), name="z")
    x = layers.Dense(BASE * BASE * width(256), activation="relu", name="project")(z)
    x = layers.Reshape((BASE, BASE, width(256)))(x)
    for i, filters in enumerate((256, 256, 128)):
        x = _up_block(x, 2, width(filters), cfg, f"up{i}")
    scale = cfg.resolution // (BASE << BASE_UPSAMPLES)
    if scale > 1:
        x = _up_block(x, scale, width(128), cfg, "up_res")
    rgb_dtype = "float32" if cfg.to_rgb_float32 else None  # None: the run's precision policy
    x = ImageConv2D(cfg.channels, 3, padding="same", dtype=rgb_dtype, name="to_rgb")(x)  # padded on GPUs: layers.py
    image = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(z, image, name="generator")


def _up_block(x, size: int, filters: int, cfg: ModelConfig, name: str):
    if cfg.upsample == "nearest" and cfg.fused_upconv:
        x = UpConv2D(filters, size, name=f"{name}_conv")(x)
    else:  # bilinear has no fused form: its upsampled pixels are not copies of the source's
        x = layers.UpSampling2D(size, interpolation=cfg.upsample, name=f"{name}_upsample")(x)
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)
    x = _batch_norm(x, cfg, name)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_discriminator(cfg: ModelConfig) -> keras.Model:
    """image [N, res, res, channels] in [-1, 1] -> real/fake logit [N, 1] (float32).

    The lecture's D: 32-64-128-256-512 filters (times cfg.d_width), BatchNorm after every conv
    but the first; with cfg.spectral_norm every weight is spectrally normalised and the
    BatchNorms go, as in SNGAN (the normalisation is then the Lipschitz bound, not batch statistics)."""
    conv = SpectralConv2D if cfg.spectral_norm else layers.Conv2D
    dense = SpectralDense if cfg.spectral_norm else layers.Dense
    width = lambda filters: max(1, round(filters * cfg.d_width))
    image = keras.Input((cfg.resolution, cfg.resolution, cfg.channels), name="image")
    first_conv = SpectralConv2D if cfg.spectral_norm else ImageConv2D  # ImageConv2D: padded on GPUs
    x = first_conv(width(32), 3, strides=2, padding="same", name="conv0")(image)
    x = layers.LeakyReLU(0.2, name="conv0_lrelu")(x)
    x = layers.Dropout(cfg.dropout, name="conv0_dropout")(x)
    x = conv(width(64), 3, strides=2, padding="same", name="conv1")(x)
    x = layers.ZeroPadding2D(((0, 1), (0, 1)), name="conv1_pad")(x)
    x = _down_tail(x, cfg, "conv1")
    for i, (filters, stride) in enumerate(((128, 2), (256, 1), (512, 1)), start=2):
        x = conv(width(filters), 3, strides=stride, padding="same", name=f"conv{i}")(x)
        x = _down_tail(x, cfg, f"conv{i}")
    x = layers.Flatten(name="flatten")(x)
    logit = dense(1, dtype="float32", name="logit")(x)
    return keras.Model(image, logit, name="discriminator")


def _down_tail(x, cfg: ModelConfig, name: str):
    if not cfg.spectral_norm:
        x = _batch_norm(x, cfg, name)
    x = layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)
    return layers.Dropout(cfg.dropout, name=f"{name}_dropout")(x)


def _batch_norm(x, cfg: ModelConfig, name: str):
    norm = FusedBatchNormalization if cfg.fused_batchnorm else layers.BatchNormalization
    return norm(momentum=cfg.bn_momentum, name=f"{name}_bn")(x)
