"""The small-data remedies, each asserted as a method: ADA's transforms and its controller, R1's
place in the step (D's gradient only), spectral normalisation, a narrower D, and the colour figure."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli

from facegan.config import ModelConfig
from facegan.evaluation.color import color_spread
from facegan.training import ada
from facegan.training.gan import FaceGAN
from facegan.training.layers import SpectralConv2D
from facegan.training.models import build_discriminator, build_generator


def draws(n, gates_on, **values):
    """u for ada.augment: the five gates on (0.0) or off (0.99), the other numbers 0.5 unless given."""
    u = np.full((n, ada.DRAWS), 0.5, np.float32)
    u[:, :5] = 0.99
    for gate in gates_on:
        u[:, gate] = 0.0
    for index, value in values.items():
        u[:, int(index[1:])] = value
    return u


def test_ada_with_p_zero_is_the_identity():
    x = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    u = np.random.default_rng(1).random((4, ada.DRAWS)).astype(np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ada.augment(x, 0.0, u)), x)


def test_ada_flip_and_integer_translation_are_exact():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 1)).astype(np.float32)
    flipped = keras.ops.convert_to_numpy(ada.augment(x, 1.0, draws(2, [0], u5=0.0)))
    np.testing.assert_allclose(flipped, x[:, :, ::-1], atol=1e-6)
    # u6 = 0, u7 = 1 - eps: shift rows by -2 (TRANSLATE x 16) and columns by +2, mirrored borders
    shifted = keras.ops.convert_to_numpy(ada.augment(x, 1.0, draws(2, [1], u6=0.0, u7=0.9999)))
    rows = np.array([min(i + 2, 2 * 15 - (i + 2)) for i in range(16)])  # output row i reads row i + 2
    cols = np.array([abs(j - 2) for j in range(16)])  # output column j reads column j - 2
    np.testing.assert_allclose(shifted, x[:, rows][:, :, cols], atol=1e-6)


def test_ada_colour_transforms_and_gray_stays_gray():
    gray = np.repeat(np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 1)), 3, axis=-1).astype(np.float32)
    u = np.random.default_rng(1).random((8, ada.DRAWS)).astype(np.float32)
    y = keras.ops.convert_to_numpy(ada.augment(gray, 1.0, u))
    assert not np.allclose(y, gray)
    np.testing.assert_allclose(y[..., 0], y[..., 1], atol=1e-6)  # no transform invents colour
    np.testing.assert_allclose(y[..., 1], y[..., 2], atol=1e-6)
    bright = keras.ops.convert_to_numpy(ada.augment(gray, 1.0, draws(8, [3], u9=0.8)))
    offset = ada.BRIGHTNESS_STD * np.sqrt(2) * float(tf.math.erfinv(2 * 0.8 - 1.0))
    np.testing.assert_allclose(bright - gray, offset, atol=1e-5)
    contrast = keras.ops.convert_to_numpy(ada.augment(gray, 1.0, draws(8, [4], u10=0.9)))
    assert contrast.std(axis=(1, 2, 3)).mean() > gray.std(axis=(1, 2, 3)).mean()
    np.testing.assert_allclose(contrast.mean(axis=(1, 2, 3)), gray.mean(axis=(1, 2, 3)), atol=1e-5)


def test_ada_transforms_pass_gradients_to_the_generator():
    x = tf.Variable(np.random.default_rng(0).standard_normal((6, 16, 16, 3)).astype(np.float32))
    u = np.random.default_rng(1).random((6, ada.DRAWS)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(ada.augment(x, 1.0, u) ** 2)
    grad = tape.gradient(loss, x).numpy()
    assert np.isfinite(grad).all() and (grad != 0).mean() > 0.5


def test_ada_probability_rule():
    up = ada.adjust(0.2, np.full((16, 1), 3.0, np.float32), 0.6, 16, 1000)  # r_t = 1 > 0.6: D overfits
    down = ada.adjust(0.2, np.array([[3.0], [-3.0]] * 8, np.float32), 0.6, 16, 1000)  # r_t = 0
    np.testing.assert_allclose([float(up), float(down)], [0.216, 0.184], rtol=1e-6)
    assert float(ada.adjust(0.0, np.full((4, 1), -1.0, np.float32), 0.6, 16, 1000)) == 0.0  # kept in [0, 1]
    assert float(ada.adjust(0.999, np.full((4, 1), 1.0, np.float32), 0.6, 16, 1000)) == 1.0


def small_gan(**kwargs):
    cfg = ModelConfig(resolution=32, dropout=0.0)
    keras.utils.set_random_seed(2)
    gan = FaceGAN(build_generator(cfg), build_discriminator(cfg), seed=3, **kwargs)
    gan.compile(keras.optimizers.Adam(1e-4, beta_1=0.5), keras.optimizers.Adam(1e-4, beta_1=0.5))
    gan.build_optimizers()
    return gan


@pytest.mark.parametrize("bias, start, direction", [(50.0, 0.0, +1), (-50.0, 0.5, -1)])
def test_ada_probability_moves_with_overfitting_in_the_tf_step(bias, start, direction):
    """D sure of every real image (logit bias +50: r_t = 1) -> p rises by batch/ada_images a step;
    D calling every real image fake (r_t = -1) -> p falls."""
    gan = small_gan(ada_target=0.6, ada_images=400)
    gan.discriminator.get_layer("logit").bias.assign([bias])
    gan.ada_p.assign(start)
    real = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    for _ in range(3):
        logs = gan.train_step(tf.constant(real))
    np.testing.assert_allclose(float(gan.ada_p.value), start + direction * 3 * 16 / 400, atol=1e-6)
    assert "ada_p" in logs


def flat(grads):
    return np.concatenate([np.ravel(np.asarray(g)) for g in grads])


def test_r1_changes_only_the_discriminators_gradient():
    """The same weights, batch and z with and without R1: G's gradient is identical, D's differs by
    exactly gamma/2 x the gradient of E|grad_x D(x)|^2 (computed here on its own)."""
    gamma = 10.0
    plain = small_gan()
    with_r1 = FaceGAN(plain.generator, plain.discriminator, seed=3, r1_gamma=gamma)
    with_r1.compile(plain.g_optimizer, plain.d_optimizer)
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32))
    z = tf.constant(rng.standard_normal((8, 100)).astype(np.float32))
    g0, d0, out0 = plain.compute_gradients(real, z)
    g1, d1, out1 = with_r1.compute_gradients(real, z)
    np.testing.assert_array_equal(flat(g1), flat(g0))
    assert float(out1["g_loss"]) == float(out0["g_loss"])

    d_vars = plain.discriminator.trainable_variables
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(real)
            summed = tf.reduce_sum(plain.discriminator(real, training=True))
        grad_x = inner.gradient(summed, real)
        penalty = tf.reduce_mean(tf.reduce_sum(grad_x**2, axis=[1, 2, 3]))
    penalty_grads = outer.gradient(penalty, d_vars)
    penalty_grads = [
        np.zeros(v.shape) if g is None else g for g, v in zip(penalty_grads, d_vars)
    ]  # e.g. the logit's bias
    expected = flat(d0) + gamma / 2 * flat(penalty_grads)
    np.testing.assert_allclose(flat(d1), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    assert np.abs(flat(d1) - flat(d0)).max() > 1e-3 * np.abs(flat(d0)).max()  # the penalty did move D's gradient
    np.testing.assert_allclose(float(out1["r1_penalty"]), float(penalty), rtol=1e-5)
    np.testing.assert_allclose(float(out1["d_loss"]), float(out0["d_loss"]) + gamma / 2 * float(penalty), rtol=1e-5)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "tf.function"])
def test_lazy_r1_adds_the_penalty_on_every_kth_step_k_times_as_strong(traced):
    """R1 every 4th step with gamma 2.5: steps 0 and 8 are those of R1 with gamma 10 (gradients,
    losses, penalty), steps 1-3 those without R1 (penalty logged as 0 with weight 0); the same
    inside a tf.function, where the choice is a tf.cond on the optimizer's step count."""
    plain = small_gan()
    lazy = FaceGAN(plain.generator, plain.discriminator, seed=3, r1_gamma=2.5, r1_every=4)
    full = FaceGAN(plain.generator, plain.discriminator, seed=3, r1_gamma=10.0)
    for gan in (lazy, full):
        gan.compile(plain.g_optimizer, plain.d_optimizer)  # one step counter for all three
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32))
    z = tf.constant(rng.standard_normal((8, 100)).astype(np.float32))
    gradients = tf.function(lazy.compute_gradients) if traced else lazy.compute_gradients
    for iteration, twin in ((0, full), (1, plain), (3, plain), (8, full)):
        plain.g_optimizer.iterations.assign(iteration)
        g, d, out = gradients(real, z)
        g_twin, d_twin, out_twin = twin.compute_gradients(real, z)
        for mine, theirs in ((flat(g), flat(g_twin)), (flat(d), flat(d_twin))):  # a graph rounds differently
            np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5 * np.abs(theirs).max())
        np.testing.assert_allclose(float(out["d_loss"]), float(out_twin["d_loss"]), rtol=1e-5)
        measured = twin is full
        assert float(out["r1_measured"]) == float(measured)
        if measured:
            np.testing.assert_allclose(float(out["r1_penalty"]), float(out_twin["r1_penalty"]), rtol=1e-5)
        else:
            assert float(out["r1_penalty"]) == 0.0
    _, d_full, _ = full.compute_gradients(real, z)
    _, d_plain, _ = plain.compute_gradients(real, z)
    assert np.abs(flat(d_full) - flat(d_plain)).max() > 1e-3 * np.abs(flat(d_plain)).max()  # the two twins differ


def test_lazy_r1_logs_the_mean_penalty_of_the_steps_that_measured_it():
    """Four train steps with R1 every 2nd: the epoch's logged penalty is the mean over steps 0 and
    2, not diluted by the two steps that skipped it."""
    gan = small_gan(r1_gamma=1.0, r1_every=2)
    rng = np.random.default_rng(1)
    real = tf.constant(rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32))
    measured = []
    for i in range(4):
        iteration = int(gan.g_optimizer.iterations.numpy())
        _, _, out = gan.compute_gradients(real, tf.zeros((8, 100)))  # the penalty this step will see
        logs = gan.train_step(real)
        assert iteration == i
        if i % 2 == 0:
            measured.append(float(out["r1_penalty"]))
        np.testing.assert_allclose(float(logs["r1_penalty"]), np.mean(measured), rtol=1e-4)
    assert len(measured) == 2 and min(measured) > 0


def test_spectral_conv_kernel_has_unit_largest_singular_value():
    layer = SpectralConv2D(16, 3, padding="same")
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 5)).astype(np.float32)
    for _ in range(30):  # the power iteration advances one step per training call
        layer(x, training=True)
    w = np.asarray(layer.kernel).reshape(-1, 16)
    sigma = np.linalg.svd(w, compute_uv=False)[0]
    y = keras.ops.convert_to_numpy(layer(x, training=False))
    plain = tf.nn.conv2d(x, w.reshape(3, 3, 5, 16) / sigma, 1, "SAME").numpy() + np.asarray(layer.bias)
    np.testing.assert_allclose(y, plain, rtol=1e-3, atol=1e-4)
    # and the gradient sees the division: scaling the kernel does not change the output
    layer.kernel.assign(np.asarray(layer.kernel) * 7.0)
    for _ in range(3):
        layer(x, training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=False)), y, rtol=1e-3, atol=1e-4)


def conv_weights(model) -> int:
    return sum(int(np.prod(layer.kernel.shape)) for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def test_spectral_norm_and_width_build_the_discriminator_asked_for():
    base = build_discriminator(ModelConfig(resolution=32))
    sn = build_discriminator(ModelConfig(resolution=32, spectral_norm=True))
    half = build_discriminator(ModelConfig(resolution=32, d_width=0.5))
    assert not [layer for layer in sn.layers if "bn" in layer.name]  # SNGAN's D: no BatchNorm
    assert {type(layer).__name__ for layer in sn.layers} >= {"SpectralConv2D", "SpectralDense"}
    assert [layer.filters for layer in half.layers if hasattr(layer, "filters")] == [16, 32, 64, 128, 256]
    ratio = conv_weights(half) / conv_weights(base)
    assert 0.24 < ratio < 0.26  # half the filters in and out: a quarter of the weights
    assert sn.output_shape == half.output_shape == base.output_shape == (None, 1)


def test_color_spread():
    gray = np.repeat(np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8), 3, axis=-1)
    assert color_spread(gray) == 0.0
    red = np.zeros((1, 2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert color_spread(red) == pytest.approx(1.0)


@pytest.mark.slow
def test_train_with_every_remedy_then_resume_continues_adas_probability(tmp_path):
    run = tmp_path / "run"
    flags = "--ada-target 0.6 --ada-images 100 --r1-gamma 0.01 --spectral-norm --d-width 0.5"
    res = run_cli(
        "train", "--res", "32", "--epochs", "1", "--batch-size", "25", "--run-dir", str(run), "--no-tensorboard",
        *flags.split(),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"ada_p", "r1_penalty"} <= set(first) and first["r1_penalty"] > 0
    assert "ADA p" in res.stdout
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["ada_target"] == 0.6 and config["model"]["spectral_norm"] is True
    stored = np.load(sorted((run / "checkpoints").glob("ckpt-*.npz"))[-1])
    p = float(stored["ada/0000"])
    assert 0.0 <= p <= 1.0
    res = run_cli("train", "--resume", str(run), "--epochs", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    second = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert second["epoch"] == 2 and "ada_p" in second


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ada-target", "1.5"], "ada_target must be in [0, 1)"),
        (["--ada-target", "0.6", "--augment", "translation"], "ADA and DiffAugment"),
        (["--r1-gamma", "-1"], "r1_gamma must be in [0, 1e4]"),
        (["--r1-every", "0"], "r1_every must be in [1, 1024]"),
        (["--d-width", "0"], "d_width must be in (0, 4]"),
        (["--ada-images", "0"], "ada_images must be >= 1"),
    ],
)
def test_bad_remedy_flags_are_one_line_errors(flags, message):
    res = run_cli("train", *flags)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
