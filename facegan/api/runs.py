"""Training from Python: `facegan.train(...)` trains a run and returns it as a `Run`, which reads
the run folder (config, metrics, previews, the evolution GIF, checkpoints) and samples faces from
it. `facegan train` is this function with its options as flags.

TensorFlow/Keras load inside the functions that need them, so `import facegan` stays light.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np

from facegan import extras
from facegan.api.train_options import config_for, fixed_on_resume
from facegan.errors import UsageError
from facegan.layout import RunDir
from facegan.seeds import check_seeds

FACES_CHUNK = 1024  # seeds per seed_to_z and generator pass in Run.faces: memory bounded by the result


@extras.explained
def train(
    preset: str | None = None,
    *,
    runs_root: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | Run | None = None,
    checkpoint: str | int | None = None,
    auto_resume: bool = False,
    progress: str = "auto",
    **options,
) -> Run:
    """Train a new run from `preset` (default fast32) with `options` (the keywords of
    docs/training.md's flags: epochs=20, batch_size=64, data="data/faces64.npz", ...), or continue
    the run `resume` from its newest intact checkpoint (or `checkpoint`: an epoch or a file); only
    `epochs` may change then. `auto_resume` with `run_dir`: continue that folder if it holds a
    checkpoint of the same config, else start it (one call for the first start and every restart).

    `progress`: "auto" (a Jupyter kernel: "notebook"; a terminal: "bar"; else "lines"), "notebook"
    (one tqdm.auto bar and the newest preview grid, updated in place), "bar" (a live bar per epoch
    that gives way to its line) or "lines" (one line per epoch). Bad options raise UsageError
    before anything is written."""
    from facegan.training.display import display_mode  # no Keras: every check below comes before TensorFlow loads

    display_mode(progress)  # an unknown mode fails here, before any work
    for what, folder in (("runs_root", runs_root), ("run_dir", run_dir)):
        if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
            raise UsageError(f"{what} {folder} is a file, not a folder")
    if auto_resume:
        resume = _auto_resume(preset, run_dir, resume, checkpoint, options)
        if resume is not None:
            preset = None
            run_dir = None
            runs_root = None
            options = {"epochs": options.get("epochs")}
    if resume is not None:
        fixed = fixed_on_resume(options)
        if preset is not None:
            fixed.append("preset")
        if run_dir is not None:
            fixed.append("run_dir")
        if runs_root is not None:
            fixed.append("runs_root")
        if fixed:
            raise UsageError(
                f"resume continues with the run's own config; only epochs may change (got {', '.join(fixed)})"
            )
        from facegan.training.run import train as train_run  # loads Keras/TensorFlow: after the checks

        path = train_run(
            resume=Path(resume.path if isinstance(resume, Run) else resume),
            epochs=options.get("epochs"),
            from_checkpoint=checkpoint,
            verbose=progress,
        )
        return Run(path)
    if checkpoint is not None:
        raise UsageError("checkpoint goes with resume (a new run starts from fresh weights)")
    cfg = config_for(preset, options)
    if cfg.data.path and not Path(cfg.data.path).is_file():
        raise UsageError(f"data file {cfg.data.path} does not exist (create it with `facegan prepare`)")
    from facegan.training.run import train as train_run

    return Run(train_run(cfg, runs_root=runs_root or "runs", run_dir=run_dir, verbose=progress))


def _auto_resume(preset, run_dir, resume, checkpoint, options: dict) -> Path | None:
    """The folder to resume when `run_dir` holds a checkpoint of this very config (only epochs may
    differ); None when it is to be started."""
    if run_dir is None:
        raise UsageError("auto_resume needs run_dir (the folder a restart continues)")
    if resume is not None or checkpoint is not None:
        raise UsageError("auto_resume decides itself whether to resume: drop resume/checkpoint")
    run = RunDir(run_dir)
    if not run.config.is_file() or not run.has_checkpoint():
        return None
    wanted = config_for(preset, options).to_dict()
    found = run.load_config().to_dict()
    for config in (wanted, found):
        config["train"].pop("epochs")
    if wanted != found:
        raise UsageError(f"{run.path} holds a run with another config: give a new run_dir, or resume {run.path}")
    print(f"auto-resume: continuing {run.path}", flush=True)
    return run.path


class Animation:
    """A GIF file that shows itself in Jupyter and Colab (as an <img>), and is a path elsewhere."""

    def __init__(self, path: Path):
        self.path = path

    def _repr_html_(self) -> str:
        gif = self.path.read_bytes()
        width = int.from_bytes(gif[6:8], "little")  # the GIF header's logical screen width
        scale = 2 if width < 500 else 1  # a 4x7 grid of 32 px faces is 352 px wide: shown at 2x
        data = base64.b64encode(gif).decode("ascii")
        style = f"width:{scale * width}px;image-rendering:pixelated"
        return f'<img src="data:image/gif;base64,{data}" alt="{self.path.name}" style="{style}">'

    def __repr__(self) -> str:
        return f"Animation({str(self.path)!r})"


class Run:
    """A run folder: `facegan.train(...)` returns one; `facegan.Run("runs/00000-fast32")` opens one."""

    def __init__(self, path: str | os.PathLike):
        self.dir = RunDir(path)
        if not self.dir.config.is_file():
            raise UsageError(f"{self.dir.path} is not a run folder (no config.json)")
        self._sampler = None  # (checkpoint path, config, generator), loaded by the first faces() call
        self.sampled_from = None  # (checkpoint path, epoch) the last faces()/generate() call used

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def path(self) -> Path:
        return self.dir.path

    @property
    def config(self):
        """The run's resolved config (facegan.config.Config): preset + options."""
        return self.dir.load_config()

    @property
    def metrics(self) -> list[dict]:
        """One row per completed epoch: losses, D's accuracies, speed, and SWD / face rate where evaluated."""
        return self.dir.metrics_rows()

    @property
    def quality(self) -> dict | None:
        """The last evaluation: {"epoch", "swd", "face_rate", "face_rate_real"} (the face rate
        needs the metrics extra), or None before the first one."""
        evaluated = [row for row in self.metrics if "swd" in row]
        if not evaluated:
            return None
        keys = ("epoch", "swd", "face_rate", "face_rate_real")
        return {key: evaluated[-1][key] for key in keys if key in evaluated[-1]}

    def quality_line(self) -> str:
        """The last evaluation in words: its face rate beside the real faces', and SWD."""
        found = self.quality
        if found is None:
            return "quality: not measured (the last epoch was not evaluated)"
        faces = f"face rate not measured ({extras.install('metrics')} adds it)"
        if "face_rate" in found:
            faces = f"face rate {found['face_rate']:.2f} (the real faces: {found['face_rate_real']:.2f})"
        return (
            f"quality after {found['epoch']} epochs: {faces}, SWD {found['swd']:.1f} (lower is better; docs/quality.md)"
        )

    @property
    def previews(self) -> list[Path]:
        """The preview grids in epoch order (the same fixed z each time)."""
        return self.dir.preview_frames()

    def preview(self, epoch: int | None = None):
        """The preview grid of `epoch` (default the newest) as a PIL image."""
        from PIL import Image

        path = self.dir.preview(epoch) if epoch is not None else (self.previews or [None])[-1]
        if path is None or not path.is_file():
            raise UsageError(f"{self.path} has no preview grid{'' if epoch is None else f' for epoch {epoch}'}")
        with Image.open(path) as image:
            return image.copy()

    @property
    def evolution(self) -> Animation:
        """evolution.gif: the preview grids, animated (written when training ends or stops)."""
        if not self.dir.evolution.is_file():
            raise UsageError(f"{self.path} has no evolution.gif yet (it is written when training ends)")
        return Animation(self.dir.evolution)

    @property
    def checkpoints(self) -> list[Path]:
        from facegan.training.checkpoints import list_checkpoints

        return list_checkpoints(self.dir.checkpoints)

    def faces(self, seeds, checkpoint: str | int | None = None) -> np.ndarray:
        """Faces for integer seeds from the run's generator (the EMA weights when kept), uint8
        [N, res, res, 3]: the same z (`seed_to_z`) as an export's from_seed, no server."""
        from facegan.sampling import seed_to_z

        seeds = check_seeds(seeds)  # before anything loads
        cfg, _ = self._generator(checkpoint)
        parts = [
            self.generate(seed_to_z(seeds[i : i + FACES_CHUNK], cfg.model.latent_dim).numpy(), checkpoint)
            for i in range(0, len(seeds), FACES_CHUNK)
        ]
        return np.concatenate(parts)

    def generate(self, z, checkpoint: str | int | None = None) -> np.ndarray:
        """Faces for latent vectors z [N, latent_dim], uint8 [N, res, res, 3]."""
        from facegan.sampling import generate

        cfg, generator = self._generator(checkpoint)
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != cfg.model.latent_dim:
            raise UsageError(f"z must be [N, {cfg.model.latent_dim}], got {list(z.shape)}")
        return generate(generator, z)

    def _generator(self, checkpoint):
        from facegan.training import checkpoints
        from facegan.training.run import restore_run_generator

        chosen = checkpoints.choose(self.dir.checkpoints, checkpoint)
        if self._sampler is None or self._sampler[0] != chosen:
            cfg, generator, chosen, meta = restore_run_generator(self.path, chosen)  # None: "no checkpoint yet"
            self._sampler = (chosen, cfg, generator)
            self.sampled_from = (chosen, meta["epoch"])
        return self._sampler[1], self._sampler[2]

    def export(self, **options):
        """facegan.export(this run, **options): a new SavedModel version (or ONNX, LiteRT)."""
        from facegan.api.exports import export

        return export(self, **options)
