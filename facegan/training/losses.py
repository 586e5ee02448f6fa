"""The parts of the GAN step that do not depend on the backend, written once in keras.ops.

Both steps -- TensorFlow's two gradient tapes (gan.py) and JAX's two pullbacks (jax_step.py) --
compute their losses, EMA rate and logged figures here, so the method is the same on both.
"""

from __future__ import annotations

from keras import ops

METRICS = ("g_loss", "d_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake", "g_grad_norm", "d_grad_norm")


def metric_names(ada: bool, r1: bool) -> tuple[str, ...]:
    """What a step logs: METRICS, plus ADA's probability and the R1 penalty when they are on."""
    return METRICS + ("ada_p",) * ada + ("r1_penalty",) * r1


def bce_logits(target: float, logits):
    """Mean binary cross-entropy against a constant target, from logits, in float32 (numerically safe)."""
    logits = ops.cast(logits, "float32")
    return ops.mean(ops.binary_crossentropy(ops.full_like(logits, target), logits, from_logits=True))


def gan_losses(real_logits, fake_logits, label_smoothing: float = 0.0):
    """(g_loss, d_loss). The generator wants its fakes called real; the discriminator wants real
    called real (1 - label_smoothing: one-sided smoothing) and fakes called fake."""
    g_loss = bce_logits(1.0, fake_logits)
    d_loss = bce_logits(1.0 - label_smoothing, real_logits) + bce_logits(0.0, fake_logits)
    return g_loss, d_loss


def r1_penalty(grad_real):
    """R1 (Mescheder et al. 2018): the batch mean of |grad_x D(x)|^2 over real images x. Penalising
    it keeps D flat on the data, so D cannot sharpen without limit around 100 memorised faces."""
    grad_real = ops.cast(grad_real, "float32")
    return ops.mean(ops.sum(ops.square(grad_real), axis=tuple(range(1, len(grad_real.shape)))))


def with_r1(d_loss, grad_real, gamma: float):
    """(d_loss + gamma/2 * R1, R1): D's loss with the penalty, and the penalty to log."""
    penalty = r1_penalty(grad_real)
    return d_loss + 0.5 * gamma * penalty, penalty


def ema_rate(decay: float, updates):
    """The EMA's decay after `updates` updates, with tf.train.ExponentialMovingAverage's warm-up
    (num_updates): early on the average spans fewer steps, so it is not stuck at the random init."""
    updates = ops.cast(updates, "float32")
    return ops.minimum(decay, (1.0 + updates) / (10.0 + updates))


def global_norm(gradients) -> object:
    """The L2 norm of all of a network's gradients together (what clip_by_global_norm measures)."""
    return ops.sqrt(sum(ops.sum(ops.square(ops.cast(g, "float32"))) for g in gradients))


def step_metrics(g_loss, d_loss, real_logits, fake_logits, g_grads, d_grads, extra: dict | None = None) -> dict:
    """What one step logs: both losses (D's with R1 when it is on), D's mean probabilities and its
    accuracy on each side, each network's gradient norm (as the step computed it: per replica,
    times the loss scale under float16), and `extra` (ADA's p, the R1 penalty)."""
    real_logits = ops.cast(real_logits, "float32")
    fake_logits = ops.cast(fake_logits, "float32")
    return {
        **(extra or {}),
        "g_loss": g_loss,
        "d_loss": d_loss,
        "d_real": ops.mean(ops.sigmoid(real_logits)),
        "d_fake": ops.mean(ops.sigmoid(fake_logits)),
        "d_acc_real": ops.mean(ops.cast(real_logits > 0, "float32")),
        "d_acc_fake": ops.mean(ops.cast(fake_logits < 0, "float32")),
        "g_grad_norm": global_norm(g_grads),
        "d_grad_norm": global_norm(d_grads),
    }
