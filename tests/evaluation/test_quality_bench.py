"""bench/quality.py's statistics and its detail-against-coherence chart, on rows made by hand."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


def row(name: str, seed: int, swd: float, strict: float, spectrum: float) -> tuple:
    realism = {
        "spectrum": {"ratio": spectrum},
        "swd_x1e3": {"ratio": swd / 30},
        "strict_face_rate": {"generated": strict, "real": 0.83, "real_interval": [0.74, 0.89]},
    }
    return (name, seed, 1000, 60.0, {"swd": swd}, {"generated": 0.8, "real": 0.88}, {"generated": 0.02}, realism)


ROWS = [
    row("base", 0, 44.0, 0.66, 2.7),
    row("base", 1, 49.0, 0.70, 2.5),
    row("base", 2, 46.0, 0.68, 2.6),
    row("lever", 0, 45.0, 0.61, 1.8),
    row("lever", 1, 48.0, 0.59, 2.0),
    row("lever", 2, 47.0, 0.60, 1.9),
]


def test_paired_differences_are_per_seed_and_starred_only_when_the_interval_excludes_zero():
    import quality

    base, lever = ROWS[:3], ROWS[3:]
    strict = quality.paired(base, lever, "strict")  # -0.05, -0.11, -0.08: all below zero
    assert strict.startswith("-0.080 [") and strict.endswith("*")
    swd = quality.paired(base, lever, "swd")  # +1, -1, +1: the interval spans zero
    assert swd.startswith("+0.33 [") and not swd.endswith("*")
    assert quality.paired(base[:1], lever[:1], "swd") == "needs 2+ seeds"


def test_the_scatter_draws_every_generator(tmp_path):
    import quality

    out = tmp_path / "scatter.png"
    quality.scatter(ROWS, out)
    assert out.stat().st_size > 10_000 and not list(tmp_path.glob(".*.tmp.png"))


def test_a_report_is_reused_only_for_the_same_arguments_and_training(tmp_path):
    """evaluated(): the second call with the same arguments reads the report; other arguments, or a
    run trained again after the report, evaluate again."""
    import argparse
    import os

    import quality

    calls = []

    def evaluate(run, num_images, seed, out_dir, ema):
        calls.append((num_images, seed, ema))
        out_dir.mkdir(exist_ok=True)
        (out_dir / "report.json").write_text(f'{{"n": {len(calls)}}}')
        return {"n": len(calls)}

    run = tmp_path / "run"
    run.mkdir()
    (run / "eval-done").write_text("{}")
    args = argparse.Namespace(num_images=64, eval_seed=7)
    assert quality.evaluated(evaluate, run, run / "eval", True, args) == {"n": 1}
    assert quality.evaluated(evaluate, run, run / "eval", True, args) == {"n": 1}  # reused
    assert quality.evaluated(evaluate, run, run / "eval", False, args) == {"n": 2}  # raw G: made again
    other = argparse.Namespace(num_images=128, eval_seed=7)
    assert quality.evaluated(evaluate, run, run / "eval", False, other) == {"n": 3}
    later = (run / "eval" / "report.json").stat().st_mtime + 10
    os.utime(run / "eval-done", (later, later))  # trained again after the report
    assert quality.evaluated(evaluate, run, run / "eval", False, other) == {"n": 4}
    assert calls == [(64, 7, True), (64, 7, False), (128, 7, False), (128, 7, False)]
