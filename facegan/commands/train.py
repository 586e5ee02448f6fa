"""`facegan train`: a new run from a preset and flags, or a resumed one.

FLAGS is the one table that ties each command-line flag to the config field it sets. The parser,
the mapping onto the preset and the resume guard all read it, so a new field needs one row.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facegan.config import DEFAULT_PRESET, PRESETS, STRATEGIES
from facegan.errors import UsageError
from facegan.layout import RunDir

HELP = "train a GAN run (new or resumed)"
EXAMPLES = """
    facegan train
    facegan train --preset lfw32 --epochs 200 --seed 3
    facegan train --preset celeba64 --data data/faces64.npz --batch-size 128 --mixed-precision
    facegan train --resume runs/00003-celeba64
    facegan train --resume runs/00003-celeba64 --epochs 40    # train longer
    facegan train --resume runs/00003-celeba64 --checkpoint 12  # go back to epoch 12
    facegan train --strategy mirrored --preset celeba64 --data data/faces64.npz
"""


def augment_list(text: str) -> tuple[str, ...]:
    """ "translation,cutout" -> ("translation", "cutout"); "none" -> ()."""
    return tuple(name for name in text.split(",") if name not in ("", "none"))


@dataclass(frozen=True)
class Flag:
    option: str  # the command-line option; a bool field gets --name and --no-name
    field: str  # "group.name" of the Config field it sets
    type: Callable | None  # parses the text; None for a bool field
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    on_resume: bool = False  # may change when a run is resumed

    @property
    def dest(self) -> str:
        return self.field.replace(".", "__")


FLAGS = (
    Flag("--data", "data.path", str, "prepared .npz from `facegan prepare` (default: the embedded LFW faces)"),
    Flag("--res", "model.resolution", int, "resolution, a multiple of 32 in 32..128"),
    Flag("--batch-size", "train.batch_size", int, "global batch (split across replicas)"),
    Flag("--epochs", "train.epochs", int, "passes over the data; with --resume, the new target", on_resume=True),
    Flag("--latent-dim", "model.latent_dim", int, "length of z"),
    Flag("--dropout", "model.dropout", float, "discriminator dropout after every conv block, in [0, 1)"),
    Flag("--g-width", "model.g_width", float, "G's filters per layer x this (0.5: a quarter of its MACs)"),
    Flag("--d-width", "model.d_width", float, "D's filters per layer x this (e.g. 0.5 for a smaller D)"),
    Flag("--spectral-norm", "model.spectral_norm", None, "spectral norm in D (replaces its BatchNorm)"),
    Flag("--g-lr", "train.g_lr", float, "generator learning rate"),
    Flag("--d-lr", "train.d_lr", float, "discriminator learning rate"),
    Flag("--beta-1", "train.beta_1", float, "Adam's beta_1 for both networks (the lecture's 0.5)"),
    Flag("--label-smoothing", "train.label_smoothing", float, "one-sided: real labels become 1 - this"),
    Flag("--ema-decay", "train.ema_decay", float, "sample and export an EMA of G's weights (0: off)"),
    Flag("--augment", "train.augment", augment_list, 'DiffAugment for D: "translation,cutout", or "none"'),
    Flag("--ada-target", "train.ada_target", float, "adaptive augmentation for D: target E[sign(D(real))], e.g. 0.6"),
    Flag("--ada-images", "train.ada_images", int, "images over which ADA's probability can go from 0 to 1"),
    Flag("--r1-gamma", "train.r1_gamma", float, "R1 gradient penalty on real images (0: off)"),
    Flag("--eval-every", "train.eval_every", int, "SWD every K epochs into metrics.jsonl (0: at the end)", "K"),
    Flag("--eval-images", "train.eval_images", int, "images per side for that SWD"),
    Flag("--seed", "train.seed", int, "seeds weights, data order, flips, dropout and the preview z"),
    Flag("--flip", "data.flip", None, "random horizontal flips (default on)"),
    Flag("--checkpoint-every", "train.checkpoint_every", int, "a checkpoint every K epochs and at the end", "K"),
    Flag("--preview-every", "preview.every", int, "a preview grid (a GIF frame) every K epochs and at the end", "K"),
    Flag("--tensorboard", "train.tensorboard", None, "TensorBoard events in the run folder (default on)"),
    Flag("--histogram-every", "train.histogram_every", int, "weight histograms every K epochs (default 10)", "K"),
    Flag("--xla", "train.xla", None, "jit_compile the train step (default: only on a GPU)"),
    Flag("--mixed-precision", "train.mixed_precision", None, "float16 (GPU) / bfloat16 (CPU); fast32: where native"),
    Flag("--strategy", "train.strategy", str, "tf.distribute strategy (multiworker reads TF_CONFIG)", None, STRATEGIES),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), help=f"starting config (default {DEFAULT_PRESET})")
    for flag in FLAGS:
        if flag.type is None:
            p.add_argument(flag.option, dest=flag.dest, action=argparse.BooleanOptionalAction, help=flag.help)
        else:
            p.add_argument(
                flag.option, dest=flag.dest, type=flag.type, help=flag.help, metavar=flag.metavar, choices=flag.choices
            )
    p.add_argument("--runs-root", help="where numbered run folders go (default runs/)")
    p.add_argument("--run-dir", help="use this folder instead of the next numbered one")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its newest intact checkpoint")
    p.add_argument("--checkpoint", metavar="N", help="with --resume: continue from epoch N's checkpoint (or a file)")
    p.add_argument(
        "--auto-resume",
        action="store_true",
        help="with --run-dir: continue that run if it has a checkpoint, else start it (one command line "
        "for the first start and every restart, e.g. of a preempted pod)",
    )


def overrides(args: argparse.Namespace) -> dict[str, dict]:
    """{"train": {"epochs": 3}, ...}: the config fields the command line set."""
    groups: dict[str, dict] = {}
    for flag in FLAGS:
        value = getattr(args, flag.dest)
        if value is not None:
            group, name = flag.field.split(".")
            groups.setdefault(group, {})[name] = value
    return groups


def train_config(args: argparse.Namespace):
    """The preset with the command line's overrides applied (not yet validated)."""
    from facegan.config import preset

    return preset(args.preset or DEFAULT_PRESET).override(**overrides(args))


def auto_resume(args: argparse.Namespace) -> None:
    """--auto-resume: turn the command into `--resume RUN_DIR` when RUN_DIR has a checkpoint and
    was started with this very config (only --epochs may differ); leave it a new run otherwise."""
    if not args.run_dir:
        raise UsageError("--auto-resume needs --run-dir (the folder a restart continues)")
    if args.resume or args.checkpoint:
        raise UsageError("--auto-resume decides itself whether to resume: drop --resume/--checkpoint")
    run = RunDir(args.run_dir)
    if not run.config.is_file() or not run.has_checkpoint():
        return
    wanted = train_config(args).validate().to_dict()
    found = run.load_config().to_dict()
    for config in (wanted, found):
        config["train"].pop("epochs")
    if wanted != found:
        raise UsageError(f"{run.path} holds a run with another config: give a new --run-dir, or --resume {run.path}")
    args.resume = args.run_dir
    args.run_dir = None
    args.preset = None
    args.runs_root = None
    for flag in FLAGS:  # the run's own config now; only the epoch target carries over
        if not flag.on_resume:
            setattr(args, flag.dest, None)
    print(f"--auto-resume: continuing {run.path}", flush=True)


def run(args: argparse.Namespace) -> int:
    if args.auto_resume:
        auto_resume(args)
    if args.resume:
        fixed = [flag.option for flag in FLAGS if not flag.on_resume and getattr(args, flag.dest) is not None]
        placement = {"--preset": args.preset, "--runs-root": args.runs_root, "--run-dir": args.run_dir}
        fixed += [option for option, value in placement.items() if value is not None]
        if fixed:
            raise UsageError(
                f"--resume continues with the run's own config; only --epochs may change (got {', '.join(fixed)})"
            )
        from facegan.training.run import train  # loads Keras/TensorFlow: after the flags are checked

        run_dir = train(resume=args.resume, epochs=args.train__epochs, from_checkpoint=args.checkpoint)
    else:
        if args.checkpoint:
            raise UsageError("--checkpoint goes with --resume (a new run starts from fresh weights)")
        cfg = train_config(args).validate()
        if cfg.data.path and not Path(cfg.data.path).is_file():
            raise UsageError(f"data file {cfg.data.path} does not exist (create it with `facegan prepare`)")
        from facegan.training.run import train

        run_dir = train(cfg, runs_root=args.runs_root or "runs", run_dir=args.run_dir)
    print(f"done: {run_dir} (previews/, evolution.gif, checkpoints/)")
    print(quality_line(RunDir(run_dir)))
    return 0


def quality_line(run: RunDir) -> str:
    """What the run's last evaluation found: its face rate beside the real faces', and SWD."""
    lines = run.metrics_lines()
    last = json.loads(lines[-1]) if lines else {}
    if "swd" not in last:
        return "quality: not measured (the last epoch was not evaluated)"
    faces = "face rate not measured (pip install 'facegan[metrics]' adds it)"
    if "face_rate" in last:
        faces = f"face rate {last['face_rate']:.2f} (the real faces: {last['face_rate_real']:.2f})"
    return f"quality after {last['epoch']} epochs: {faces}, SWD {last['swd']:.1f} (lower is better; docs/quality.md)"
