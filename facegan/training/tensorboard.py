"""TensorBoard events in the run folder (`runs/N/tensorboard/`), written with tensorboardX, so the
JAX path needs no TensorFlow: every epoch's scalars (losses, D's outputs and accuracy, gradient
norms, images/s), SWD and the face rate whenever they are computed, the preview grid as an image, and weight
histograms every K epochs. The step is the epoch number, as in metrics.jsonl. A resumed run
writes with `purge_step` = its first epoch, so TensorBoard hides anything the interrupted run
logged from that epoch on: the curves continue with no step twice and none missing.

    tensorboard --logdir runs
"""

from __future__ import annotations

import keras
import numpy as np

from facegan import images
from facegan.training.callbacks import FitState

QUALITY = ("swd", "face_rate")  # key prefixes: SWD per level, the face rate and its ceiling
SPEED = ("images_per_sec", "seconds")
SKIPPED = ("epoch", "images_seen", "time")


def tag(key: str) -> str:
    """metrics.jsonl key -> TensorBoard tag, grouped: quality/swd…, speed/…, train/…"""
    if key.startswith(QUALITY):
        return f"quality/{key}"
    if key in SPEED:
        return f"speed/{key}"
    return f"train/{key}"


class TensorBoardLog(keras.callbacks.Callback):
    """Runs after EpochReport (which fills state.last_logs) and Previews (which writes the grid)."""

    def __init__(self, state: FitState, histogram_every: int):
        super().__init__()
        self.state = state
        self.histogram_every = histogram_every
        self.writer = None

    def on_train_begin(self, logs=None):
        from tensorboardX import SummaryWriter

        first = self.state.completed_epochs + 1
        self.writer = SummaryWriter(
            log_dir=str(self.state.plan.run.tensorboard), purge_step=first if first > 1 else None, flush_secs=30
        )

    def on_epoch_end(self, epoch, logs=None):
        if self.state.partial or self.writer is None:
            return
        step = epoch + 1
        for key, value in self.state.last_logs.items():
            if key not in SKIPPED and isinstance(value, int | float):
                self.writer.add_scalar(tag(key), value, step)
        grid = self.state.plan.run.preview(step)
        if grid.is_file():
            self.writer.add_image("previews", images.load_png(grid), step, dataformats="HWC")
        if step % self.histogram_every == 0 or step == self.state.plan.epochs:
            for name, network in (("generator", self.model.generator), ("discriminator", self.model.discriminator)):
                for variable in network.trainable_variables:
                    values = np.asarray(keras.ops.convert_to_numpy(variable.value), np.float32)
                    self.writer.add_histogram(f"weights/{name}/{variable.path}", values, step)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
