"""facegan.training.layers on JAX: the transposed-convolution UpConv2D (what GPUs run) computes
the lecture's upsample + conv generator, outputs and gradients."""

import jax
import jax.numpy as jnp
import keras
import numpy as np

from facegan.config import ModelConfig
from facegan.training import layers
from facegan.training.models import build_discriminator, build_generator


def test_transposed_upconv_is_the_lecture_generator(monkeypatch):
    monkeypatch.setattr(layers, "_platform", lambda: "gpu")  # the transposed form, as JAX runs bfloat16 on a GPU
    monkeypatch.setattr(layers, "plain_pair_is_faster", lambda *args: False)
    keras.utils.set_random_seed(0)
    fused = build_generator(ModelConfig(resolution=64))
    plain = build_generator(ModelConfig(resolution=64, fused_upconv=False))
    for a, b in zip(plain.variables, fused.variables):
        a.assign(b)
    z = jnp.asarray(np.random.default_rng(0).normal(size=(3, 100)).astype("float32"))

    def forward(model):
        ntv = [v.value for v in model.non_trainable_variables]

        def loss(tv):
            out, _ = model.stateless_call(tv, ntv, z, training=True)
            return jnp.mean(out**2), out

        return jax.value_and_grad(loss, has_aux=True)([v.value for v in model.trainable_variables])

    (_, out_f), grads_f = forward(fused)
    (_, out_p), grads_p = forward(plain)
    assert float(jnp.abs(out_f - out_p).max()) < 2e-5
    # BatchNorm over three images amplifies float32 rounding: up to 1.04e-3 relative was seen.
    for gf, gp in zip(grads_f, grads_p):
        assert float(jnp.linalg.norm(gf - gp)) <= 5e-3 * float(jnp.linalg.norm(gp)) + 1e-7


def test_padded_image_convs_are_the_plain_networks(monkeypatch):
    """G's to_rgb and D's conv0 zero-padded to 16 channels (what a GPU runs in bfloat16) compute
    the unpadded networks, on JAX as on TensorFlow."""
    keras.utils.set_random_seed(0)
    cfg = ModelConfig(resolution=32)
    g, d = build_generator(cfg), build_discriminator(cfg)
    z = jnp.asarray(np.random.default_rng(0).normal(size=(3, 100)).astype("float32"))
    plain_image = g(z, training=False)
    plain_logit = d(plain_image, training=False)
    monkeypatch.setattr(layers, "padded_channels", lambda *args: 16)
    padded_image = g(z, training=False)
    padded_logit = d(plain_image, training=False)
    assert float(jnp.abs(padded_image - plain_image).max()) < 1e-6
    assert float(jnp.abs(padded_logit - plain_logit).max()) < 1e-5
