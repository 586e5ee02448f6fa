"""The lecture's networks, the seed -> z -> uint8 path, and the two-tape train step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from facegan.config import ModelConfig
from facegan.sampling import generate, seed_to_z, to_uint8
from facegan.training import layers
from facegan.training.gan import FaceGAN
from facegan.training.layers import FusedBatchNormalization
from facegan.training.models import build_discriminator, build_generator


@pytest.mark.parametrize("res", [32, 64, 96])
def test_shapes_and_dtypes(res):
    cfg = ModelConfig(resolution=res)
    g, d = build_generator(cfg), build_discriminator(cfg)
    z = np.random.default_rng(0).standard_normal((3, cfg.latent_dim)).astype(np.float32)
    x = keras.ops.convert_to_numpy(g(z, training=False))
    assert x.shape == (3, res, res, 3) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    logits = d(x, training=False)
    assert tuple(logits.shape) == (3, 1) and logits.dtype == "float32"


def test_seed_to_z_is_per_seed_and_normal():
    z = seed_to_z([0, 1, 42], 100).numpy()
    assert z.shape == (3, 100) and z.dtype == np.float32
    # A seed's vector does not depend on the batch it is requested in.
    np.testing.assert_array_equal(seed_to_z([42], 100).numpy()[0], z[2])
    assert not np.allclose(z[0], z[1])
    big = seed_to_z(np.arange(200), 100).numpy()
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05


def test_to_uint8_rounds_and_clips():
    x = np.array([-2.0, -1.0, -0.999, 0.0, 0.5, 1.0, 3.0], np.float32)
    out = keras.ops.convert_to_numpy(to_uint8(x))
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 0, 128, 191, 255, 255]


def test_generate_is_deterministic_in_inference_mode():
    g = build_generator(ModelConfig(resolution=32))
    z = seed_to_z([3, 4], 100).numpy()
    a, b = generate(g, z), generate(g, z, batch_size=1)
    assert a.dtype == np.uint8 and a.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(a, b)


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def test_each_loss_updates_only_its_own_network():
    """The lecture's central point, asserted directly.

    Adam's first step moves every weight by -lr * sign(gradient). Replaying the step's forward
    pass from the same RNG state gives the gradients: the generator's change must follow the
    sign of d g_loss / d G, the discriminator's the sign of d d_loss / d D, and the
    discriminator must not follow d g_loss / d D (the opposite objective).
    """
    cfg = ModelConfig(resolution=32)
    keras.utils.set_random_seed(1)
    g, d = build_generator(cfg), build_discriminator(cfg)
    gan = FaceGAN(g, d, seed=5)
    gan.compile(keras.optimizers.Adam(1e-3, beta_1=0.5), keras.optimizers.Adam(1e-3, beta_1=0.5), jit_compile=False)
    gan.build_optimizers()
    real = tf.random.uniform((8, 32, 32, 3), -1, 1, seed=3)
    all_state = g.variables + d.variables + [gan.z_sampler.state]
    saved = _snapshot(all_state)
    g_before, d_before = _snapshot(g.trainable_variables), _snapshot(d.trainable_variables)
    gan.train_step(real)
    g_delta = [v.numpy() - b for v, b in zip(g.trainable_variables, g_before)]
    d_delta = [v.numpy() - b for v, b in zip(d.trainable_variables, d_before)]

    # Replay the same forward pass (same z, same dropout masks) from the saved state.
    for v, value in zip(all_state, saved):
        v.assign(value)
    z = keras.random.normal((8, cfg.latent_dim), seed=gan.z_sampler)
    with tf.GradientTape(persistent=True) as tape:
        fake = g(z, training=True)
        real_logits, fake_logits = d(real, training=True), d(fake, training=True)
        g_loss = keras.ops.mean(keras.ops.binary_crossentropy(keras.ops.ones_like(fake_logits), fake_logits, True))
        d_loss = keras.ops.mean(
            keras.ops.binary_crossentropy(keras.ops.ones_like(real_logits), real_logits, True)
        ) + keras.ops.mean(keras.ops.binary_crossentropy(keras.ops.zeros_like(fake_logits), fake_logits, True))
    grads_g = tape.gradient(g_loss, g.trainable_variables)
    grads_d = tape.gradient(d_loss, d.trainable_variables)
    grads_d_from_g_loss = tape.gradient(g_loss, d.trainable_variables)

    def agreement(deltas, grads):
        deltas = np.concatenate([np.ravel(x) for x in deltas])
        grads = np.concatenate([np.ravel(x.numpy()) for x in grads])
        mask = np.abs(grads) > 1e-4 * np.abs(grads).max()
        return np.mean(np.sign(deltas[mask]) == -np.sign(grads[mask]))

    assert agreement(g_delta, grads_g) > 0.99
    assert agreement(d_delta, grads_d) > 0.99
    assert agreement(d_delta, grads_d_from_g_loss) < 0.7
    assert all(np.abs(x).max() > 0 for x in g_delta) and all(np.abs(x).max() > 0 for x in d_delta)


def test_fused_batchnorm_is_keras_batchnorm():
    """Outputs, gradients and moving statistics match Keras's BatchNormalization, both modes."""
    fused = FusedBatchNormalization(momentum=0.8)
    plain = keras.layers.BatchNormalization(momentum=0.8)
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, (8, 5, 5, 16)).astype(np.float32))
    fused.build(x.shape), plain.build(x.shape)
    rng = np.random.default_rng(1)
    for layer in (fused, plain):
        layer.gamma.assign(rng.uniform(0.5, 1.5, 16).astype(np.float32) if layer is fused else fused.gamma)
        layer.beta.assign(rng.normal(size=16).astype(np.float32) if layer is fused else fused.beta)
    upstream = tf.constant(np.random.default_rng(2).normal(size=x.shape).astype(np.float32))
    results = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        results.append([y, *tape.gradient(loss, [x, layer.gamma, layer.beta])])
    for a, b in zip(*results):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    # Keras's rule: moving = 0.8 * moving + 0.2 * batch statistic, with the biased variance.
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.2 * x.numpy().mean((0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.8 + 0.2 * x.numpy().var((0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-5)
    np.testing.assert_allclose(fused(x, training=False).numpy(), plain(x, training=False).numpy(), atol=1e-5)


def test_bilinear_generator_upsamples_bilinearly_with_the_same_weights():
    """--upsample bilinear: the same variables as the nearest generator, each upsampling layer bilinear."""
    nearest = build_generator(ModelConfig(resolution=32))
    bilinear = build_generator(ModelConfig(resolution=32, upsample="bilinear"))
    assert [tuple(v.shape) for v in bilinear.variables] == [tuple(v.shape) for v in nearest.variables]
    ups = [layer for layer in bilinear.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert len(ups) == 3 and all(layer.interpolation == "bilinear" for layer in ups)
    # On a constant map bilinear and nearest agree; on a ramp bilinear interpolates between pixels.
    ramp = np.arange(4, dtype=np.float32).reshape(1, 1, 4, 1)
    out = keras.ops.convert_to_numpy(ups[0](ramp))[0, 0, :, 0]
    assert len(set(out.round(4))) > 4  # nearest would repeat the 4 values


def test_to_rgb_float32_keeps_the_last_conv_out_of_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        plain = build_generator(ModelConfig(resolution=32))
        kept = build_generator(ModelConfig(resolution=32, to_rgb_float32=True))
    finally:
        keras.config.set_dtype_policy(previous)
    assert plain.get_layer("to_rgb").compute_dtype == "bfloat16"
    assert kept.get_layer("to_rgb").compute_dtype == "float32"
    assert kept.get_layer("up2_conv").compute_dtype == "bfloat16"  # only the last conv


@pytest.mark.parametrize(
    "backend, platform, dtype, plain",
    [
        ("jax", "cpu", "float32", True),  # XLA:CPU ran the transposed form 7x slower
        ("jax", "cpu", "bfloat16", True),
        ("tensorflow", "cpu", "float32", False),  # oneDNN ran it about 2x faster
        ("tensorflow", "cpu", "bfloat16", False),
        ("jax", "gpu", "float32", True),  # XLA:GPU on an H200: 17,483 vs 14,710 images/s
        ("jax", "gpu", "bfloat16", False),  # 37,949 vs 36,898, half the memory
        ("tensorflow", "gpu", "float32", True),  # TF's GPU step compiles with XLA by default
        ("tensorflow", "gpu", "float16", False),
    ],
)
def test_upconv_takes_the_form_measured_faster(backend, platform, dtype, plain):
    assert layers.plain_pair_is_faster(backend, platform, dtype) is plain


@pytest.mark.parametrize("res", [64, 96])
def test_fused_upconv_is_the_lecture_generator(res):
    """The transposed-convolution generator computes the lecture's UpSampling2D + Conv2D exactly."""
    keras.utils.set_random_seed(0)  # fixed weights: the float32 tolerances below hold for them
    fused = build_generator(ModelConfig(resolution=res))
    plain = build_generator(ModelConfig(resolution=res, fused_upconv=False))
    assert [tuple(v.shape) for v in fused.variables] == [tuple(v.shape) for v in plain.variables]
    for a, b in zip(plain.variables, fused.variables):
        a.assign(b)
    z = seed_to_z([1, 2, 3], 100)
    with tf.GradientTape(persistent=True) as tape:
        out_f, out_p = fused(z, training=True), plain(z, training=True)
        loss_f, loss_p = tf.reduce_mean(out_f**2), tf.reduce_mean(out_p**2)
    np.testing.assert_allclose(out_f.numpy(), out_p.numpy(), atol=2e-5)
    for gf, gp in zip(
        tape.gradient(loss_f, fused.trainable_variables), tape.gradient(loss_p, plain.trainable_variables)
    ):
        assert np.linalg.norm(gf.numpy() - gp.numpy()) <= 1e-3 * np.linalg.norm(gp.numpy()) + 1e-7


@pytest.mark.parametrize(
    "platform, dtype, channels",
    [
        ("gpu", "bfloat16", 16),  # XLA:GPU on an H200: +3.0 % and +3.5 % images/s in two runs
        ("gpu", "float16", 16),  # taken to behave like bfloat16 (not measured)
        ("gpu", "float32", 0),  # not measured
        ("cpu", "bfloat16", 0),  # on a CPU the zeros are real extra work
        ("cpu", "float32", 0),
    ],
)
def test_image_convs_are_padded_where_measured_faster(platform, dtype, channels):
    assert layers.padded_channels(platform, dtype) == channels


@pytest.mark.parametrize(
    "cin, filters, strides", [(128, 3, 1), (3, 32, 2)], ids=["to_rgb: 3 outputs", "conv0: 3 inputs"]
)
def test_padded_image_conv_is_conv2d(monkeypatch, cin, filters, strides):
    """Zero-padded channels change the shapes the convolution sees, not its outputs or gradients."""
    monkeypatch.setattr(layers, "padded_channels", lambda *args: 16)
    padded = layers.ImageConv2D(filters, 3, strides=strides, padding="same")
    plain = keras.layers.Conv2D(filters, 3, strides=strides, padding="same")
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 8, 8, cin)).astype(np.float32))
    padded.build(x.shape)
    plain.build(x.shape)
    padded.bias.assign(np.random.default_rng(1).normal(size=filters).astype(np.float32))
    for a, b in zip(plain.variables, padded.variables):
        a.assign(b)
    results = []
    for layer in (padded, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.sin(y))
        results.append([y, *tape.gradient(loss, [x, layer.kernel, layer.bias])])
    assert results[0][0].shape == (2, 8 // strides, 8 // strides, filters)
    for a, b in zip(*results):
        # equal up to float32 summation order, which differs between the kernels oneDNN picks for
        # 16 and 3 channels (and with its thread count): the tolerance scales with the values'
        # size (kernel gradients sum 128 products: up to ~2e-5 apart at values of ~50)
        scale = max(1.0, float(np.abs(b.numpy()).max()))
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6 * scale)
