"""Face quality at equal training compute: SWD and the face rate of facegan's default preset vs
the lecture's network, compared seed by seed.

Each preset is trained with several seeds on the same data, resolution, batch and epochs (so
the same number of images seen), then evaluated with one fixed evaluation seed (same real
subset, z, patches and projections for every run). For runs that keep an EMA generator the
raw generator is evaluated too: EMA changes nothing in training, so "raw" isolates its effect.

Runs with the same seed see the same data order and the same z, so generators are compared in
pairs: for every two generators, the mean of the per-seed differences with a 95 % Student-t
interval. One counts as better only when that interval excludes zero. A run folder that finished
training is reused, and so is an evaluation made with the same arguments: adding seeds or a variant
to an earlier command trains and evaluates only what is new.

    python bench/quality.py                                   # lecture vs lfw32, 32 px, seeds 0-5
    python bench/quality.py --presets lfw32                   # lfw32's raw G is the lecture run (see docs/quality.md)
    python bench/quality.py --res 64 --epochs 100             # the same on the 64 px set
    python bench/quality.py --presets lfw32 --variant ttur="--g-lr 1e-4 --d-lr 4e-4"   # a remedy, paired
    python bench/quality.py --presets lfw32 --variant ada="--ada-target 0.6" --variant r1="--r1-gamma 0.01" \
        --variant sn="--spectral-norm" --variant dhalf="--d-width 0.5"     # the small-data remedies
    python bench/quality.py --presets lfw32 --epochs 800 --tag=-4x --seeds 0,1,2   # 4x the budget
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from figures import save as save_figure  # noqa: E402  (bench/figures.py)
from variants import parse as parse_variants  # noqa: E402  (bench/variants.py)


def train(preset: str, seed: int, run_dir: Path, extra: list[str]) -> float:
    if (run_dir / "eval-done").is_file():  # finished earlier: reuse (delete the folder to retrain)
        return json.loads((run_dir / "eval-done").read_text())["seconds"]
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "facegan.cli",
            "train",
            "--preset",
            preset,
            "--seed",
            str(seed),
            "--run-dir",
            str(run_dir),
            *extra,
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    (run_dir / "eval-done").write_text(json.dumps({"seconds": seconds}))
    return seconds


def evaluated(evaluate, run_dir: Path, out_dir: Path, ema: bool, args) -> dict:
    """The run's evaluation report: made earlier with the same arguments (eval-args.json beside it,
    written last) and the same training (the report is newer than eval-done), or made now."""
    asked = {"num_images": args.num_images, "seed": args.eval_seed, "ema": ema}
    made = out_dir / "eval-args.json"
    report = out_dir / "report.json"
    if (
        made.is_file()
        and report.is_file()
        and json.loads(made.read_text()) == asked
        and report.stat().st_mtime >= (run_dir / "eval-done").stat().st_mtime
    ):
        return json.loads(report.read_text())
    result = evaluate(run=run_dir, num_images=args.num_images, seed=args.eval_seed, out_dir=out_dir, ema=ema)
    made.write_text(json.dumps(asked))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="lecture,lfw32")
    p.add_argument("--seeds", default="0,1,2,3,4,5")
    p.add_argument("--res", type=int, default=32, help="32: the embedded LFW faces; 64: the same faces at 64 px")
    p.add_argument("--epochs", type=int, help="default: the presets' (equal for both)")
    p.add_argument("--train-args", default="", help="extra `facegan train` flags for every run")
    p.add_argument("--tag", default="", help="suffix for the runs folder, to keep variants apart")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar='NAME="FLAGS"',
        help="also train each preset with these `facegan train` flags, paired with the plain runs by seed, "
        'e.g. --variant ttur="--g-lr 1e-4 --d-lr 4e-4" (repeatable)',
    )
    p.add_argument("--runs-root", default=str(ROOT / "runs" / "quality"))
    p.add_argument("--eval-seed", type=int, default=1000)
    p.add_argument("--num-images", type=int, default=8192)
    p.add_argument(
        "--scatter", help="draw every generator's strict face rate against its spectral gap / floor into this PNG"
    )
    args = p.parse_args()
    from facegan.api.evaluation import evaluate

    extra = ["--res", str(args.res), *shlex.split(args.train_args)] + (
        ["--epochs", str(args.epochs)] if args.epochs else []
    )
    variants = parse_variants(p, args.variant)
    rows = []
    runs = [(preset, variant, flags) for preset in args.presets.split(",") for variant, flags in variants]
    for preset, variant, flags in runs:
        for seed in map(int, args.seeds.split(",")):
            run_dir = Path(args.runs_root) / f"{preset}{args.tag}{variant}-{args.res}px-seed{seed}"
            seconds = train(preset, seed, run_dir, [*extra, *flags])
            seen = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["images_seen"]
            kinds = (
                [True, False]
                if json.loads((run_dir / "config.json").read_text())["train"]["ema_decay"] > 0
                else [False]
            )
            for ema in kinds:
                report = evaluated(evaluate, run_dir, run_dir / ("eval" if ema else "eval-raw"), ema, args)
                name = f"{preset}{args.tag}{variant}" + ("" if ema or len(kinds) == 1 else " (raw G, no EMA)")
                faces = report["face_rate"] or {"generated": float("nan"), "real": float("nan")}
                rows.append((name, seed, seen, seconds, report["swd_x1e3"], faces, report["color"], report["realism"]))
                print(
                    f"{name} seed {seed}: SWD {report['swd_x1e3']['swd']:.2f}  face rate {faces['generated']:.2f} "
                    f"(real {faces['real']:.2f})  colour {report['color']['generated']:.3f}",
                    flush=True,
                )
    levels = [k for k in rows[0][4] if k != "swd"]
    print(f"\n{args.res} px, seeds {args.seeds}, eval seed {args.eval_seed}; mean ± std over seeds (SWD x1e3)\n")
    print(
        "| preset | images seen | seconds | "
        + " | ".join(f"SWD {k[4:]} px" for k in levels)
        + " | SWD average | face rate (real: ceiling) | colour (real) | SWD / floor | spectral gap / floor |"
        " strict face rate (real) |"
    )
    print("|---" * (len(levels) + 9) + "|")
    for name in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == name]

        def stat(values, digits=2):
            return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

        print(
            f"| {name} | {mine[0][2]:,} | {np.mean([r[3] for r in mine]):.0f} | "
            + " | ".join(stat([r[4][k] for r in mine]) for k in levels)
            + f" | {stat([r[4]['swd'] for r in mine])} | {stat([r[5]['generated'] for r in mine])} "
            f"({mine[0][5]['real']:.2f}) | {stat([r[6]['generated'] for r in mine], 3)} ({mine[0][6]['real']:.3f}) | "
            f"{stat([r[7]['swd_x1e3']['ratio'] for r in mine])} | {stat([r[7]['spectrum']['ratio'] for r in mine])} | "
            f"{stat([PICK['strict'](r) for r in mine])} ({PICK['strict_real'](mine[0]):.2f}) |"
        )
    print(
        f"\nPaired by seed: mean of (second - first) with a 95 % t interval over {len(args.seeds.split(','))} seeds;"
        " SWD lower is better, face rate higher. *: the interval excludes zero.\n"
    )
    print("| second - first | SWD average | face rate | colour | spectral gap / floor | strict face rate |")
    print("|---|---|---|---|---|---|")
    names = list(dict.fromkeys(r[0] for r in rows))
    baselines = names[:2]  # the first preset's generator(s): with EMA, its raw G (= the lecture run) too
    for i, first in enumerate(baselines):
        for second in names[i + 1 :]:
            pair = ([r for r in rows if r[0] == first], [r for r in rows if r[0] == second])
            diffs = [paired(*pair, what) for what in ("swd", "face", "color", "spectrum", "strict")]
            print(f"| {second} - {first} | " + " | ".join(diffs) + " |")
    if args.scatter:
        scatter(rows, Path(args.scatter))


def scatter(rows: list, path: Path) -> None:
    """Detail against coherence: each generator's runs at (spectral gap / floor, strict face rate),
    its mean marked, with the real faces' floor (1, their strict rate and its 95 % interval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    names = list(dict.fromkeys(r[0] for r in rows))
    colors = plt.get_cmap("tab20").colors  # 20 distinct colours: the default cycle repeats after 10
    for i, name in enumerate(names):
        mine = [r for r in rows if r[0] == name]
        x = [PICK["spectrum"](r) for r in mine]
        y = [PICK["strict"](r) for r in mine]
        color, marker = colors[i % len(colors)], "s" if "raw G" in name else "D"  # squares: raw generators
        ax.plot(x, y, "o", color=color, alpha=0.45, markersize=5)
        ax.plot(np.mean(x), np.mean(y), marker, color=color, markersize=8, label=f"{name} ({len(mine)})")
    real = rows[0][7]["strict_face_rate"]
    if real:
        low, high = real["real_interval"]
        ax.errorbar([1.0], [real["real"]], yerr=[[real["real"] - low], [high - real["real"]]], fmt="*", color="black",
                    markersize=12, capsize=4, label="real faces (floor; 95 % interval)")  # fmt: skip
    ax.set(xlabel="spectral gap / floor (1 = as real faces; lower is better)",
           ylabel="strict face rate (minNeighbors 10; higher is better)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    title = "detail against coherence: every run (dots), each generator's mean (diamonds; squares: raw G, no EMA)"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    print(f"\nscatter: {path}")


PICK = {  # a figure of a result row, by name
    "swd": lambda row: row[4]["swd"],
    "face": lambda row: row[5]["generated"],
    "color": lambda row: row[6]["generated"],
    "spectrum": lambda row: row[7]["spectrum"]["ratio"],
    "strict": lambda row: (row[7]["strict_face_rate"] or {"generated": float("nan")})["generated"],
    "strict_real": lambda row: (row[7]["strict_face_rate"] or {"real": float("nan")})["real"],
}


def paired(first: list, second: list, what: str) -> str:
    """'mean [low, high]' of the per-seed differences second - first, * when the interval excludes 0."""
    from scipy import stats

    by_seed = {r[1]: r for r in first}
    diffs = []
    for r in second:
        if r[1] in by_seed:
            diffs.append(PICK[what](r) - PICK[what](by_seed[r[1]]))
    if len(diffs) < 2:
        return "needs 2+ seeds"
    mean = float(np.mean(diffs))
    half = float(stats.t.ppf(0.975, len(diffs) - 1) * np.std(diffs, ddof=1) / np.sqrt(len(diffs)))
    star = "*" if mean - half > 0 or mean + half < 0 else ""
    digits = 2 if what == "swd" else 3  # the rates and ratios: 3
    return f"{mean:+.{digits}f} [{mean - half:+.{digits}f}, {mean + half:+.{digits}f}]{star}"


if __name__ == "__main__":
    main()
