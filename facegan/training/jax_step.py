"""The lecture's step on the JAX backend: stateless, jitted, each loss updating only its own network.

One forward pass (facegan.training.step.forward, the same as on TensorFlow, with both networks
called through `stateless_call`: BatchNorm statistics and dropout RNG carried as non-trainable
state) gives g_loss and d_loss; `jax.vjp` then pulls back g_loss to the generator's weights
only and d_loss to the discriminator's only -- the two gradient tapes of the TensorFlow step.
The optimizers' `stateless_apply` updates each network from its own gradients. `fit_jax`
drives it with the same callbacks as `fit()` on TensorFlow, writing the state back into the
Keras variables before they run, so previews, checkpoints and exports are the same files.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import keras
import numpy as np

from facegan.training import step
from facegan.training.losses import ema_rate, metric_names


def latent(base_key, iteration, batch: int, latent_dim: int):
    """The z of step `iteration`: a function of the run's seed and the step alone (resume continues it)."""
    return jax.random.normal(jax.random.fold_in(base_key, iteration), (batch, latent_dim))


def base_key(gan):
    return jax.random.key(int(np.asarray(gan.z_sampler.state.value)[0]))


class JaxState(NamedTuple):
    """Everything the jitted step reads and returns, as arrays (a pytree): each network's trainable
    (tv) and non-trainable (ntv: BatchNorm statistics, dropout RNG) values, both optimizers'
    variables, ADA's probability, and the EMA generator's variables (None without EMA). The
    fields are lists in the Keras variables' order (`state_variables`), so `read_state` and
    `write_state` are one zip."""

    g_tv: list
    g_ntv: list
    d_tv: list
    d_ntv: list
    g_opt: list
    d_opt: list
    ada_p: list  # [p]
    ema: list | None


def state_variables(gan) -> JaxState:
    """The Keras variables behind each field of the state."""
    return JaxState(
        g_tv=gan.generator.trainable_variables,
        g_ntv=gan.generator.non_trainable_variables,
        d_tv=gan.discriminator.trainable_variables,
        d_ntv=gan.discriminator.non_trainable_variables,
        g_opt=gan.g_optimizer.variables,
        d_opt=gan.d_optimizer.variables,
        ada_p=[gan.ada_p],
        ema=gan.generator_ema.variables if gan.generator_ema is not None else None,
    )


def read_state(gan) -> JaxState:
    return JaxState(*[None if group is None else [v.value for v in group] for group in state_variables(gan)])


def write_state(gan, state: JaxState) -> None:
    """Copy the step's state back into the Keras variables (for callbacks and checkpoints)."""
    for group, values in zip(state_variables(gan), state):
        for variable, value in zip(group or [], values or []):
            variable.assign(value)


class StatelessNetworks:
    """The networks on JAX: `stateless_call` with the given weights, threading the non-trainable
    state (read back from g_ntv and d_ntv after the forward); R1's input gradient by `jax.grad`,
    which the pullback of d_loss then differentiates through (double backprop)."""

    def __init__(self, gan, g_tv, d_tv, g_ntv, d_ntv):
        self.generator = gan.generator
        self.discriminator = gan.discriminator
        self.g_tv = g_tv
        self.d_tv = d_tv
        self.g_ntv = g_ntv
        self.d_ntv = d_ntv

    def generate(self, z):
        fake, self.g_ntv = self.generator.stateless_call(self.g_tv, self.g_ntv, z, training=True)
        return fake

    def discriminate(self, images):
        logits, self.d_ntv = self.discriminator.stateless_call(self.d_tv, self.d_ntv, images, training=True)
        return logits

    def discriminate_with_input_grad(self, images):
        def summed_logits(x):
            logits, ntv = self.discriminator.stateless_call(self.d_tv, self.d_ntv, x, training=True)
            return jnp.sum(logits.astype("float32")), (logits, ntv)

        grad, (logits, self.d_ntv) = jax.grad(summed_logits, has_aux=True)(images)
        return logits, grad


class Gradients(NamedTuple):
    g_grads: list  # g_loss pulled back to G's weights only
    d_grads: list  # d_loss pulled back to D's weights only
    g_ntv: list  # G's non-trainable state after the forward
    d_ntv: list  # D's, likewise
    out: dict  # the forward's losses and logits (facegan.training.step.forward)


def make_gradients(gan):
    """gradients(state, real, z, u) -> Gradients: one forward pass (step.forward), then the two
    pullbacks -- g_loss to G's weights only, d_loss to D's only (the TensorFlow step's two tapes)."""

    def losses(g_tv, d_tv, state: JaxState, real, z, u, r1: bool):
        nets = StatelessNetworks(gan, g_tv, d_tv, state.g_ntv, state.d_ntv)
        out = step.forward(gan, nets, real, z, u, state.ada_p[0], r1)
        return (out["g_loss"], out["d_loss"]), (nets.g_ntv, nets.d_ntv, out)

    def gradients(state: JaxState, real, z, u, iteration=0) -> Gradients:
        """`iteration`: steps taken before this one (whether a lazy R1 step adds the penalty)."""

        def pullbacks(r1: bool) -> Gradients:
            (g_loss, d_loss), pullback, (g_ntv, d_ntv, out) = jax.vjp(
                lambda gt, dt: losses(gt, dt, state, real, z, u, r1), state.g_tv, state.d_tv, has_aux=True
            )
            g_grads = pullback((jnp.ones_like(g_loss), jnp.zeros_like(d_loss)))[0]  # g_loss -> G only
            d_grads = pullback((jnp.zeros_like(g_loss), jnp.ones_like(d_loss)))[1]  # d_loss -> D only
            return Gradients(g_grads, d_grads, g_ntv, d_ntv, out)

        return step.with_or_without_r1(gan, iteration, pullbacks)

    return gradients


def make_step(gan):
    """-> (state, step): state is a JaxState; step(state, real) -> (state, logs) is jitted."""
    g = gan.generator
    # where each of G's variables sits in (trainable, non-trainable), in `g.variables` order (= the EMA model's)
    where = {id(v): (0, i) for i, v in enumerate(g.trainable_variables)}
    where.update({id(v): (1, i) for i, v in enumerate(g.non_trainable_variables)})
    slots = [where[id(v)] for v in g.variables]
    counter = next(i for i, v in enumerate(gan.g_optimizer.variables) if v is gan.g_optimizer.iterations)
    key = base_key(gan)
    aug_key = jax.random.fold_in(key, 1)
    draws = step.augmentation_draws(gan)
    gradients = make_gradients(gan)

    @jax.jit
    def train_step(state: JaxState, real):
        iteration = state.g_opt[counter]  # steps taken so far
        z = latent(key, iteration, real.shape[0], gan.latent_dim)
        u = jax.random.uniform(jax.random.fold_in(aug_key, iteration), (2, real.shape[0], draws))
        grads = gradients(state, real, z, u, iteration)
        g_tv, g_opt = gan.g_optimizer.stateless_apply(state.g_opt, grads.g_grads, state.g_tv)
        d_tv, d_opt = gan.d_optimizer.stateless_apply(state.d_opt, grads.d_grads, state.d_tv)
        ema = state.ema
        if ema is not None:
            beta = ema_rate(gan.ema_decay, iteration + 1)  # updates made, this one included
            weights = [(g_tv, grads.g_ntv)[kind][i] for kind, i in slots]
            ema = [beta * e + (1.0 - beta) * w.astype(e.dtype) for e, w in zip(ema, weights)]
        p, logs = step.after_step(gan, grads.out, grads.g_grads, grads.d_grads, state.ada_p[0], real.shape[0])
        new = JaxState(g_tv, grads.g_ntv, d_tv, grads.d_ntv, g_opt, d_opt, [p], ema)
        return new, {**logs, **{f"{name}:weight": w for name, w in step.log_weights(grads.out).items()}}

    return read_state(gan), train_step


def fit_jax(gan, batches, steps: int, first_epoch: int, epochs: int, callbacks: list, place=lambda x: x) -> None:
    """fit() for the JAX step: the same callbacks, in the same order, with running-mean logs."""
    state, train_step = make_step(gan)
    callback_list = keras.callbacks.CallbackList(
        callbacks, model=gan, add_history=False, add_progbar=False, epochs=epochs, steps=steps
    )
    gan.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(first_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        names = metric_names(gan.ada_target > 0, gan.r1_gamma > 0)
        sums = dict.fromkeys(names, 0.0)
        counts = dict.fromkeys(names, 0.0)  # the running means' weights (step.log_weights)
        for i in range(steps):
            callback_list.on_train_batch_begin(i)
            state, logs = train_step(state, place(next(batches)))
            for k in names:
                weight = float(logs.get(f"{k}:weight", 1.0))
                sums[k] += weight * float(logs[k])
                counts[k] += weight
            running = {k: sums[k] / counts[k] if counts[k] else 0.0 for k in names}
            callback_list.on_train_batch_end(i, running)
            if gan.stop_training:
                break
        write_state(gan, state)
        callback_list.on_epoch_end(epoch, dict(running))
        if gan.stop_training:
            break
    callback_list.on_train_end()
