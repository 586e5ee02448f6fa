"""facegan.training.jax_step: the step's forward is the TensorFlow step's (step.forward), each loss
moves only its own network, and ADA's p and R1 behave as on TensorFlow."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
from jax_helpers import compiled, flat

from facegan.config import ModelConfig
from facegan.training import jax_step
from facegan.training.gan import FaceGAN
from facegan.training.models import build_discriminator, build_generator


def agreement(after, before, grads) -> float:
    """The fraction of weights that moved against their gradient's sign (Adam's first step)."""
    delta = flat(after) - flat(before)
    grad = flat(grads)
    mask = np.abs(grad) > 1e-4 * np.abs(grad).max()
    return float(np.mean(np.sign(delta[mask]) == -np.sign(grad[mask])))


def test_each_loss_moves_only_its_own_network():
    """One jitted step, replayed independently with plain softplus losses: G moved along the
    gradient of g_loss, D along that of d_loss, and not along g_loss's gradient for D."""
    cfg = ModelConfig(resolution=32)
    keras.utils.set_random_seed(1)
    g = build_generator(cfg)
    d = build_discriminator(cfg)
    gan = FaceGAN(g, d, seed=5)
    gan.compile(keras.optimizers.Adam(1e-3, beta_1=0.5), keras.optimizers.Adam(1e-3, beta_1=0.5))
    gan.build_optimizers()
    state, step = jax_step.make_step(gan)
    real = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (8, 32, 32, 3)).astype("float32"))
    new, logs = step(state, real)
    assert all(np.isfinite(float(v)) for v in logs.values()), logs

    z = jax_step.latent(jax_step.base_key(gan), 0, 8, cfg.latent_dim)  # the step's own z

    def losses(g_tv, d_tv):
        fake, _ = g.stateless_call(g_tv, state.g_ntv, z, training=True)
        real_logits, d_ntv = d.stateless_call(d_tv, state.d_ntv, real, training=True)
        fake_logits, _ = d.stateless_call(d_tv, d_ntv, fake, training=True)
        g_loss = jnp.mean(jax.nn.softplus(-fake_logits))
        d_loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
        return g_loss, d_loss

    grads_g = jax.grad(lambda gt: losses(gt, state.d_tv)[0])(state.g_tv)
    grads_d = jax.grad(lambda dt: losses(state.g_tv, dt)[1])(state.d_tv)
    grads_d_from_g_loss = jax.grad(lambda dt: losses(state.g_tv, dt)[0])(state.d_tv)
    assert agreement(new.g_tv, state.g_tv, grads_g) > 0.99
    assert agreement(new.d_tv, state.d_tv, grads_d) > 0.99
    assert agreement(new.d_tv, state.d_tv, grads_d_from_g_loss) < 0.7
    assert all(np.abs(np.asarray(a) - np.asarray(b)).max() > 0 for a, b in zip(new.g_tv, state.g_tv))
    assert all(np.abs(np.asarray(a) - np.asarray(b)).max() > 0 for a, b in zip(new.d_tv, state.d_tv))


def test_the_losses_equal_tensorflows(networks, reference):
    """The same weights, batch and z give TensorFlow's g_loss and d_loss (label smoothing 0.1)."""
    g, d = networks
    gan = FaceGAN(g, d, label_smoothing=0.1)
    state = jax_step.read_state(compiled(gan))
    grads = jax_step.make_gradients(gan)(state, jnp.asarray(reference["real"]), jnp.asarray(reference["z"]), None)
    np.testing.assert_allclose(float(grads.out["g_loss"]), float(reference["tf_g_loss"]), rtol=1e-4)
    np.testing.assert_allclose(float(grads.out["d_loss"]), float(reference["tf_d_loss"]), rtol=1e-4)
    assert abs(float(reference["tf_g_loss"]) - float(reference["tf_d_loss"])) > 1e-3  # a swap would fail


def test_r1_changes_only_d_and_matches_tensorflow(networks, reference):
    g, d = networks
    found = {}
    for gamma in (0.0, 10.0):
        gan = compiled(FaceGAN(g, d, seed=3, r1_gamma=gamma))
        grads = jax_step.make_gradients(gan)(
            jax_step.read_state(gan), reference["real"], reference["z"], jnp.zeros((2, 8, 0))
        )
        found[gamma] = grads
    off = found[0.0]
    on = found[10.0]
    np.testing.assert_array_equal(flat(on.g_grads), flat(off.g_grads))
    assert np.abs(flat(on.d_grads) - flat(off.d_grads)).max() > 1e-3 * np.abs(flat(off.d_grads)).max()
    np.testing.assert_allclose(float(on.out["r1_penalty"]), float(reference["tf_r1_penalty"]), rtol=1e-3)
    np.testing.assert_allclose(float(on.out["d_loss"]), float(reference["tf_r1_d_loss"]), rtol=1e-4)


def test_lazy_r1_is_tensorflows_r1_on_every_kth_step(networks, reference):
    """R1 every 4th step at gamma 2.5: step 0's d_loss is TensorFlow's with gamma 10, step 1's
    has no penalty (the losses without R1, penalty 0 weighted 0); the jitted step weights the
    log the same way."""
    g, d = networks
    plain = jax_step.make_gradients(compiled(FaceGAN(g, d, seed=3)))
    lazy_gan = compiled(FaceGAN(g, d, seed=3, r1_gamma=2.5, r1_every=4))
    lazy = jax_step.make_gradients(lazy_gan)
    state = jax_step.read_state(lazy_gan)
    args = (reference["real"], reference["z"], jnp.zeros((2, 8, 0)))
    first = lazy(state, *args, jnp.asarray(0))
    second = lazy(state, *args, jnp.asarray(1))
    without = plain(state, *args)
    np.testing.assert_allclose(float(first.out["d_loss"]), float(reference["tf_r1_d_loss"]), rtol=1e-4)
    np.testing.assert_allclose(float(first.out["r1_penalty"]), float(reference["tf_r1_penalty"]), rtol=1e-3)
    assert float(first.out["r1_measured"]) == 1.0
    for mine, theirs in ((second.d_grads, without.d_grads), (first.g_grads, without.g_grads)):  # lax.cond compiles
        np.testing.assert_allclose(flat(mine), flat(theirs), rtol=1e-4, atol=1e-5 * np.abs(flat(theirs)).max())
    assert float(second.out["r1_penalty"]) == 0.0 and float(second.out["r1_measured"]) == 0.0

    state, step = jax_step.make_step(lazy_gan)
    weights = []
    for _ in range(5):
        state, logs = step(state, jnp.asarray(reference["real"]))
        weights.append(float(logs["r1_penalty:weight"]))
    assert weights == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_ada_probability_moves_with_overfitting():
    """D sure of every real image (logit bias +50) -> p rises by batch/ada_images a step; D calling
    every real image fake -> p falls, as in the TensorFlow step."""
    cfg = ModelConfig(resolution=32, dropout=0.0)
    real = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype("float32"))
    for bias, start, direction in ((50.0, 0.0, +1), (-50.0, 0.5, -1)):
        gan = FaceGAN(build_generator(cfg), build_discriminator(cfg), seed=3, ada_target=0.6, ada_images=400)
        compiled(gan)
        gan.discriminator.get_layer("logit").bias.assign([bias])
        gan.ada_p.assign(start)
        state, step = jax_step.make_step(gan)
        for _ in range(3):
            state, logs = step(state, real)
        jax_step.write_state(gan, state)
        np.testing.assert_allclose(float(gan.ada_p.value), start + direction * 3 * 16 / 400, atol=1e-6)
        assert "ada_p" in logs
