"""Frozen configuration dataclasses and the named presets.

A run's fully resolved `Config` is written to `config.json` in its run folder and
later carried into the export's model card, so every stage agrees on one record.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from facegan.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    resolution: int = 64  # output side in pixels; a multiple of 32 in [32, 128]
    latent_dim: int = 100  # length of z, drawn from N(0, 1) (the lecture's "seed vector")
    channels: int = 3  # RGB; grayscale data is replicated to three channels
    bn_momentum: float = 0.8  # the lecture's BatchNormalization momentum, both networks
    dropout: float = 0.25  # discriminator dropout after every conv block
    fused_upconv: bool = True  # upsample+conv as one transposed conv: same function and weights, 2.25x fewer MACs
    fused_batchnorm: bool = True  # BatchNorm trained through TF's fused kernel: same math, one pass each way
    g_width: float = 1.0  # G's filters per layer x this: the lecture's 256-256-256-128 were chosen for 96 px
    d_width: float = 1.0  # D's filters per layer x this (0.5: a quarter of its conv weights), for small data sets
    spectral_norm: bool = False  # D's weights divided by their largest singular value (SNGAN); replaces D's BatchNorm
    upsample: str = "nearest"  # G's upsampling before each 3x3 conv: "nearest" (the lecture's) or "bilinear" (smoother)
    to_rgb_float32: bool = False  # G's last conv in float32 under a mixed-precision policy (its image's last rounding)


@dataclass(frozen=True)
class DataConfig:
    path: str | None = None  # prepared .npz from `facegan prepare`; None = embedded LFW faces
    flip: bool = True  # random horizontal flips: faces are roughly left/right symmetric


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32  # global batch; split across replicas under a strategy
    epochs: int = 50  # passes over the data set
    g_lr: float = 1.5e-4  # generator Adam learning rate (the lecture's)
    d_lr: float = 1.5e-4  # discriminator Adam learning rate (the lecture's)
    beta_1: float = 0.5  # Adam beta_1 for both networks (DCGAN's recommendation)
    label_smoothing: float = 0.0  # one-sided: real targets become 1 - this value
    augment: tuple[str, ...] = ()  # DiffAugment for D: any of "translation", "cutout" (few-image data sets)
    ada_target: float = 0.0  # ADA: steer D's augmentation probability so E[sign(D(real))] stays here (0.6); 0 = off
    ada_images: int = 5000  # images over which ADA's probability can move from 0 to 1 (StyleGAN2-ADA: 500k)
    r1_gamma: float = 0.0  # R1 penalty on real images: d_loss += gamma/2 * E|grad_x D(x)|^2; 0 = off
    r1_every: int = 1  # R1 on every K-th step only, weighted K x (StyleGAN2's lazy regularization: ~1/K of its cost)
    ema_decay: float = 0.0  # keep an exponential moving average of G's weights for sampling and export; 0 = off
    lr_decay: float = 0.0  # over this last fraction of the epochs both learning rates fall linearly to 0; 0 = constant
    seed: int = 0  # seeds weights, data order, flips, dropout and the preview z
    xla: bool | None = None  # jit_compile the step; None = on with a GPU, off on CPU (oneDNN beat XLA there)
    mixed_precision: bool | None = False  # float16 on GPU / bfloat16 on CPU; None = only where native (GPU, bf16 CPU)
    strategy: str = "default"  # "mirrored" | "multiworker" (tf.distribute) | "data-parallel" (JAX) | "default"
    keep_checkpoints: int = 3  # newest checkpoints kept in checkpoints/
    checkpoint_every: int = 1  # a checkpoint every K epochs, and at the last one and at a stop (lfw32's: 47 MB, 0.07 s)
    eval_every: int = 0  # SWD against the training images every K epochs into metrics.jsonl; 0 = at the end only
    eval_images: int = 2048  # images per side for that SWD (capped at the data set's size)
    tensorboard: bool = True  # TensorBoard events in runs/N/tensorboard/ (scalars, SWD, previews, histograms)
    histogram_every: int = 10  # weight histograms every K epochs (and at the last one)


@dataclass(frozen=True)
class PreviewConfig:
    rows: int = 4  # preview grid rows (the lecture's PREVIEW_ROWS)
    cols: int = 7  # preview grid columns (the lecture's PREVIEW_COLS)
    margin: int = 16  # pixels between faces (the lecture's PREVIEW_MARGIN)
    gif_ms: int = 200  # milliseconds per frame in evolution.gif
    every: int = 1  # a preview grid (a frame of evolution.gif) every K epochs, and at the last one and at a stop


@dataclass(frozen=True)
class Config:
    name: str = "celeba64"  # preset this config started from; part of the run folder's name
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        try:
            return cls(
                name=d["name"],
                model=ModelConfig(**d["model"]),
                data=DataConfig(**d["data"]),
                train=TrainConfig(**{**d["train"], "augment": tuple(d["train"].get("augment", ()))}),
                preview=PreviewConfig(**d["preview"]),
            )
        except (KeyError, TypeError) as e:
            raise ConfigError(f"config has missing or unknown fields ({e})") from None

    def override(self, **groups: dict[str, Any]) -> Config:
        """Return a copy with fields replaced per group, e.g. override(train={"epochs": 2})."""
        parts = {g: replace(getattr(self, g), **vals) for g, vals in groups.items() if vals}
        return replace(self, **parts)

    def validate(self) -> Config:
        m, t, p = self.model, self.train, self.preview
        if m.resolution % 32 or not 32 <= m.resolution <= 128:
            raise ConfigError(f"resolution must be a multiple of 32 from 32 to 128, got {m.resolution}")
        if m.latent_dim < 1:
            raise ConfigError(f"latent_dim must be >= 1, got {m.latent_dim}")
        if t.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {t.batch_size}")
        if t.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {t.epochs}")
        if not 0.0 <= m.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {m.dropout}")
        for name, rate in (("g_lr", t.g_lr), ("d_lr", t.d_lr)):
            if not (math.isfinite(rate) and rate > 0):  # nan and inf pass a plain > 0 (nan) or fail at step 2
                raise ConfigError(f"{name} must be a finite number > 0, got {rate}")
        if not 0 <= t.seed <= MAX_TRAIN_SEED:
            raise ConfigError(f"seed must be in 0..{MAX_TRAIN_SEED} (what NumPy's seeding takes), got {t.seed}")
        if not 0.0 <= t.beta_1 < 1.0:
            raise ConfigError(f"beta_1 must be in [0, 1), got {t.beta_1}")
        if not 0.0 <= t.label_smoothing < 0.5:
            raise ConfigError(f"label smoothing must be in [0, 0.5), got {t.label_smoothing}")
        if t.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {t.strategy!r}")
        if set(t.augment) - {"translation", "cutout"}:
            raise ConfigError(f"augment takes translation and/or cutout, got {', '.join(t.augment)}")
        if not 0.0 < m.g_width <= 4.0 or round(128 * m.g_width) < 1:
            raise ConfigError(f"g_width must be in (0, 4] and leave G's last layer a filter, got {m.g_width}")
        if not 0.0 < m.d_width <= 4.0 or round(32 * m.d_width) < 1:
            raise ConfigError(f"d_width must be in (0, 4] and leave D's first layer a filter, got {m.d_width}")
        if not 0.0 <= t.ada_target < 1.0:
            raise ConfigError(f"ada_target must be in [0, 1) (0 = off), got {t.ada_target}")
        if t.ada_images < 1:
            raise ConfigError(f"ada_images must be >= 1, got {t.ada_images}")
        if t.ada_target and t.augment:
            raise ConfigError("ADA and DiffAugment are two augmentation schemes for D: use one (--augment none)")
        if not 0.0 <= t.r1_gamma <= 1e4:
            raise ConfigError(f"r1_gamma must be in [0, 1e4] (0 = off), got {t.r1_gamma}")
        if not 1 <= t.r1_every <= 1024:
            raise ConfigError(f"r1_every must be in [1, 1024] (1 = every step), got {t.r1_every}")
        if m.upsample not in UPSAMPLES:
            raise ConfigError(f"upsample must be one of {', '.join(UPSAMPLES)}, got {m.upsample!r}")
        if not 0.0 <= t.lr_decay <= 1.0:
            raise ConfigError(f"lr_decay must be in [0, 1] (0 = off), got {t.lr_decay}")
        if not 0.0 <= t.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {t.ema_decay}")
        if t.eval_every < 0 or t.eval_images < 1:
            raise ConfigError("eval_every must be >= 0 and eval_images >= 1")
        if t.histogram_every < 1:
            raise ConfigError(f"histogram_every must be >= 1, got {t.histogram_every}")
        if t.keep_checkpoints < 1:
            raise ConfigError("keep_checkpoints must be >= 1")
        if t.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be >= 1, got {t.checkpoint_every}")
        if p.every < 1:
            raise ConfigError(f"preview every must be >= 1, got {p.every}")
        if p.rows < 1 or p.cols < 1 or p.margin < 0:
            raise ConfigError("preview rows/cols must be >= 1 and margin >= 0")
        return self


MAX_TRAIN_SEED = 2**32 - 1  # np.random.seed (which keras.utils.set_random_seed calls) takes 0..2**32 - 1
UPSAMPLES = ("nearest", "bilinear")
STRATEGIES = ("default", "mirrored", "multiworker", "data-parallel")
DEFAULT_PRESET = "fast32"  # what `facegan train` starts from without --preset

PRESETS: dict[str, Config] = {
    # The quick start: 100 real LFW faces shipped inside scikit-image, 32 px, minutes on a CPU.
    "lfw32": Config(
        name="lfw32",
        model=ModelConfig(resolution=32),
        train=TrainConfig(batch_size=16, epochs=200, ema_decay=0.995),
    ),
    # The quick start's default: lfw32 tuned for time to quality on a CPU (docs/quality.md).
    "fast32": Config(
        name="fast32",
        model=ModelConfig(resolution=32, g_width=0.5),
        train=TrainConfig(
            batch_size=32, epochs=560, g_lr=3e-4, d_lr=3e-4, ema_decay=0.995, mixed_precision=None, checkpoint_every=10
        ),
        preview=PreviewConfig(every=5),
    ),
    # The lecture's network and step on the quick start's data and budget: the baseline lfw32 is measured against.
    "lecture": Config(
        name="lecture",
        model=ModelConfig(resolution=32),
        train=TrainConfig(batch_size=16, epochs=200),
    ),
    # The lecture's exact setup (T81-558 7.2): 96 px, batch 32, 50 epochs, 4x7 previews.
    "lecture96": Config(
        name="lecture96",
        model=ModelConfig(resolution=96),
        train=TrainConfig(batch_size=32, epochs=50),
    ),
    # CelebA aligned faces prepared at 64 px.
    "celeba64": Config(
        name="celeba64",
        model=ModelConfig(resolution=64),
        train=TrainConfig(batch_size=64, epochs=20),
    ),
}


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
