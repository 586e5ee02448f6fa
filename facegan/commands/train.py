"""`facegan train`: a new run from a preset and flags, or a resumed one.

The flags are the rows of facegan/api/train_options.py's OPTIONS, the one table that ties each
flag (and each keyword of `facegan.train`) to the config field it sets; the handler passes them
to `facegan.api.runs.train`, which the Python API calls too.
"""

from __future__ import annotations

import argparse

from facegan import extras
from facegan.api.train_options import OPTIONS
from facegan.config import DEFAULT_PRESET, PRESETS

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


METAVARS = {int: "N", float: "X"}  # a flag's value in --help, unless its Option names it


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), help=f"starting config (default {DEFAULT_PRESET})")
    default = PRESETS[DEFAULT_PRESET]
    for option in OPTIONS:
        group, field = option.field.split(".")
        value = getattr(getattr(default, group), field)  # the default preset's (the others': docs/training.md)
        shown = "none" if value == () else ",".join(value) if isinstance(value, tuple) else value
        help = option.help if value is None else f"{option.help} ({DEFAULT_PRESET}: {shown})"
        if option.type is None:
            p.add_argument(option.flag, dest=option.dest, action=argparse.BooleanOptionalAction, help=help)
        else:
            p.add_argument(
                option.flag,
                dest=option.dest,
                type=option.type,
                help=help,
                metavar=None if option.choices else option.metavar or METAVARS.get(option.type, option.keyword.upper()),
                choices=option.choices,
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


def options(args: argparse.Namespace) -> dict:
    """The options the command line gave, as facegan.train's keywords ({"epochs": 3, ...})."""
    return {option.keyword: getattr(args, option.dest) for option in OPTIONS if getattr(args, option.dest) is not None}


def run(args: argparse.Namespace) -> int:
    from facegan.api.runs import train

    trained = train(
        args.preset,
        runs_root=args.runs_root,
        run_dir=args.run_dir,
        resume=args.resume,
        checkpoint=args.checkpoint,
        auto_resume=args.auto_resume,
        **options(args),
    )
    print(f"done: {trained.path} (previews/, evolution.gif, checkpoints/)")
    print(curves_line(trained.path))
    print(trained.quality_line())  # last: the line the quick start leaves on the screen
    return 0


def curves_line(run_path) -> str:
    """Where the loss curves are, and the viewer's command, or the extra that installs the viewer."""
    try:
        import tensorboard  # noqa: F401  (only whether it is installed)
    except ModuleNotFoundError:
        return f"curves: {run_path}/tensorboard/ (the viewer: {extras.install('tensorboard')})"
    return f"curves: tensorboard --logdir {run_path}/tensorboard"
