"""The learning rate over a run: constant, then (with `lr_decay`) a straight line down to 0 over
the last part of the epochs, so the last updates are small and the weights the run ends with
(and the EMA that averages them) settle instead of jumping between the adversaries' moves."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="facegan")
class LinearTail(keras.optimizers.schedules.LearningRateSchedule):
    """`rate` until step (1 - tail) * total_steps, then linearly to 0 at total_steps (and 0 after)."""

    def __init__(self, rate: float, total_steps: int, tail: float):
        self.rate = float(rate)
        self.total_steps = int(total_steps)
        self.tail = float(tail)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        tail_steps = max(1.0, self.tail * self.total_steps)
        left = ops.cast(self.total_steps, "float32") - step  # updates still to come, this one included
        return self.rate * ops.clip(left / tail_steps, 0.0, 1.0)

    def get_config(self) -> dict:
        return {"rate": self.rate, "total_steps": self.total_steps, "tail": self.tail}


def learning_rate(rate: float, total_steps: int, tail: float):
    """What an optimizer is given: the plain number when there is no tail (as before lr_decay)."""
    return LinearTail(rate, total_steps, tail) if tail > 0 else rate
