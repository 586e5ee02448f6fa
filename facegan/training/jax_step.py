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

from facegan.training import ada
from facegan.training.augment import DRAWS, augment
from facegan.training.losses import ema_rate, gan_losses, metric_names, step_metrics, with_r1


def latent(base_key, iteration, batch: int, latent_dim: int):
    """The z of step `iteration`: a function of the run's seed and the step alone (resume continues it)."""
    return jax.random.normal(jax.random.fold_in(base_key, iteration), (batch, latent_dim))


def base_key(gan):
    return jax.random.key(int(np.asarray(gan.z_sampler.state.value)[0]))


def make_forward(gan):
    """forward(g_tv, d_tv, g_ntv, d_ntv, real, z, u, p) -> ((g_loss, d_loss), (g_ntv, d_ntv, out)):
    the forward half of the step, stateless (what FaceGAN.compute_losses is on TensorFlow); out
    holds real_logits, fake_logits and, with R1, r1_penalty. u: the augmentation's uniform
    numbers, p: ADA's probability."""
    g = gan.generator
    d = gan.discriminator

    def forward(g_tv, d_tv, g_ntv, d_ntv, real, z, u, p):
        fake, g_ntv = g.stateless_call(g_tv, g_ntv, z, training=True)
        if gan.augment:
            real = augment(real, gan.augment, u[0])
            fake = augment(fake, gan.augment, u[1])
        if gan.ada_target:
            real = ada.augment(real, p, u[0])
            fake = ada.augment(fake, p, u[1])
        out = {}
        if gan.r1_gamma:
            # Gradient of D's summed real logits w.r.t. the images it saw; the pullback of d_loss
            # then differentiates through this gradient (double backprop).
            def summed_logits(x):
                logits, ntv = d.stateless_call(d_tv, d_ntv, x, training=True)
                return jnp.sum(logits.astype("float32")), (logits, ntv)

            grad_real, (real_logits, d_ntv) = jax.grad(summed_logits, has_aux=True)(real)
        else:
            real_logits, d_ntv = d.stateless_call(d_tv, d_ntv, real, training=True)
        fake_logits, d_ntv = d.stateless_call(d_tv, d_ntv, fake, training=True)
        g_loss, d_loss = gan_losses(real_logits, fake_logits, gan.label_smoothing)
        if gan.r1_gamma:
            d_loss, out["r1_penalty"] = with_r1(d_loss, grad_real, gan.r1_gamma)
        out.update(real_logits=real_logits, fake_logits=fake_logits)
        return (g_loss, d_loss), (g_ntv, d_ntv, out)

    return forward


def make_gradients(gan):
    """gradients(state, real, z, u) -> (g_grads, d_grads, losses, g_ntv, d_ntv, out): one forward
    pass, then the two pullbacks -- g_loss to G's weights only, d_loss to D's only."""
    forward = make_forward(gan)

    def gradients(state, real, z, u):
        (g_loss, d_loss), pullback, (g_ntv, d_ntv, out) = jax.vjp(
            lambda gt, dt: forward(gt, dt, state["g_ntv"], state["d_ntv"], real, z, u, state["ada_p"]),
            state["g_tv"],
            state["d_tv"],
            has_aux=True,
        )
        g_grads = pullback((jnp.ones_like(g_loss), jnp.zeros_like(d_loss)))[0]  # g_loss -> G only
        d_grads = pullback((jnp.zeros_like(g_loss), jnp.ones_like(d_loss)))[1]  # d_loss -> D only
        return g_grads, d_grads, (g_loss, d_loss), g_ntv, d_ntv, out

    return gradients


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
    draws = ada.DRAWS if gan.ada_target else DRAWS * len(gan.augment)

    gradients = make_gradients(gan)

    @jax.jit
    def step(state, real):
        iteration = state["g_opt"][counter]  # steps taken so far
        z = latent(key, iteration, real.shape[0], gan.latent_dim)
        u = jax.random.uniform(jax.random.fold_in(aug_key, iteration), (2, real.shape[0], draws))
        g_grads, d_grads, (g_loss, d_loss), g_ntv, d_ntv, out = gradients(state, real, z, u)
        g_tv, g_opt = gan.g_optimizer.stateless_apply(state["g_opt"], g_grads, state["g_tv"])
        d_tv, d_opt = gan.d_optimizer.stateless_apply(state["d_opt"], d_grads, state["d_tv"])
        new = {**state, "g_tv": g_tv, "d_tv": d_tv, "g_ntv": g_ntv, "d_ntv": d_ntv, "g_opt": g_opt, "d_opt": d_opt}
        if "ema" in state:
            beta = ema_rate(gan.ema_decay, iteration + 1)  # updates made, this one included
            weights = [(g_tv, g_ntv)[kind][i] for kind, i in slots]
            new["ema"] = [beta * e + (1.0 - beta) * w.astype(e.dtype) for e, w in zip(state["ema"], weights)]
        extra = {}
        if gan.ada_target:
            p = ada.adjust(state["ada_p"], out["real_logits"], gan.ada_target, real.shape[0], gan.ada_images)
            new["ada_p"] = p
            extra["ada_p"] = p
        if gan.r1_gamma:
            extra["r1_penalty"] = out["r1_penalty"]
        logs = step_metrics(g_loss, d_loss, out["real_logits"], out["fake_logits"], g_grads, d_grads, extra)
        return new, logs

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
        "ada_p": gan.ada_p.value,
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
    gan.ada_p.assign(state["ada_p"])
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
        names = metric_names(gan.ada_target > 0, gan.r1_gamma > 0)
        sums = dict.fromkeys(names, 0.0)
        for i in range(steps):
            callback_list.on_train_batch_begin(i)
            state, logs = step(state, place(next(batches)))
            for k in names:
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
