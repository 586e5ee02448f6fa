"""Training's display in Jupyter and Colab: one tqdm.auto bar for the whole run and the newest
preview grid, shown once and replaced in place, instead of a printed line and a new image per
epoch (560 of each for fast32)."""

from __future__ import annotations

import keras

from facegan import images
from facegan.training.callbacks import FitState


class NotebookView(keras.callbacks.Callback):
    """The bar counts steps over all epochs and shows the last epoch's losses and figures; the
    image is the preview grid (the run's fixed z) as of the newest preview epoch."""

    def __init__(self, state: FitState, resolution: int):
        super().__init__()
        self.state = state
        self.scale = max(1, 64 // resolution)  # 32 px faces at 2x: small grids are hard to see
        self.bar = None
        self.handle = None
        self.shown = None  # the preview file on screen

    def on_train_begin(self, logs=None):
        from IPython.display import display
        from tqdm.auto import tqdm

        steps = self.state.plan.steps_per_epoch
        self.bar = tqdm(
            total=self.state.plan.epochs * steps,
            initial=self.state.completed_epochs * steps,
            desc=f"epoch {self.state.completed_epochs + 1}/{self.state.plan.epochs}",  # the line above names the run
            unit="step",
        )
        frames = self.state.plan.run.preview_frames()
        first = self._image(frames[-1]) if frames else "the preview grid appears after the first preview epoch"
        self.handle = display(first, display_id=True)
        self.shown = frames[-1] if frames else None

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is None or self.state.partial:
            return
        record = self.state.last_logs
        figures = f"g_loss {record.get('g_loss', 0):.2f}, d_loss {record.get('d_loss', 0):.2f}"
        if "face_rate" in record:
            figures += f", faces {record['face_rate']:.2f} (real {record['face_rate_real']:.2f})"
        if "swd" in record:
            figures += f", SWD {record['swd']:.1f}"
        self.bar.set_description(f"epoch {epoch + 1}/{self.state.plan.epochs}", refresh=False)
        self.bar.set_postfix_str(figures)
        path = self.state.plan.run.preview(epoch + 1)
        if path.is_file() and path != self.shown:
            self.handle.update(self._image(path))
            self.shown = path

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _image(self, path):
        from PIL import Image

        return Image.fromarray(images.enlarge(images.load_png(path)[None], self.scale)[0])
