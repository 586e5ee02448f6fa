"""The lecture's step on the JAX backend: stateless, jitted, each loss updating only its own network.

One forward pass (`stateless_call` of both networks, BatchNorm statistics and dropout RNG
carried as non-trainable state) gives g_loss and d_loss; `jax.vjp` then pulls back g_loss to
the generator's weights only and d_loss to the discriminator's only -- the two gradient tapes of
the TensorFlow step. The optimizers' `stateless_apply` updates each network from its own
gradients. `fit_jax` drives it with the same callbacks as `fit()` on TensorFlow, writing the
state back into the Keras variables before they run, so previews, checkpoints and exports
are the same files.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
import numpy as np

from facegan.training.augment import DRAWS, augment
from facegan.training.losses import METRICS, ema_rate, gan_losses, step_metrics


def latent(base_key, iteration, batch: int, latent_dim: int):
    """The z of step `iteration`: a function of the run's seed and the step alone (resume continues it)."""
    return jax.random.normal(jax.random.fold_in(base_key, iteration), (batch, latent_dim))


def base_key(gan):
    return jax.random.key(int(np.asarray(gan.z_sampler.state.value)[0]))


def make_forward(gan):
    """forward(g_tv, d_tv, g_ntv, d_ntv, real, z, u) -> ((g_loss, d_loss), (g_ntv, d_ntv, real_logits,
    fake_logits)): the forward half of the step, stateless (what FaceGAN.compute_losses is on TensorFlow)."""
    g = gan.generator
    d = gan.discriminator

    def forward(g_tv, d_tv, g_ntv, d_ntv, real, z, u):
        fake, g_ntv = g.stateless_call(g_tv, g_ntv, z, training=True)
        if gan.augment:
            real = augment(real, gan.augment, u[0])
            fake = augment(fake, gan.augment, u[1])
        real_logits, d_ntv = d.stateless_call(d_tv, d_ntv, real, training=True)
        fake_logits, d_ntv = d.stateless_call(d_tv, d_ntv, fake, training=True)
        losses = gan_losses(real_logits, fake_logits, gan.label_smoothing)
        return losses, (g_ntv, d_ntv, real_logits, fake_logits)

    return forward


def make_step(gan):
    """-> (state, step): state is a dict of arrays; step(state, real) -> (state, logs) is jitted."""
    g = gan.generator
    # where each of G's variables sits in (trainable, non-trainable), in `g.variables` order (= the EMA model's)
    where = {id(v): (0, i) for i, v in enumerate(g.trainable_variables)}
    where.update({id(v): (1, i) for i, v in enumerate(g.non_trainable_variables)})
    slots = [where[id(v)] for v in g.variables]
    counter = next(i for i, v in enumerate(gan.g_optimizer.variables) if v is gan.g_optimizer.iterations)
    key = base_key(gan)
    aug_key = jax.random.fold_in(key, 1)

    forward = make_forward(gan)

    @jax.jit
    def step(state, real):
        iteration = state["g_opt"][counter]  # steps taken so far
        z = latent(key, iteration, real.shape[0], gan.latent_dim)
        u = jax.random.uniform(jax.random.fold_in(aug_key, iteration), (2, real.shape[0], DRAWS * len(gan.augment)))
        (g_loss, d_loss), pullback, (g_ntv, d_ntv, real_logits, fake_logits) = jax.vjp(
            lambda gt, dt: forward(gt, dt, state["g_ntv"], state["d_ntv"], real, z, u),
            state["g_tv"],
            state["d_tv"],
            has_aux=True,
        )
        g_grads = pullback((jnp.ones_like(g_loss), jnp.zeros_like(d_loss)))[0]  # g_loss -> G only
        d_grads = pullback((jnp.zeros_like(g_loss), jnp.ones_like(d_loss)))[1]  # d_loss -> D only
        g_tv, g_opt = gan.g_optimizer.stateless_apply(state["g_opt"], g_grads, state["g_tv"])
        d_tv, d_opt = gan.d_optimizer.stateless_apply(state["d_opt"], d_grads, state["d_tv"])
        new = {**state, "g_tv": g_tv, "d_tv": d_tv, "g_ntv": g_ntv, "d_ntv": d_ntv, "g_opt": g_opt, "d_opt": d_opt}
        if "ema" in state:
            beta = ema_rate(gan.ema_decay, iteration + 1)  # updates made, this one included
            weights = [(g_tv, g_ntv)[kind][i] for kind, i in slots]
            new["ema"] = [beta * e + (1.0 - beta) * w.astype(e.dtype) for e, w in zip(state["ema"], weights)]
        return new, step_metrics(g_loss, d_loss, real_logits, fake_logits, g_grads, d_grads)

    return read_state(gan), step


def read_state(gan) -> dict:
    values = lambda vs: [v.value for v in vs]
    state = {
        "g_tv": values(gan.generator.trainable_variables),
        "g_ntv": values(gan.generator.non_trainable_variables),
        "d_tv": values(gan.discriminator.trainable_variables),
        "d_ntv": values(gan.discriminator.non_trainable_variables),
        "g_opt": values(gan.g_optimizer.variables),
        "d_opt": values(gan.d_optimizer.variables),
    }
    if gan.generator_ema is not None:
        state["ema"] = values(gan.generator_ema.variables)
    return state


def write_state(gan, state: dict) -> None:
    """Copy the step's state back into the Keras variables (for callbacks and checkpoints)."""
    pairs = [
        (gan.generator.trainable_variables, "g_tv"),
        (gan.generator.non_trainable_variables, "g_ntv"),
        (gan.discriminator.trainable_variables, "d_tv"),
        (gan.discriminator.non_trainable_variables, "d_ntv"),
        (gan.g_optimizer.variables, "g_opt"),
        (gan.d_optimizer.variables, "d_opt"),
    ]
    if "ema" in state:
        pairs.append((gan.generator_ema.variables, "ema"))
    for variables, key in pairs:
        for v, value in zip(variables, state[key]):
            v.assign(value)


def fit_jax(gan, batches, steps: int, first_epoch: int, epochs: int, callbacks: list, place=lambda x: x) -> None:
    """fit() for the JAX step: the same callbacks, in the same order, with running-mean logs."""
    state, step = make_step(gan)
    callback_list = keras.callbacks.CallbackList(
        callbacks, model=gan, add_history=False, add_progbar=False, epochs=epochs, steps=steps
    )
    gan.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(first_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        sums = dict.fromkeys(METRICS, 0.0)
        for i in range(steps):
            callback_list.on_train_batch_begin(i)
            state, logs = step(state, place(next(batches)))
            for k in METRICS:
                sums[k] += float(logs[k])
            running = {k: v / (i + 1) for k, v in sums.items()}
            callback_list.on_train_batch_end(i, running)
            if gan.stop_training:
                break
        write_state(gan, state)
        callback_list.on_epoch_end(epoch, dict(running))
        if gan.stop_training:
            break
    callback_list.on_train_end()
