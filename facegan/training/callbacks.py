"""fit() callbacks: a progress bar and the epoch report + metrics.jsonl, preview grids +
evolution.gif, checkpoints, the non-finite-loss guard and clean Ctrl-C handling.

Training shows one display: on a terminal, a live bar for the running epoch that gives way to
the epoch's summary line; elsewhere (CI, a pipe, a log file) only the summary line, so a log
holds one line per epoch and no carriage returns; in a notebook, one bar for the whole run and
the newest preview grid, updated in place (notebook.py). (fit() runs with Keras's own bar off.)

They read one frozen `FitPlan` and share one small `FitState`, so an interrupted or diverged
epoch is never reported, previewed or checkpointed as if it had completed; what only one of them
needs (the preview grid's layout, the checkpoints' interval) is given to that one alone.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from facegan import images
from facegan.config import PreviewConfig
from facegan.errors import NonFiniteLossError
from facegan.fileio import append_line
from facegan.layout import RunDir
from facegan.sampling import generate
from facegan.stopping import STOP_SIGNALS
from facegan.training import checkpoints


@dataclass(frozen=True)
class FitPlan:
    """What every callback of one `fit()` reads and none changes."""

    run: RunDir  # the folder this process writes (the run's, or a non-chief worker's scratch)
    epochs: int  # the epoch this fit ends at (1-based): a resumed run's total, not the epochs left
    steps_per_epoch: int
    batch_size: int


@dataclass
class FitState:
    """What the callbacks of one `fit()` tell each other. Each field has one writer, named below."""

    plan: FitPlan
    completed_epochs: int  # Checkpointer, at each epoch's end; a resume starts at its checkpoint's
    interrupted: bool = False  # GracefulInterrupt: a stop signal arrived, stop after this step
    steps_done: int = 0  # GracefulInterrupt: steps finished in the current epoch
    last_logs: dict = field(default_factory=dict)  # EpochReport: the epoch's metrics.jsonl record

    @property
    def partial(self) -> bool:
        """True while the current epoch was cut short by a stop signal."""
        return self.interrupted and self.steps_done < self.plan.steps_per_epoch

    def due(self, epoch: int, every: int, model: keras.Model) -> bool:
        """Whether something done every `every` epochs is due at the end of `epoch` (0-based): on
        the multiples, at the last epoch, and when training stops early (Ctrl-C, a callback)."""
        done = epoch + 1
        return done % every == 0 or done == self.plan.epochs or self.interrupted or model.stop_training


class ProgressBar(keras.callbacks.Callback):
    """A live bar for the running epoch (steps, running losses), cleared when the epoch ends."""

    def __init__(self, state: FitState, enabled: bool):
        super().__init__()
        self.state = state
        self.enabled = enabled
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.state.plan.steps_per_epoch,
                desc=f"epoch {epoch + 1}/{self.state.plan.epochs}",
                unit="step",
                leave=False,
                dynamic_ncols=True,
            )

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            logs = logs or {}
            self.bar.set_postfix_str(
                f"g_loss {float(logs.get('g_loss', 0)):.3f} d_loss {float(logs.get('d_loss', 0)):.3f}", refresh=False
            )
            self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        self.close()

    def on_train_end(self, logs=None):
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EpochReport(keras.callbacks.Callback):
    """One summary line per epoch on stdout (unless `quiet`: a notebook's bar shows the figures) and
    one JSON object per epoch in metrics.jsonl."""

    def __init__(self, state: FitState, quiet: bool = False):
        super().__init__()
        self.state = state
        self.quiet = quiet

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.state.partial:
            return
        seconds = time.perf_counter() - self.started
        n = self.state.plan.steps_per_epoch * self.state.plan.batch_size
        record = {
            "epoch": epoch + 1,
            **{k: float(v) for k, v in (logs or {}).items()},
            "seconds": round(seconds, 3),
            "images_per_sec": round(n / seconds, 2),
            "images_seen": (epoch + 1) * n,
            "time": time.time(),
        }
        self.state.last_logs = record
        append_line(self.state.plan.run.metrics, json.dumps(record))
        if self.quiet:
            return
        quality = ""
        if "swd" in record:
            quality = f"  SWD {record['swd']:.1f}"
        if "face_rate" in record:
            quality += f"  faces {record['face_rate']:.2f} (real {record['face_rate_real']:.2f})"
        if "ada_p" in record:
            quality += f"  ADA p {record['ada_p']:.2f}"
        print(
            f"epoch {epoch + 1}/{self.state.plan.epochs}  g_loss {record['g_loss']:.4f}  d_loss {record['d_loss']:.4f}"
            f"  D acc real {record['d_acc_real']:.2f} fake {record['d_acc_fake']:.2f}"
            f"  {seconds:.1f}s  {n / seconds:.1f} img/s{quality}",
            flush=True,
        )


class Evaluator(keras.callbacks.Callback):
    """SWD and the face rate of the sampling generator against the training images, every `every`
    epochs and at the end (one set of generated images for both).

    Runs before EpochReport, which writes the figures into that epoch's metrics.jsonl line. The
    face rate needs the metrics extra (OpenCV); without it training says so once and logs SWD.
    """

    def __init__(self, state: FitState, real: np.ndarray, every: int, num_images: int, seed: int):
        super().__init__()
        self.state = state
        self.real = real
        self.every = every
        self.num_images = num_images
        self.seed = seed
        self.detector = None
        self.real_face_rate = None  # the ceiling, measured once on the same real subset

    def on_train_begin(self, logs=None):
        from facegan.evaluation import face_rate

        if face_rate.available():
            self.detector = face_rate.FaceDetector()
        else:
            print(f"face rate: not measured ({face_rate.INSTALL} adds OpenCV's face detector)", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        due = epoch + 1 == self.state.plan.epochs or (self.every and (epoch + 1) % self.every == 0)
        if self.state.partial or not due or logs is None:
            return
        from facegan.evaluation.swd import draw, fake_images, swd, swd_dict

        real, z = draw(self.real, self.model.latent_dim, self.num_images, self.seed)
        fakes = fake_images(lambda batch: generate(self.model.sampler, batch), z)
        logs.update(swd_dict(swd(real, fakes, self.seed), real.shape[1]))
        if self.detector is not None:
            if self.real_face_rate is None:
                self.real_face_rate = self.detector.rate(real).rate
            logs["face_rate"] = self.detector.rate(fakes).rate
            logs["face_rate_real"] = self.real_face_rate


class Previews(keras.callbacks.Callback):
    """previews/epoch-0001.png from the fixed preview z every `preview_every` epochs; evolution.gif
    at the end."""

    def __init__(self, state: FitState, preview_z: np.ndarray, preview: PreviewConfig):
        super().__init__()
        self.state = state
        self.preview_z = preview_z  # the run's fixed z, drawn once: the same faces every epoch
        self.preview = preview

    def on_epoch_end(self, epoch, logs=None):
        if self.state.partial or not self.state.due(epoch, self.preview.every, self.model):
            return
        faces = generate(self.model.sampler, self.preview_z)
        path = self.state.plan.run.preview(epoch + 1)
        images.save_png(path, images.grid(faces, self.preview.rows, self.preview.cols, self.preview.margin))

    def on_train_end(self, logs=None):
        write_evolution_gif(self.state.plan.run, self.preview.gif_ms)


def write_evolution_gif(run: RunDir, ms: int) -> Path | None:
    frames = run.preview_frames()
    if not frames:
        return None
    path = run.evolution
    images.save_gif(path, [images.load_png(f) for f in frames], ms)
    return path


class Checkpointer(keras.callbacks.Callback):
    """The full training state every `checkpoint_every` completed epochs, after the last one and at
    a stop (Ctrl-C), newest `keep` kept. (Writing lfw32's 47 MB took 0.07 s: every epoch, that was
    15 % of a fast preset's training time.)"""

    def __init__(self, state: FitState, every: int, keep: int, meta: dict, preview_z: np.ndarray):
        super().__init__()
        self.state = state
        self.every = every
        self.keep = keep
        self.meta = meta  # written into every checkpoint (run id, config name), with preview_z
        self.preview_z = preview_z

    def on_epoch_end(self, epoch, logs=None):
        # An interrupted epoch saves its weights under the last *completed* epoch's number: a
        # resume redoes that epoch from its start, and nothing trained before Ctrl-C is lost.
        done = epoch if self.state.partial else epoch + 1
        self.state.completed_epochs = done
        if not self.state.due(epoch, self.every, self.model):
            return
        checkpoints.save(
            self.state.plan.run.checkpoints,
            self.model,
            done,
            {**self.meta, "partial_epoch": self.state.partial, "preview_z": self.preview_z.tolist()},
            self.keep,
        )


class NonFiniteGuard(keras.callbacks.Callback):
    """Stop at the first NaN/inf loss, naming epoch and step, before anything is saved."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name in ("g_loss", "d_loss"):
            value = float((logs or {}).get(name, 0.0))
            if not math.isfinite(value):
                raise NonFiniteLossError(f"{name} became {value} at epoch {self.epoch + 1}, step {batch + 1}")


class GracefulInterrupt(keras.callbacks.Callback):
    """First Ctrl-C or SIGTERM: finish the current step, checkpoint, stop. A second aborts at once."""

    def __init__(self, state: FitState):
        super().__init__()
        self.state = state

    def on_train_begin(self, logs=None):
        # Signal handlers can only be installed from the main thread (not, e.g., under a test runner's worker).
        # SIGTERM (a `kill`, a container stop) saves the run the same way.
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}

    def on_epoch_begin(self, epoch, logs=None):
        self.state.steps_done = 0

    def _handle(self, signum, frame):
        if self.state.interrupted:
            raise KeyboardInterrupt
        self.state.interrupted = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(
            f"\n{name}: stopping after this step and saving a checkpoint (Ctrl-C again to abort)",
            file=sys.stderr,
            flush=True,
        )

    def on_train_batch_end(self, batch, logs=None):
        self.state.steps_done = batch + 1
        if self.state.interrupted:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
