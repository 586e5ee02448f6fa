"""Time to quality: how many seconds of this machine's training a preset needs before its faces
look like faces.

Each preset trains with several seeds through facegan's real loop (`facegan.training.run.train`:
the same callbacks, previews, checkpoints and TensorBoard as `facegan train`). A clock callback
evaluates the sampling generator (the EMA one when the preset keeps it) every `--every` seconds of
*training* wall clock, up to `--budget` seconds; the evaluations' own time is kept off that clock
and reported beside it. The evaluation is bench/quality.py's: evaluation seed 1000, all the real
faces there are (100 for the embedded set) against as many fakes, SWD (x1e3, lower is better) and
the face rate (OpenCV's Haar detector; the real faces' rate is the ceiling).

Seeds are interleaved (seed 0 of every preset, then seed 1, ...), so a machine that slows down
during the bench slows every preset alike, and runs with one seed are compared in pairs. Each
run is a fresh process (its start-up is reported, not clocked) and its curve is appended to
`--results` as one JSON line as soon as it ends: an interrupted bench continues where it stopped,
and a finished one only prints (delete the file to measure again). With --keep-runs each run
folder stays (its checkpoint at the budget), for bench/grids.py's grids at equal wall clock.
A run ends at the budget, or after `--epochs N` when a variant's flags give it (an `--lr-decay`
tail then ends where a quick start of N epochs would end it); a run that ends early is evaluated
once more at its end, and those faces stand for every later point (they are its faces then).

Printed per preset: the curve (mean and 95 % Student-t interval over seeds at each point), the
time to reach each goal (face rate >= 0.80, SWD <= 45; a seed that never gets there within the
budget counts as the budget, so that mean is then a lower bound and is marked >=), the paired
differences against the first preset, and the CPU. `--chart` draws every preset's curves.

    python bench/time_to_quality.py                                  # lfw32 vs fast32, seeds 0-7, 240 s
    python bench/time_to_quality.py --presets fast32 --variant b16="--batch-size 16" --seeds 0,1 --budget 120
    python bench/time_to_quality.py --presets lfw32,fast32 --seeds 0-7 --budget 240 --every 20 \\
        --chart docs/time-to-quality.png                             # the figure in docs/quality.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from figures import save as save_figure  # noqa: E402  (bench/figures.py)
from variants import parse as parse_variants  # noqa: E402  (bench/variants.py)

EVAL_SEED = 1000  # bench/quality.py's evaluation seed: the same real subset, z, patches and projections
GOALS = {"face_rate": 0.80, "swd": 45.0}  # the face rate at least, SWD at most


def reached(metric: str, value: float, goal: float) -> bool:
    return value >= goal if metric == "face_rate" else value <= goal


# ----------------------------------------------------------------------------- one run (a child)


def run_one(spec: dict) -> dict:
    """Train spec's preset + flags with spec's seed for spec["budget"] seconds of training clock;
    returns the curve. Runs in its own process (see main)."""
    started = time.perf_counter()
    import keras

    from facegan.api.train_options import config_for
    from facegan.commands import train as train_command
    from facegan.data.embedded import load_training_data
    from facegan.evaluation import face_rate
    from facegan.evaluation.realism import STRICT_MIN_NEIGHBORS, realism
    from facegan.evaluation.swd import draw, fake_images, swd, swd_dict
    from facegan.sampling import generate
    from facegan.training.cpu import cpu_info
    from facegan.training.run import train

    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    args = parser.parse_args(["--preset", spec["preset"], "--seed", str(spec["seed"]), *spec["flags"]])
    options = train_command.options(args)
    # The clock stops a run; with --epochs in the flags the run also ends there (a --lr-decay tail
    # ends where that many epochs' would), and its last faces stand for every later point.
    cfg = config_for(args.preset, {**options, "epochs": options.get("epochs") or 1_000_000})
    images, _ = load_training_data(cfg.data.path, cfg.model.resolution)
    real, z = draw(images, cfg.model.latent_dim, len(images), EVAL_SEED)
    detector = face_rate.FaceDetector()
    strict = face_rate.FaceDetector(STRICT_MIN_NEIGHBORS)

    class Clock(keras.callbacks.Callback):
        """Training wall clock without the evaluations; evaluates every `every` seconds of it."""

        def __init__(self):
            super().__init__()
            self.points = []
            self.eval_seconds = 0.0
            self.images_seen = 0

        def on_train_begin(self, logs=None):
            self.began = time.perf_counter()
            self.next_point = spec["every"]

        def training_seconds(self) -> float:
            return time.perf_counter() - self.began - self.eval_seconds

        def on_train_batch_end(self, batch, logs=None):
            self.images_seen += cfg.train.batch_size
            while self.training_seconds() >= self.next_point and self.next_point <= spec["budget"]:
                self.evaluate(self.next_point)
                self.next_point += spec["every"]
            if self.next_point > spec["budget"]:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            """Epochs done before the budget: the final faces are the faces at every later point."""
            if self.next_point <= spec["budget"]:
                self.evaluate(self.next_point)
                final = self.points[-1]
                for t in np.arange(self.next_point + spec["every"], spec["budget"] + 1e-9, spec["every"]):
                    self.points.append({**final, "t": float(t)})

        def evaluate(self, point: float) -> None:
            measured = self.training_seconds()
            t0 = time.perf_counter()
            fakes = fake_images(lambda batch: generate(self.model.sampler, batch), z)
            measures = realism(real, fakes, EVAL_SEED, strict)  # each beside its real-vs-real floor
            self.points.append(
                {
                    "t": point,
                    "training_seconds": round(measured, 2),
                    "images_seen": self.images_seen,
                    "swd": swd_dict(swd(real, fakes, EVAL_SEED), cfg.model.resolution)["swd"],
                    "face_rate": detector.rate(fakes).rate,
                    "swd_ratio": measures["swd_x1e3"]["ratio"],
                    "spectral_ratio": measures["spectrum"]["ratio"],
                    "strict_face_rate": measures["strict_face_rate"]["generated"],
                    "real_strict_face_rate": measures["strict_face_rate"]["real"],
                }
            )
            self.eval_seconds += time.perf_counter() - t0

    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="facegan-ttq-") as runs:
        startup = time.perf_counter() - started
        run_dir = Path(spec.get("keep") or Path(runs) / "run")
        with contextlib.redirect_stdout(sys.stderr):  # the epoch lines go to the run's log
            train(cfg, run_dir=run_dir, verbose=0, callbacks=(clock,))
    return {
        "name": spec["name"],
        "preset": spec["preset"],
        "flags": spec["flags"],
        "config": cfg.to_dict(),  # the resolved config (epochs: the clock stopped it first)
        "seed": spec["seed"],
        "budget": spec["budget"],
        "every": spec["every"],
        "points": clock.points,
        "real_face_rate": detector.rate(real).rate,
        "eval_seconds": round(clock.eval_seconds, 2),
        "startup_seconds": round(startup, 2),
        "cpu": cpu_info().describe(),
        "date": time.strftime("%Y-%m-%d"),
    }


# ----------------------------------------------------------------------------- the bench


def seeds_list(text: str) -> list[int]:
    """ "0-7" or "0,1,2" -> [0, 1, ...]."""
    if "-" in text and "," not in text:
        first, last = map(int, text.split("-"))
        return list(range(first, last + 1))
    return [int(s) for s in text.split(",")]


def interval(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95 % Student-t interval); half-width 0 for fewer than 2 values."""
    from scipy import stats

    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, 0.0
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values)))


def time_to(run: dict, metric: str) -> float | None:
    """Training seconds until the run first reached the goal on `metric`; None if it never did."""
    for point in run["points"]:
        if reached(metric, point[metric], GOALS[metric]):
            return point["t"]
    return None


def curve_table(name: str, runs: list[dict]) -> list[str]:
    lines = [f"\n{name}: {len(runs)} seeds ({', '.join(str(r['seed']) for r in runs)})", ""]
    lines.append("| training s | images seen | face rate (mean [95 % interval]) | SWD x1e3 |")
    lines.append("|---|---|---|---|")
    for i, t in enumerate(point["t"] for point in runs[0]["points"]):
        at = [r["points"][i] for r in runs if i < len(r["points"])]
        images_seen = int(np.mean([p["images_seen"] for p in at]))
        cells = []
        for metric, digits in (("face_rate", 2), ("swd", 1)):
            mean, half = interval([p[metric] for p in at])
            cells.append(f"{mean:.{digits}f} [{mean - half:.{digits}f}, {mean + half:.{digits}f}]")
        lines.append(f"| {t:g} | {images_seen:,} | {cells[0]} | {cells[1]} |")
    return lines


def goal_cell(runs: list[dict], metric: str) -> str:
    """'mean [interval] s, k/n reached' with never-reached seeds counted as the budget ('>=')."""
    times = [time_to(r, metric) for r in runs]
    hit = [t for t in times if t is not None]
    counted = [t if t is not None else r["budget"] for t, r in zip(times, runs)]
    mean, half = interval(counted)
    bound = "" if len(hit) == len(runs) else ">= "
    return f"{bound}{mean:.0f} [{mean - half:.0f}, {mean + half:.0f}] s, {len(hit)}/{len(runs)} reached"


def paired_cell(first: list[dict], second: list[dict], pick) -> str:
    """'mean [interval]' of second - first over the seeds both have; * when it excludes zero."""
    by_seed = {r["seed"]: r for r in first}
    diffs = [pick(r) - pick(by_seed[r["seed"]]) for r in second if r["seed"] in by_seed]
    if len(diffs) < 2:
        return "needs 2+ seeds"
    mean, half = interval(diffs)
    star = "*" if mean - half > 0 or mean + half < 0 else ""
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]{star} ({len(diffs)} seeds)"


def final_measures(runs: list[dict]) -> str:
    """The last point's floor ratios and strict face rate, as table cells (older result files lack them)."""
    last = [r["points"][-1] for r in runs]
    if not all("spectral_ratio" in p for p in last):
        return "— | — | — | "
    cells = [interval([p[k] for p in last]) for k in ("swd_ratio", "spectral_ratio", "strict_face_rate")]
    real = np.mean([p["real_strict_face_rate"] for p in last])
    return (
        " | ".join(f"{m:.2f} ± {h:.2f}" for m, h in cells[:2])
        + f" | {cells[2][0]:.2f} ± {cells[2][1]:.2f} ({real:.2f}) | "
    )


def report(by_name: dict[str, list[dict]]) -> None:
    some = next(iter(by_name.values()))[0]
    print(
        f"\nCPU: {some['cpu']}; date {some['date']}; evaluation seed {EVAL_SEED}; real faces' face rate "
        f"{some['real_face_rate']:.2f}"
    )
    for name, runs in by_name.items():
        print("\n".join(curve_table(name, runs)))
    print(
        "\n| preset | seeds | time to face rate >= 0.80 | time to SWD <= 45 | final face rate | final SWD | "
        "final SWD / floor | final spectral gap / floor | final strict face rate (real) | "
        "evaluations (s per run, off the clock) | start-up s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, runs in by_name.items():
        face, face_half = interval([r["points"][-1]["face_rate"] for r in runs])
        swd_mean, swd_half = interval([r["points"][-1]["swd"] for r in runs])
        print(
            f"| {name} | {len(runs)} | {goal_cell(runs, 'face_rate')} | {goal_cell(runs, 'swd')} | "
            f"{face:.2f} ± {face_half:.2f} | {swd_mean:.1f} ± {swd_half:.1f} | "
            + final_measures(runs)
            + f"{np.mean([r['eval_seconds'] for r in runs]):.1f} | "
            + f"{np.mean([r['startup_seconds'] for r in runs]):.1f} |"
        )
    names = list(by_name)
    if len(names) < 2:
        return
    print(
        f"\nPaired by seed, preset - {names[0]} (95 % t interval; * excludes zero). Time to a goal counts a seed "
        "that never reached it as the budget, so a difference against a baseline that never got there is a bound "
        "on the true one.\n"
    )
    print("| preset - baseline | time to face rate 0.80 (s) | time to SWD 45 (s) | final face rate | final SWD |")
    print("|---|---|---|---|---|")
    for name in names[1:]:
        first, second = by_name[names[0]], by_name[name]
        cells = [
            paired_cell(first, second, lambda r, m=m: time_to(r, m) if time_to(r, m) is not None else r["budget"])
            for m in GOALS
        ]
        cells += [paired_cell(first, second, lambda r, m=m: r["points"][-1][m]) for m in GOALS]
        print(f"| {name} - {names[0]} | " + " | ".join(cells) + " |")


def chart(by_name: dict[str, list[dict]], path: Path) -> None:
    """Face rate and SWD against training minutes, a line and a 95 % band per preset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    some = next(iter(by_name.values()))[0]
    for name, runs in by_name.items():
        n = min(len(r["points"]) for r in runs)
        minutes = np.array([p["t"] for p in runs[0]["points"][:n]]) / 60
        for ax, metric in zip(axes, GOALS):
            stats = [interval([r["points"][i][metric] for r in runs]) for i in range(n)]
            mean = np.array([s[0] for s in stats])
            half = np.array([s[1] for s in stats])
            (line,) = ax.plot(minutes, mean, marker="o", markersize=3, label=f"{name} ({len(runs)} seeds)")
            ax.fill_between(minutes, mean - half, mean + half, color=line.get_color(), alpha=0.2)
    axes[0].axhline(GOALS["face_rate"], color="gray", linestyle="--", linewidth=1, label="goal 0.80")
    axes[0].axhline(some["real_face_rate"], color="black", linestyle=":", linewidth=1, label="real faces")
    axes[1].axhline(GOALS["swd"], color="gray", linestyle="--", linewidth=1, label="goal 45")
    axes[0].set(title="face rate (higher is better)", xlabel="training minutes", ylim=(0, 1))
    axes[1].set(title="SWD x1e3 (lower is better)", xlabel="training minutes")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"time to quality, 32 px embedded LFW faces; {some['cpu']}; {some['date']}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    print(f"\nchart: {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="lfw32,fast32")
    p.add_argument("--seeds", default="0-7", help='"0-7" or "0,3,5"')
    p.add_argument("--budget", type=float, default=240.0, help="training seconds per run")
    p.add_argument("--every", type=float, default=20.0, help="training seconds between evaluations")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar='NAME="FLAGS"',
        help='also train each preset with these `facegan train` flags, e.g. --variant b16="--batch-size 16"',
    )
    p.add_argument("--results", default=str(ROOT / "runs" / "time_to_quality" / "results.jsonl"))
    p.add_argument("--chart", help="draw the curves into this PNG (e.g. docs/time-to-quality.png)")
    p.add_argument(
        "--keep-runs",
        action="store_true",
        help="keep each run folder (checkpoint at the budget) as runs/NAME-seedS beside --results, for "
        "bench/grids.py and `facegan export`",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)  # one run's spec as JSON: used by the bench itself
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_one(json.loads(args.child))), flush=True)
        return
    if args.every <= 0 or args.budget < args.every:
        p.error("--every must be > 0 and --budget at least --every")
    variants = parse_variants(p, args.variant)
    specs = [
        {"name": f"{preset}{variant}", "preset": preset, "flags": flags, "budget": args.budget, "every": args.every}
        for preset in args.presets.split(",")
        for variant, flags in variants
    ]
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    done = []
    if results.is_file():
        done = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    for seed in seeds_list(args.seeds):  # interleaved: every preset's seed 0, then seed 1, ...
        for spec in specs:
            spec = {**spec, "seed": seed, "keep": None}
            if args.keep_runs:
                keep = results.parent / "runs" / f"{spec['name']}-seed{seed}"
                shutil.rmtree(keep, ignore_errors=True)  # a run that failed before: start it afresh
                spec["keep"] = str(keep)
            key = (spec["name"], seed, spec["budget"], spec["every"])
            if any((r["name"], r["seed"], r["budget"], r["every"]) == key for r in done):
                continue
            log = results.with_name(f"{spec['name']}-seed{seed}.log")
            with open(log, "w") as out:
                child = [sys.executable, __file__, "--child", json.dumps(spec)]
                proc = subprocess.run(child, cwd=ROOT, stdout=subprocess.PIPE, stderr=out, text=True)
            if proc.returncode:
                sys.exit(f"{spec['name']} seed {seed} failed (exit {proc.returncode}); see {log}")
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            with open(results, "a") as f:
                f.write(json.dumps(run) + "\n")
            done.append(run)
            last = run["points"][-1]
            print(
                f"{run['name']} seed {seed}: at {last['t']:g} s face rate {last['face_rate']:.2f}, SWD "
                f"{last['swd']:.1f}; face rate >= 0.80 at {time_to(run, 'face_rate')} s",
                flush=True,
            )
    wanted = {(s["name"], s["budget"], s["every"]) for s in specs}
    seeds = set(seeds_list(args.seeds))
    by_name: dict[str, list[dict]] = {}
    for run in done:
        if (run["name"], run["budget"], run["every"]) in wanted and run["seed"] in seeds:
            by_name.setdefault(run["name"], []).append(run)
    by_name = {s["name"]: sorted(by_name[s["name"]], key=lambda r: r["seed"]) for s in specs if s["name"] in by_name}
    report(by_name)
    if args.chart:
        chart(by_name, Path(args.chart))


if __name__ == "__main__":
    main()
