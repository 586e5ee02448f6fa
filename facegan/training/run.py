"""Starting and continuing runs, and the training entry point `train(cfg)`.

A run folder (`runs/00007-fast32/`, `facegan.layout.RunDir`) is the unit of training state:
`new_run` makes one for a config, `resume_run` opens one to continue, and `train` trains either.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegan import fileio
from facegan.config import Config
from facegan.errors import CheckpointError, ConfigError
from facegan.layout import RunDir
from facegan.training import checkpoints
from facegan.training.backend import Backend, replicas, scope
from facegan.training.display import display_mode

RUN_PATTERN = re.compile(r"^(\d{5})-")


def new_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create the next numbered run folder under root: 00000-name, 00001-name, ..."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [int(m.group(1)) for p in root.iterdir() if (m := RUN_PATTERN.match(p.name))]
        path = root / f"{max(numbers, default=-1) + 1:05d}-{name}"
        try:
            path.mkdir()  # atomic: a concurrent run that took this number makes us try the next
            return path
        except FileExistsError:
            continue


def restore_run_generator(run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None, ema: bool = True):
    """(config, generator, checkpoint path, meta) from a run's latest or given checkpoint: what
    `sample`, `export` and `evaluate` start from. The EMA weights when the run kept them and `ema`."""
    from facegan.training.models import build_generator

    run = RunDir(run_dir)
    cfg = run.load_config()
    ckpt = checkpoints.choose(run.checkpoints, checkpoint)
    if ckpt is None:
        raise CheckpointError(f"run {run_dir} has no checkpoint yet")
    generator = build_generator(cfg.model)
    return cfg, generator, ckpt, checkpoints.restore_generator(ckpt, generator, ema)


def preview_z(cfg: Config) -> np.ndarray:
    """The run's fixed preview latents, drawn once from its seed."""
    rng = np.random.default_rng(cfg.train.seed)
    return rng.standard_normal((cfg.preview.rows * cfg.preview.cols, cfg.model.latent_dim)).astype(np.float32)


def _drop_metrics_after(run: RunDir, epoch: int) -> None:
    """A run killed between its metrics line and its checkpoint redoes that epoch: drop the line
    (and a line cut short by the kill)."""
    if run.metrics.is_file():
        rows = [row for row in run.metrics_rows() if row["epoch"] <= epoch]
        fileio.write_text(run.metrics, "".join(json.dumps(row) + "\n" for row in rows))


@dataclass(frozen=True)
class OpenedRun:
    """A run folder ready to train: new, or resumed from its last checkpoint."""

    run: RunDir
    cfg: Config  # validated; a resumed run's own config (with a new epoch target, if given)
    checkpoint: Path | None  # where training continues from; None for a new run
    preview_z: np.ndarray  # the run's fixed preview latents
    images: np.ndarray  # the training images, uint8 NHWC


def new_run(cfg: Config, runs_root: str | os.PathLike, run_dir: str | os.PathLike | None) -> OpenedRun:
    """A new run folder for `cfg` (`run_dir`, or the next numbered one under `runs_root`) with
    its config, preview z and data manifest. The data is loaded (and checked) before any folder
    is made."""
    from facegan.data.embedded import load_training_data
    from facegan.data.pipeline import steps_per_epoch

    cfg = cfg.validate()
    images, manifest = load_training_data(cfg.data.path, cfg.model.resolution)
    steps_per_epoch(len(images), cfg.train.batch_size)  # a batch larger than the data: said before any write
    try:
        run = RunDir(run_dir) if run_dir else RunDir(new_run_dir(runs_root, cfg.name))
        run.path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where a folder goes, no permission, a full disk
        raise ConfigError(f"cannot make the run folder {run_dir or runs_root}: {e.strerror}") from None
    z_preview = preview_z(cfg)
    fileio.write_text(run.config, cfg.to_json())
    with fileio.atomic_path(run.preview_z) as tmp:
        np.save(tmp, z_preview, allow_pickle=False)
    fileio.write_json(run.data_manifest, manifest)
    return OpenedRun(run, cfg, None, z_preview, images)


def resume_run(run_dir: str | os.PathLike, epochs: int | None, from_checkpoint=None) -> OpenedRun:
    """The run folder `run_dir`, to continue from its newest intact checkpoint (or
    `from_checkpoint`), with a new epoch target if `epochs` is given. Reading writes nothing."""
    from facegan.data.embedded import load_training_data

    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise ConfigError(f"resume folder {run.path} does not exist")
    cfg = run.load_config()
    if epochs is not None:
        cfg = cfg.override(train={"epochs": epochs})
    cfg = cfg.validate()
    images, _ = load_training_data(cfg.data.path, cfg.model.resolution)
    checkpoint = checkpoints.choose(run.checkpoints, from_checkpoint)
    return OpenedRun(run, cfg, checkpoint, np.load(run.preview_z), images)


def build_gan(cfg: Config, backend: Backend, steps_per_epoch: int):
    """The two networks (and the EMA generator), their optimizers and the FaceGAN that trains them.
    Call inside the run's precision policy and strategy scope."""
    import keras

    from facegan.training.gan import FaceGAN
    from facegan.training.models import build_discriminator, build_generator
    from facegan.training.schedule import learning_rate

    t = cfg.train
    generator = build_generator(cfg.model)
    discriminator = build_discriminator(cfg.model)
    generator_ema = build_generator(cfg.model) if t.ema_decay > 0 else None
    gan = FaceGAN(
        generator,
        discriminator,
        label_smoothing=t.label_smoothing,
        seed=t.seed,
        generator_ema=generator_ema,
        ema_decay=t.ema_decay,
        augment=t.augment,
        ada_target=t.ada_target,
        ada_images=t.ada_images,
        r1_gamma=t.r1_gamma,
        r1_every=t.r1_every,
    )
    total_steps = t.epochs * steps_per_epoch  # the schedule's end: a resume with more epochs moves it
    g_opt = keras.optimizers.Adam(learning_rate(t.g_lr, total_steps, t.lr_decay), beta_1=t.beta_1, name="g_adam")
    d_opt = keras.optimizers.Adam(learning_rate(t.d_lr, total_steps, t.lr_decay), beta_1=t.beta_1, name="d_adam")
    if keras.config.dtype_policy().name == "mixed_float16":
        g_opt = keras.optimizers.LossScaleOptimizer(g_opt)
        d_opt = keras.optimizers.LossScaleOptimizer(d_opt)
    gan.compile(g_opt, d_opt, jit_compile=backend.jit_compile(t.xla))
    gan.build_optimizers()
    return gan


def train(
    cfg: Config | None = None,
    runs_root: str | os.PathLike = "runs",
    run_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    epochs: int | None = None,
    verbose: int | str = "auto",
    from_checkpoint: str | int | None = None,
    callbacks: tuple = (),
) -> Path:
    """Train a new run from `cfg`, or continue the run folder `resume` (from its newest intact
    checkpoint, or `from_checkpoint`: an epoch number or a file). Returns the run folder.
    verbose: how progress shows (display.display_mode): "auto", "bar", "lines" or "notebook" (0/1:
    lines/bar). `callbacks`: more Keras callbacks, called first (bench/time_to_quality.py's clock)."""
    backend = Backend.current()
    if resume is not None:  # reading a run writes nothing: every worker opens the shared folder
        run = resume_run(resume, epochs, from_checkpoint)
        task = backend.task(run.cfg)
    else:
        task = backend.task(cfg)
        if task.workers > 1 and run_dir is None:
            raise ConfigError("training on several hosts needs --run-dir: the one run folder every worker shares")
    scratch = None
    if not task.chief:  # the chief alone writes the shared run folder; this worker writes here
        scratch = Path(tempfile.mkdtemp(prefix=f"facegan-{task.kind}{task.index}-"))
        shared = resume or run_dir
        print(f"{task.kind} {task.index} of {task.workers}: the chief writes {shared}; this one only {scratch}")
    try:
        if resume is None:
            run = new_run(cfg, runs_root, scratch or run_dir)
        resumed = resume is not None and scratch is None
        _train(run, backend, resumed, verbose, writes_to=RunDir(scratch or run.run.path), extra=list(callbacks))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return Path(run_dir) if scratch is not None and resume is None else run.run.path


def _train(run: OpenedRun, backend: Backend, resumed: bool, verbose, writes_to: RunDir, extra: list) -> None:
    import keras

    from facegan.data.pipeline import steps_per_epoch
    from facegan.training import callbacks as cb

    cfg = run.cfg
    t = cfg.train
    keras.utils.set_random_seed(t.seed)
    strategy = backend.strategy(t.strategy)
    with backend.precision_policy(t.mixed_precision) as policy:
        with scope(strategy):  # variables are created (and restored) per replica / sharded
            gan = build_gan(cfg, backend, steps_per_epoch(len(run.images), t.batch_size))
            first_epoch = checkpoints.restore(run.checkpoint, gan)["epoch"] if run.checkpoint else 0
        if resumed:
            _drop_metrics_after(run.run, first_epoch)
        if first_epoch >= t.epochs:
            print(f"{run.run.path}: already trained {first_epoch} of {t.epochs} epochs; pass --epochs to train longer")
            return
        batches, steps = backend.batches(run.images, t.batch_size, t.seed, cfg.data.flip, first_epoch, t.epochs)
        plan = cb.FitPlan(run=writes_to, epochs=t.epochs, steps_per_epoch=steps, batch_size=t.batch_size)
        state = cb.FitState(plan, completed_epochs=first_epoch)
        where = f"resuming {run.run.path} at epoch {first_epoch + 1}" if first_epoch else f"training {run.run.path}"
        print(
            f"{where}: {len(run.images)} images at {cfg.model.resolution}px, batch {t.batch_size}, "
            f"{steps} steps/epoch, {replicas(strategy)} replica(s), {backend.name}, {policy}",
            flush=True,
        )
        display = display_mode(verbose)
        # In the order Keras calls them at each epoch's end: the report reads what the evaluator
        # logged; the views show the report's line and the new preview; the checkpoint comes last,
        # so every checkpointed epoch has its files (a run killed before it redoes the epoch).
        callbacks = [
            *extra,
            cb.GracefulInterrupt(state),
            cb.NonFiniteGuard(),
            cb.Evaluator(state, run.images, t.eval_every, t.eval_images, t.seed),
            cb.ProgressBar(state, display == "bar"),
            cb.EpochReport(state, quiet=display == "notebook"),
            cb.Previews(state, run.preview_z, cfg.preview),
        ]
        if display == "notebook":
            from facegan.training.notebook import NotebookView

            callbacks.append(NotebookView(state, cfg.model.resolution))
        if t.tensorboard:
            from facegan.training.tensorboard import TensorBoardLog

            callbacks.append(TensorBoardLog(state, t.histogram_every))
        meta = {"run": run.run.path.name, "config": cfg.name, "data_count": len(run.images)}
        callbacks.append(cb.Checkpointer(state, t.checkpoint_every, t.keep_checkpoints, meta, run.preview_z))
        backend.fit(gan, batches, steps, first_epoch, t.epochs, callbacks, strategy)
