"""The GAN as a `keras.Model`: `fit()` drives it, `train_step` is the lecture's method.

One step draws z ~ N(0, 1), makes fakes, and scores real and fake images. Two separate
GradientTapes then differentiate two losses: the generator's loss only moves the generator's
weights, the discriminator's loss only the discriminator's. The generator never sees a real
face: its only signal is how the discriminator scores its fakes.
"""

from __future__ import annotations

import keras
from keras import ops

from facegan.training import step
from facegan.training.losses import ema_rate, metric_names


class FaceGAN(keras.Model):
    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        label_smoothing: float = 0.0,
        seed: int | None = None,
        generator_ema: keras.Model | None = None,
        ema_decay: float = 0.0,
        augment: tuple[str, ...] = (),
        ada_target: float = 0.0,
        ada_images: int = 5000,
        r1_gamma: float = 0.0,
        r1_every: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        # A moving average of G's weights samples better than G's last, noisy step (ProGAN, StyleGAN).
        self.generator_ema = generator_ema
        self.ema_decay = ema_decay
        if generator_ema is not None:
            for e, w in zip(generator_ema.variables, generator.variables):
                e.assign(w)
        self.latent_dim = generator.input_shape[-1]
        self.label_smoothing = label_smoothing
        # The z sampler's state is a variable, so checkpoints capture it and resume continues it.
        self.z_sampler = keras.random.SeedGenerator(seed, name="z_sampler")
        self.augment = tuple(augment)  # DiffAugment policy applied to every image D sees
        self.aug_sampler = keras.random.SeedGenerator(None if seed is None else seed + 1, name="aug_sampler")
        # ADA: the probability is a variable (checkpointed, so a resumed run continues it);
        # "mean" lets every replica of a tf.distribute strategy write its update.
        self.ada_target = ada_target
        self.ada_images = ada_images
        self.ada_p = keras.Variable(0.0, trainable=False, name="ada_p", aggregation="mean")
        self.r1_gamma = r1_gamma
        self.r1_every = r1_every  # lazy R1: the penalty on every r1_every-th step only
        self.trackers = {name: keras.metrics.Mean(name=name) for name in metric_names(ada_target > 0, r1_gamma > 0)}
        # Both networks are built functional models: nothing for fit() to build by calling us on data.
        self.built = True

    def compile(self, g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def sampler(self) -> keras.Model:
        """The generator that previews, samples and exports use: the EMA one when there is one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def build_optimizers(self) -> None:
        """Create optimizer slots now, so a checkpoint can be restored before the first step."""
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    def train_step(self, real):
        """The TensorFlow step (fit() on the JAX backend uses facegan.training.jax_step instead)."""
        import tensorflow as tf

        batch = ops.shape(real)[0]
        z = keras.random.normal((batch, self.latent_dim), seed=self.z_sampler)
        g_grads, d_grads, out = self.compute_gradients(real, z)
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        if self.generator_ema is not None:
            self._update_ema()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = ops.cast(batch * replicas, "float32")
        p, metrics = step.after_step(self, out, g_grads, d_grads, self.ada_p.value, global_batch)
        if self.ada_target:
            self.ada_p.assign(p)
        weights = step.log_weights(out)
        for name, value in metrics.items():
            self.trackers[name].update_state(value, sample_weight=weights.get(name))
        logs = {name: t.result() for name, t in self.trackers.items()}
        strategy = tf.distribute.get_strategy()
        multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        if multi_worker and strategy.extended._in_multi_worker_mode():
            # Keras 3's fit() averages each log across workers along axis 0, which a scalar lacks
            # ("Invalid reduction dimension 0 for input with 0 dimensions", tensorflow#72388).
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def compute_gradients(self, real, z):
        """The lecture's two tapes: (G's gradients of g_loss, D's gradients of d_loss, the forward
        pass's dict). g_loss is differentiated for G's weights only, d_loss for D's only. With lazy
        R1 this step's tapes are those with or without the penalty (step.with_or_without_r1)."""
        return step.with_or_without_r1(
            self, self.g_optimizer.iterations, lambda r1: self._compute_gradients(real, z, r1)
        )

    def _compute_gradients(self, real, z, r1: bool):
        import tensorflow as tf

        # Under tf.distribute each replica's gradients are summed: scale the per-replica mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            out = self.compute_losses(real, z, r1)
            g_scaled = self.g_optimizer.scale_loss(out["g_loss"] / replicas)
            d_scaled = self.d_optimizer.scale_loss(out["d_loss"] / replicas)
        g_grads = g_tape.gradient(g_scaled, self.generator.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, self.discriminator.trainable_variables)
        return g_grads, d_grads, out

    def compute_losses(self, real, z, r1: bool | None = None):
        """The forward half of the step (facegan.training.step.forward) with the networks called as
        Keras layers and this step's augmentation draws; R1 when `r1` (default: when it is on)."""
        draws = step.augmentation_draws(self)
        u = None
        if draws:
            u = keras.random.uniform((2, ops.shape(real)[0], draws), seed=self.aug_sampler)
        nets = step.KerasNetworks(self.generator, self.discriminator)
        return step.forward(self, nets, real, z, u, self.ada_p.value, r1)

    def _update_ema(self):
        beta = ema_rate(self.ema_decay, self.g_optimizer.iterations)  # iterations: updates made, this one included
        for e, w in zip(self.generator_ema.variables, self.generator.variables):
            e.assign(beta * e + (1.0 - beta) * ops.cast(w, e.dtype))
