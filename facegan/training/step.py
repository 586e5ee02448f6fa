"""The GAN step's forward half and its logs, written once for both backends.

One step draws z, makes fakes, shows D both sides through the same augmentation (DiffAugment's
policy, or ADA at its current p), scores them (with R1's input gradient on the real side when it
is on), and computes the two losses; after the gradients are applied, ADA's p moves and the step
logs its figures. Only how the networks are called and differentiated differs per backend:

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


def forward(gan, nets: Networks, real, z, u, p) -> dict:
    """{g_loss, d_loss, real_logits, fake_logits[, r1_penalty]} for a batch of real images and z.
    `u` holds the augmentation's uniform numbers ([2, batch, augmentation_draws]: real, fake),
    `p` ADA's probability. With R1, d_loss includes gamma/2 * the penalty."""
    fake = nets.generate(z)
    if gan.augment:
        real = augment(real, gan.augment, u[0])
        fake = augment(fake, gan.augment, u[1])
    if gan.ada_target:
        real = ada.augment(real, p, u[0])
        fake = ada.augment(fake, p, u[1])
    out = {}
    if gan.r1_gamma:
        real_logits, grad_real = nets.discriminate_with_input_grad(real)
    else:
        real_logits = nets.discriminate(real)
    fake_logits = nets.discriminate(fake)
    g_loss, d_loss = gan_losses(real_logits, fake_logits, gan.label_smoothing)
    if gan.r1_gamma:
        d_loss, out["r1_penalty"] = with_r1(d_loss, grad_real, gan.r1_gamma)
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
