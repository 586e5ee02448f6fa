"""`facegan export`: a run's generator -> `<base>/<name>/<version>/`, atomically.

The SavedModel is built in a sibling folder whose name is not a number (TF Serving ignores
those) and renamed into place only when complete, so a server polling the base path never
sees a half-written version. On any failure the temporary folder is removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from facegan import __version__
from facegan.errors import UsageError
from facegan.exporting.serving_files import update_models_config, write_warmup
from facegan.layout import MODELS_CONFIG, RunDir, VersionDir
from facegan.versions import DEFAULT_MODEL_NAME, MAX_VERSION, check_model_name, scan_versions


def model_card(cfg, run: RunDir, ckpt_meta: dict, version: int) -> dict:
    import keras
    import tensorflow as tf

    from facegan.data.embedded import EMBEDDED
    from facegan.exporting.projection import DEFAULT_STEPS, MAX_STEPS
    from facegan.exporting.signatures import signature_table
    from facegan.sampling import SEED_TO_Z_ALGORITHM

    rows = run.metrics_rows()
    data = json.loads(run.data_manifest.read_text()) if run.data_manifest.is_file() else {}
    return {
        "format": "facegan-model-card/1",
        "version": version,
        "latent_dim": cfg.model.latent_dim,
        "latent_distribution": "normal(0,1)",
        "resolution": cfg.model.resolution,
        "channels": cfg.model.channels,
        "seed_to_z": SEED_TO_Z_ALGORITHM,
        "signatures": signature_table(cfg.model.latent_dim, cfg.model.resolution, DEFAULT_STEPS, MAX_STEPS),
        "run": run.path.name,
        "epochs_trained": ckpt_meta.get("epoch"),
        "data": {"name": cfg.data.path or EMBEDDED, "count": data.get("count"), "sha256": data.get("sha256")},
        "last_metrics": rows[-1] if rows else None,
        # the latest SWD and face-rate figures training wrote (`facegan evaluate` measures any version anew)
        "quality": next(
            (
                {k: v for k, v in r.items() if k.startswith(("swd", "face_rate")) or k in ("epoch", "images_seen")}
                for r in reversed(rows)
                if "swd" in r
            ),
            None,
        ),
        "weights": ckpt_meta.get("weights"),
        "config": cfg.to_dict(),
        "versions": {"facegan": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "exported": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def export(
    run_dir: str | os.PathLike,
    base_path: str | os.PathLike = "models",
    name: str = DEFAULT_MODEL_NAME,
    version: int | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> Path:
    """Export the run's generator; returns the new version folder."""
    import tensorflow as tf

    from facegan.exporting.signatures import build_archive
    from facegan.training.run import restore_run_generator

    run = RunDir(run_dir)
    problem = check_model_name(name)
    if problem:
        raise UsageError(problem)
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise UsageError(f"version must be a number from 1 to {MAX_VERSION}, got {version}")
    cfg, generator, _, meta = restore_run_generator(run.path, checkpoint)  # a bad checkpoint fails before any write
    model_dir = Path(base_path) / name
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=model_dir):  # can we write there at all?
            pass
    except OSError as e:
        raise UsageError(f"cannot write to {model_dir}: {e.strerror}") from None
    existing = scan_versions(model_dir).paths
    if version is None:
        version = max(existing, default=0) + 1
        if version > MAX_VERSION:
            raise UsageError(f"{model_dir} already holds version {MAX_VERSION}, the largest; pass --version")
    final = model_dir / str(version)
    if version in existing or final.exists():
        where = existing.get(version, final)
        raise UsageError(f"version {version} already exists at {where}; versions are never overwritten")

    staging = Path(tempfile.mkdtemp(prefix=f".export-{version}-", dir=model_dir))
    try:
        staging.chmod(0o755)  # mkdtemp makes 0700; a server running as another user must read it
        with tensorflow_info_off():  # "INFO:tensorflow:Assets written to: <staging>" names a temporary folder
            build_archive(generator).write_out(str(staging), verbose=False)
        staged = VersionDir(staging)
        staged.assets.mkdir(exist_ok=True)
        staged.extra.mkdir(exist_ok=True)
        card = model_card(cfg, run, meta, version)
        staged.model_card.write_text(json.dumps(card, indent=2) + "\n")
        write_warmup(staged.warmup, name, card["signatures"])
        os.rename(staging, final)  # fails rather than replace if `final` appeared meanwhile
    except (OSError, tf.errors.OpError) as e:  # a full disk, a file-size limit, a vanished folder
        shutil.rmtree(staging, ignore_errors=True)
        raise UsageError(f"cannot write the export to {model_dir}: {_reason(e)}; nothing was kept") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        update_models_config(Path(base_path) / MODELS_CONFIG, name, model_dir)
    except OSError as e:
        raise UsageError(
            f"exported {final}, but cannot update {Path(base_path) / MODELS_CONFIG}: {_reason(e)}"
        ) from None
    return final


@contextlib.contextmanager
def tensorflow_info_off():
    """TensorFlow's Python logger at WARNING for the block (a notebook shows its INFO lines)."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(getattr(error, "message", None) or error).splitlines()[0]
