"""The GAN step's forward half and its logs, written once for both backends.

One step draws z, makes fakes, shows D both sides through the same augmentation (DiffAugment's
policy, or ADA at its current p), scores them (with R1's input gradient on the real side on the
steps that add R1: every step, or every r1_every-th with lazy R1), and computes the two losses;
after the gradients are applied, ADA's p moves and the step logs its figures. Only how the
networks are called and differentiated differs per backend:

- TensorFlow (gan.py): Keras layers called in training mode, state in variables, two
  GradientTapes around `forward` (`KerasNetworks`);
- JAX (jax_step.py): `stateless_call` threading BatchNorm statistics and dropout RNG as
  non-trainable state, `jax.vjp` around `forward` (`jax_step.StatelessNetworks`).

Either backend passes `forward` an object with three methods (the `Networks` protocol).
"""

from __future__ import annotations

from typing import Protocol

import keras
from keras import ops

from facegan.training import ada
from facegan.training.augment import DRAWS, augment
from facegan.training.losses import gan_losses, step_metrics, with_r1


class Networks(Protocol):
    """The two networks as one backend calls them in a training step."""

    def generate(self, z): ...  # G(z), training mode

    def discriminate(self, images): ...  # D's logits, training mode

    def discriminate_with_input_grad(self, images): ...  # (D's logits, ∇ₓ Σ D(x)), for R1


def augmentation_draws(gan) -> int:
    """How many uniform numbers each image's augmentation takes (0: no augmentation)."""
    if gan.ada_target:
        return ada.DRAWS
    return DRAWS * len(gan.augment)


def regularizes(gan, iteration):
    """Whether the step after `iteration` steps adds R1: with lazy R1 (StyleGAN2's lazy
    regularization), one step in r1_every, starting with the first."""
    return ops.equal(ops.mod(iteration, gan.r1_every), 0)


def with_or_without_r1(gan, iteration, gradients):
    """gradients(r1) for this step, where gradients(True) adds R1 and gradients(False) does not:
    R1 on every step or none when r1_every is 1, else chosen by ops.cond (tf.cond, lax.cond), so
    the steps without it skip the double backprop that makes R1 expensive."""
    if not gan.r1_gamma or gan.r1_every == 1:
        return gradients(bool(gan.r1_gamma))
    return ops.cond(regularizes(gan, iteration), lambda: gradients(True), lambda: gradients(False))


def forward(gan, nets: Networks, real, z, u, p, r1: bool | None = None) -> dict:
    """{g_loss, d_loss, real_logits, fake_logits[, r1_penalty, r1_measured]} for a batch of real
    images and z. `u` holds the augmentation's uniform numbers ([2, batch, augmentation_draws]:
    real, fake), `p` ADA's probability. With `r1` (default: when R1 is on) d_loss includes
    gamma * r1_every / 2 * the penalty; a lazy step without it reports the penalty as 0 with
    r1_measured 0, which weights it out of the logged mean (log_weights)."""
    if r1 is None:
        r1 = bool(gan.r1_gamma)
    fake = nets.generate(z)
    if gan.augment:
        real = augment(real, gan.augment, u[0])
        fake = augment(fake, gan.augment, u[1])
    if gan.ada_target:
        real = ada.augment(real, p, u[0])
        fake = ada.augment(fake, p, u[1])
    out = {}
    if r1:
        real_logits, grad_real = nets.discriminate_with_input_grad(real)
    else:
        real_logits = nets.discriminate(real)
    fake_logits = nets.discriminate(fake)
    g_loss, d_loss = gan_losses(real_logits, fake_logits, gan.label_smoothing)
    if r1:
        # lazy R1 adds it one step in r1_every, r1_every times as strong: the same on average
        d_loss, out["r1_penalty"] = with_r1(d_loss, grad_real, gan.r1_gamma * gan.r1_every)
    elif gan.r1_gamma:
        out["r1_penalty"] = ops.zeros((), "float32")
    if gan.r1_gamma:
        out["r1_measured"] = ops.convert_to_tensor(1.0 if r1 else 0.0, "float32")
    out.update(g_loss=g_loss, d_loss=d_loss, real_logits=real_logits, fake_logits=fake_logits)
    return out


def after_step(gan, out: dict, g_grads, d_grads, p, global_batch) -> tuple[object, dict]:
    """(ADA's new p, the step's logs) once both networks have moved: p rises when D calls too many
    real images real and falls otherwise; the logs are step_metrics plus p and R1 when on."""
    extra = {}
    if gan.ada_target:
        p = ada.adjust(p, out["real_logits"], gan.ada_target, global_batch, gan.ada_images)
        extra["ada_p"] = p
    if gan.r1_gamma:
        extra["r1_penalty"] = out["r1_penalty"]
    logs = step_metrics(out["g_loss"], out["d_loss"], out["real_logits"], out["fake_logits"], g_grads, d_grads, extra)
    return p, logs


def log_weights(out: dict) -> dict:
    """Each logged figure's weight in its running mean where it is not 1: the R1 penalty counts
    only on the steps that measured it."""
    return {"r1_penalty": out["r1_measured"]} if "r1_measured" in out else {}


class KerasNetworks:
    """The networks on TensorFlow: called as Keras layers; R1's input gradient from a tape inside
    the step's tapes, so they record it too and d_loss's gradient includes the penalty's."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model):
        self.generator = generator
        self.discriminator = discriminator

    def generate(self, z):
        return self.generator(z, training=True)

    def discriminate(self, images):
        return self.discriminator(images, training=True)

    def discriminate_with_input_grad(self, images):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = self.discriminator(images, training=True)
            summed = ops.sum(ops.cast(logits, "float32"))
        return logits, tape.gradient(summed, images)
