"""`evaluate`: SWD, face rate, colour, memorization and discriminator accuracy of a run or an
exported version (`facegan evaluate` prints its report)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facegan import extras, fileio, images
from facegan.errors import UsageError
from facegan.evaluation import face_rate
from facegan.evaluation.color import color_spread
from facegan.evaluation.memorization import memorization
from facegan.evaluation.realism import STRICT_MIN_NEIGHBORS, realism
from facegan.evaluation.swd import BATCH, draw, fake_images, swd, swd_dict
from facegan.layout import MODEL_CARD_FILE, RunDir, VersionDir

MEMORIZATION_FACES = 64


class Generator(NamedTuple):
    """What is evaluated: a run's checkpoint or an exported version."""

    sample: Callable[[np.ndarray], np.ndarray]  # z -> uint8 faces
    discriminator: object  # the run's D (None for an export: exports hold only the generator)
    latent_dim: int
    resolution: int
    trained_data: str | None  # the prepared .npz it was trained on (None: the embedded faces)
    trained_sha: str | None  # that data's sha256, to tell held-out data from training data
    source: dict  # where it came from, for the report


def _from_run(run_dir: Path, ema: bool) -> Generator:
    from facegan.sampling import generate
    from facegan.training import checkpoints
    from facegan.training.models import build_discriminator
    from facegan.training.run import restore_run_generator

    cfg, generator, ckpt, meta = restore_run_generator(run_dir, ema=ema)
    discriminator = build_discriminator(cfg.model)
    checkpoints.restore_discriminator(ckpt, discriminator)
    manifest = RunDir(run_dir).data_manifest
    trained_on = json.loads(manifest.read_text()).get("sha256") if manifest.is_file() else None
    source = {"run": str(run_dir), "checkpoint": ckpt.name, "epoch": meta["epoch"], "weights": meta["weights"]}
    return Generator(
        sample=lambda z: generate(generator, z),
        discriminator=discriminator,
        latent_dim=cfg.model.latent_dim,
        resolution=cfg.model.resolution,
        trained_data=cfg.data.path,
        trained_sha=trained_on,
        source=source,
    )


def _from_export(version_dir: Path) -> Generator:
    import tensorflow as tf

    version = VersionDir(version_dir)
    if not version.is_export():
        raise UsageError(f"{version_dir} is not a facegan export (saved_model.pb and {MODEL_CARD_FILE})")
    card = json.loads(version.model_card.read_text())
    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    data = card["data"]["name"]
    source = {"model": str(version_dir), "version": card["version"], "epoch": card.get("epochs_trained")}
    return Generator(
        sample=lambda z: fn(z=tf.constant(z))["images"].numpy(),
        discriminator=None,
        latent_dim=card["latent_dim"],
        resolution=card["resolution"],
        trained_data=None if data.startswith("embedded:") else data,
        trained_sha=card["data"].get("sha256"),
        source=source,
    )


@extras.explained
def evaluate(
    run: str | os.PathLike | None = None,
    version_dir: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    num_images: int = 8192,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    ema: bool = True,
    face_threshold: int = face_rate.MIN_NEIGHBORS,
) -> dict:
    """Evaluate and write report.json, memorization.png and faces.png into out_dir; returns the report."""
    from facegan.data.embedded import load_training_data

    started = time.perf_counter()
    detector = face_rate.FaceDetector(face_threshold) if face_rate.available() else None
    strict = face_rate.FaceDetector(STRICT_MIN_NEIGHBORS) if detector is not None else None
    if run:
        evaluated = _from_run(Path(run), ema)
    else:
        evaluated = _from_export(Path(version_dir))
    resolution = evaluated.resolution
    data = data or evaluated.trained_data
    if data is not None and not Path(data).is_file():
        raise UsageError(f"data file {data} does not exist (pass --data with the prepared .npz)")
    train, manifest = load_training_data(str(data) if data else None, resolution)
    real, z = draw(train, evaluated.latent_dim, num_images, seed)
    fakes = fake_images(evaluated.sample, z)
    report = {
        "source": evaluated.source,
        "data": manifest.get("source"),
        "images": len(real),
        "seed": seed,
        "resolution": resolution,
        "swd_x1e3": swd_dict(swd(real, fakes, seed), resolution),
        "face_rate": None,  # without the metrics extra
        "color": {"generated": color_spread(fakes), "real": color_spread(real)},
        "realism": realism(real, fakes, seed, strict),
    }
    out = (
        Path(out_dir)
        if out_dir
        else (Path(run) / "eval" if run else Path("eval") / f"{Path(version_dir).parent.name}-{Path(version_dir).name}")
    )
    if detector is not None:
        generated = detector.rate(fakes)
        report["face_rate"] = {
            "generated": generated.rate,
            "real": detector.rate(real).rate,  # the ceiling: what the detector finds in the data itself
            "images": len(fakes),
            **detector.settings(),
        }
        images.save_png(out / "faces.png", face_rate.sheet(fakes, generated))
    mem = memorization(fakes[:MEMORIZATION_FACES], train, np.random.default_rng(seed))
    pairs = mem.pop("pairs")
    report["memorization"] = mem
    if evaluated.discriminator is not None:
        held_out = evaluated.trained_sha is not None and manifest.get("sha256") != evaluated.trained_sha
        report["discriminator"] = {
            "accuracy_real": d_accuracy(evaluated.discriminator, real, real_side=True),
            "accuracy_fake": d_accuracy(evaluated.discriminator, fakes, real_side=False),
            "real_images": "held out" if held_out else "training images (no held-out set given)",
        }
    report["seconds"] = round(time.perf_counter() - started, 2)
    interleaved = np.stack(pairs, axis=1).reshape(-1, *pairs[0].shape[1:])  # fake, nearest, fake, nearest, ...
    images.save_png(out / "memorization.png", images.grid(interleaved, int(np.ceil(len(interleaved) / 16)), 16, 2))
    fileio.write_json(out / "report.json", report)
    report["written"] = str(out)
    return report


def d_accuracy(discriminator, images_uint8: np.ndarray, real_side: bool) -> float:
    """The fraction D calls right: real images with a positive logit, fakes with a negative one."""
    import keras

    logits = np.concatenate(
        [
            keras.ops.convert_to_numpy(
                discriminator(images_uint8[i : i + BATCH].astype(np.float32) / 127.5 - 1.0, training=False)
            )
            for i in range(0, len(images_uint8), BATCH)
        ]
    )
    return float(np.mean(logits > 0 if real_side else logits < 0))
