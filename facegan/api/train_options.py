"""The options of training, as one table: each ties a keyword of `facegan.train(...)` and a flag of
`facegan train` to the config field it sets.

The CLI builds its parser from OPTIONS and the API checks its keywords against it, so a new config
field needs one row, and `facegan.train(batch_size=64)` means exactly `facegan train --batch-size 64`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from facegan.config import DEFAULT_PRESET, STRATEGIES, UPSAMPLES, Config, preset
from facegan.errors import UsageError


def augment_list(text: str) -> tuple[str, ...]:
    """ "translation,cutout" -> ("translation", "cutout"); "none" -> ()."""
    return tuple(name for name in text.split(",") if name not in ("", "none"))


@dataclass(frozen=True)
class Option:
    flag: str  # the command-line flag; a bool field gets --name and --no-name
    field: str  # "group.name" of the Config field it sets
    type: Callable | None  # parses the text of a flag (or a string keyword); None for a bool field
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    on_resume: bool = False  # may change when a run is resumed

    @property
    def keyword(self) -> str:  # the API's name: --batch-size -> batch_size
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def dest(self) -> str:  # argparse's attribute: "train.batch_size" -> train__batch_size
        return self.field.replace(".", "__")


OPTIONS = (
    Option("--data", "data.path", str, "prepared .npz from `facegan prepare` (default: the embedded LFW faces)"),
    Option("--res", "model.resolution", int, "resolution, a multiple of 32 in 32..128"),
    Option("--batch-size", "train.batch_size", int, "global batch (split across replicas)"),
    Option("--epochs", "train.epochs", int, "passes over the data; with --resume, the new target", on_resume=True),
    Option("--latent-dim", "model.latent_dim", int, "length of z"),
    Option("--dropout", "model.dropout", float, "discriminator dropout after every conv block, in [0, 1)"),
    Option("--g-width", "model.g_width", float, "G's filters per layer x this (0.5: a quarter of its MACs)"),
    Option("--d-width", "model.d_width", float, "D's filters per layer x this (e.g. 0.5 for a smaller D)"),
    Option("--spectral-norm", "model.spectral_norm", None, "spectral norm in D (replaces its BatchNorm)"),
    Option("--upsample", "model.upsample", str, "G's upsampling before each conv", None, UPSAMPLES),
    Option("--to-rgb-float32", "model.to_rgb_float32", None, "G's last conv in float32 under mixed precision"),
    Option("--g-lr", "train.g_lr", float, "generator learning rate"),
    Option("--d-lr", "train.d_lr", float, "discriminator learning rate"),
    Option("--beta-1", "train.beta_1", float, "Adam's beta_1 for both networks (the lecture's 0.5)"),
    Option("--label-smoothing", "train.label_smoothing", float, "one-sided: real labels become 1 - this"),
    Option("--lr-decay", "train.lr_decay", float, "both learning rates fall linearly to 0 over this last fraction"),
    Option("--ema-decay", "train.ema_decay", float, "sample and export an EMA of G's weights (0: off)"),
    Option("--augment", "train.augment", augment_list, 'DiffAugment for D: "translation,cutout", or "none"'),
    Option("--ada-target", "train.ada_target", float, "adaptive augmentation for D: target E[sign(D(real))], e.g. 0.6"),
    Option("--ada-images", "train.ada_images", int, "images over which ADA's probability can go from 0 to 1"),
    Option("--r1-gamma", "train.r1_gamma", float, "R1 gradient penalty on real images (0: off)"),
    Option("--r1-every", "train.r1_every", int, "lazy R1: the penalty on every K-th step only, K x as strong", "K"),
    Option("--eval-every", "train.eval_every", int, "SWD every K epochs into metrics.jsonl (0: at the end)", "K"),
    Option("--eval-images", "train.eval_images", int, "images per side for that SWD"),
    Option("--seed", "train.seed", int, "seeds weights, data order, flips, dropout and the preview z"),
    Option("--flip", "data.flip", None, "random horizontal flips (default on)"),
    Option("--checkpoint-every", "train.checkpoint_every", int, "a checkpoint every K epochs and at the end", "K"),
    Option("--preview-every", "preview.every", int, "a preview grid (a GIF frame) every K epochs and at the end", "K"),
    Option("--tensorboard", "train.tensorboard", None, "TensorBoard events in the run folder (default on)"),
    Option("--histogram-every", "train.histogram_every", int, "weight histograms every K epochs (default 10)", "K"),
    Option("--xla", "train.xla", None, "jit_compile the train step (default: only on a GPU)"),
    Option("--mixed-precision", "train.mixed_precision", None, "float16 (GPU) / bfloat16 (CPU); fast32: where native"),
    Option(
        "--strategy", "train.strategy", str, "tf.distribute strategy (multiworker reads TF_CONFIG)", None, STRATEGIES
    ),
)
BY_KEYWORD = {option.keyword: option for option in OPTIONS}


def check_keywords(options: dict) -> None:
    """A UsageError naming the first keyword that is not an option (and the nearest one that is)."""
    for name in options:
        if name not in BY_KEYWORD:
            near = difflib.get_close_matches(name, BY_KEYWORD, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise UsageError(f"unknown training option {name!r}{hint}; the options are docs/training.md's flags")


def value_of(option: Option, value):
    """A keyword's value as the config field wants it: strings go through the flag's parser (so
    augment="translation,cutout" works as on the command line); bool fields take only bools."""
    if option.type is None:
        if not isinstance(value, bool):
            raise UsageError(f"{option.keyword} must be True or False, got {value!r}")
        return value
    if isinstance(value, str) and option.type is not str:
        try:
            return option.type(value)
        except ValueError:
            raise UsageError(f"{option.keyword}: cannot read {value[:40]!r} as {option.type.__name__}") from None
    if option.type is augment_list:
        if not isinstance(value, list | tuple) or not all(isinstance(name, str) for name in value):
            raise UsageError(f'{option.keyword} must be names like ("translation", "cutout"), got {value!r}')
        return tuple(value)
    numeric = {int: (int,), float: (int, float)}.get(option.type)
    if numeric and (isinstance(value, bool) or not isinstance(value, numeric)):
        raise UsageError(f"{option.keyword} must be a number ({option.type.__name__}), got {value!r}")
    if option.type is str and not isinstance(value, str):
        raise UsageError(f"{option.keyword} must be a string, got {value!r}")
    if option.choices and value not in option.choices:
        raise UsageError(f"{option.keyword} must be one of {', '.join(option.choices)}, got {value!r}")
    return value


def overrides(options: dict) -> dict[str, dict]:
    """{"epochs": 3, "g_lr": 1e-4} -> {"train": {"epochs": 3, "g_lr": 1e-4}}; None means "not given"."""
    check_keywords(options)
    groups: dict[str, dict] = {}
    for name, value in options.items():
        if value is None:
            continue
        option = BY_KEYWORD[name]
        group, field = option.field.split(".")
        groups.setdefault(group, {})[field] = value_of(option, value)
    return groups


def config_for(preset_name: str | None, options: dict) -> Config:
    """The preset (default fast32) with the options applied, validated."""
    return preset(preset_name or DEFAULT_PRESET).override(**overrides(options)).validate()


def fixed_on_resume(options: dict) -> list[str]:
    """The given options a resumed run may not change (all but epochs), as keywords."""
    check_keywords(options)
    return [name for name, value in options.items() if value is not None and not BY_KEYWORD[name].on_resume]
