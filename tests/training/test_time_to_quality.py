"""The options behind the fast32 preset (G's width, Adam's beta_1, checkpoints and previews every K
epochs, bfloat16 only where native) and bench/time_to_quality.py's clock and statistics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from facegan.config import PRESETS, ModelConfig
from facegan.training import backend as backend_module
from facegan.training.backend import Backend
from facegan.training.cpu import CpuInfo, cpu_info
from facegan.training.models import build_generator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


def conv_macs(model) -> int:
    """Multiply-adds of the generator's convolutions per image (3x3 kernels at their output size)."""
    total = 0
    for layer in model.layers:
        if hasattr(layer, "kernel") and len(layer.kernel.shape) == 4:
            side = layer.output.shape[1]
            total += side * side * int(np.prod(layer.kernel.shape))
    return total


def test_g_width_scales_every_generator_layer():
    base = build_generator(ModelConfig(resolution=32))
    half = build_generator(ModelConfig(resolution=32, g_width=0.5))
    filters = lambda model: [layer.filters for layer in model.layers if hasattr(layer, "filters")]
    assert filters(base) == [256, 256, 128, 3]
    assert filters(half) == [128, 128, 64, 3]  # to_rgb keeps the image's channels
    assert half.get_layer("project").units == 4 * 4 * 128
    assert half.output_shape == base.output_shape == (None, 32, 32, 3)
    assert 0.24 < conv_macs(half) / conv_macs(base) < 0.26  # half the filters in and out


CPUINFO_X86 = "processor\t: 0\nmodel name\t: AMD EPYC 9654\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n"
CPUINFO_OLD = "processor\t: 0\nmodel name\t: Intel Xeon E5-2690\nflags\t\t: fpu sse2 avx2 fma\n"
CPUINFO_ARM = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU part\t: 0xd4f\n"


def test_cpu_info_finds_native_bfloat16_where_the_cpu_has_it():
    x86 = cpu_info(CPUINFO_X86)
    assert x86.model == "AMD EPYC 9654" and x86.native_bfloat16 and x86.bf16 == ("avx512_bf16",)
    assert "native bfloat16 (avx512_bf16)" in x86.describe()
    old = cpu_info(CPUINFO_OLD)
    assert not old.native_bfloat16 and "bfloat16 emulated" in old.describe()
    assert cpu_info(CPUINFO_ARM).bf16 == ("bf16",)
    assert cpu_info().cores >= 1


@pytest.mark.parametrize(
    "mixed, native, policy",
    [(None, True, "mixed_bfloat16"), (None, False, None), (True, False, "mixed_bfloat16"), (False, True, None)],
)
def test_auto_mixed_precision_is_bfloat16_only_where_native(monkeypatch, mixed, native, policy):
    info = CpuInfo("test CPU", 2, ("avx512_bf16",) if native else ())
    monkeypatch.setattr(backend_module.cpu, "cpu_info", lambda: info)
    backend = Backend("tensorflow")
    monkeypatch.setattr(Backend, "tensorflow_gpu", lambda self: False)
    assert backend.mixed_policy(mixed) == policy


def test_fast32_keeps_the_method_and_lfw32_and_lecture_stay():
    fast, lfw, lecture = PRESETS["fast32"], PRESETS["lfw32"], PRESETS["lecture"]
    assert fast.validate() and fast.model.resolution == 32 and fast.train.ema_decay > 0
    assert fast.train.mixed_precision is None  # auto: bfloat16 only on a CPU that computes it natively
    # the comparison presets are what they were
    assert lecture.model == ModelConfig(resolution=32) and lecture.train.ema_decay == 0
    assert lfw.model == ModelConfig(resolution=32) and lfw.train.batch_size == 16 and lfw.train.ema_decay == 0.995


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--g-width", "0"], "g_width must be in (0, 4]"),
        (["--g-width", "0.001"], "leave G's last layer a filter"),
        (["--beta-1", "1"], "beta_1 must be in [0, 1)"),
        (["--checkpoint-every", "0"], "checkpoint_every must be >= 1"),
        (["--preview-every", "0"], "preview every must be >= 1"),
        (["--preview-every", "two"], "invalid int value"),
    ],
)
def test_bad_speed_flags_are_one_line_errors(flags, message):
    res = run_cli("train", *flags)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_checkpoints_and_previews_every_k_epochs_and_a_resume_redoes_the_lost_ones(tmp_path):
    run = tmp_path / "run"
    common = ["--batch-size", "32", "--no-tensorboard", "--g-width", "0.25", "--preset", "fast32"]
    every = ["--checkpoint-every", "2", "--preview-every", "3"]
    res = run_cli("train", "--epochs", "5", "--run-dir", run, *common, *every)
    assert res.returncode == 0, res.stderr[-2000:]
    # the last line: the face rate it reached beside the real faces' (what the quick start shows)
    assert re.fullmatch(
        r"quality after 5 epochs: face rate \d\.\d\d \(the real faces: 0\.\d\d\), SWD \d+\.\d .*",
        res.stdout.strip().splitlines()[-1],
    )
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.npz")) == [
        "ckpt-0002.npz",
        "ckpt-0004.npz",
        "ckpt-0005.npz",  # the last epoch always
    ]
    assert sorted(p.name for p in (run / "previews").glob("*.png")) == ["epoch-0003.png", "epoch-0005.png"]
    assert (run / "evolution.gif").is_file()
    # A run that died after epoch 5's metrics but before its checkpoint: resume redoes epoch 5 from 4.
    (run / "checkpoints" / "ckpt-0005.npz").unlink()
    res = run_cli("train", "--resume", run)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resuming" in res.stdout and "epoch 5" in res.stdout
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5]


def make_run(seed: int, face_rates: list[float], swds: list[float], budget: float = 60.0) -> dict:
    points = [
        {"t": 20.0 * (i + 1), "images_seen": 100 * (i + 1), "face_rate": f, "swd": s}
        for i, (f, s) in enumerate(zip(face_rates, swds))
    ]
    return {"name": "x", "seed": seed, "budget": budget, "points": points}


def test_time_to_goal_counts_a_seed_that_never_gets_there_as_the_budget():
    import time_to_quality as ttq

    fast = [make_run(0, [0.5, 0.81, 0.9], [60, 44, 40]), make_run(1, [0.85, 0.9, 0.9], [50, 46, 44])]
    slow = [make_run(0, [0.1, 0.3, 0.6], [90, 80, 70]), make_run(1, [0.2, 0.79, 0.7], [80, 70, 60])]
    assert ttq.time_to(fast[0], "face_rate") == 40.0 and ttq.time_to(fast[1], "swd") == 60.0
    assert ttq.time_to(slow[1], "face_rate") is None  # 0.79 is not 0.80
    assert ttq.goal_cell(fast, "face_rate").endswith("2/2 reached") and not ttq.goal_cell(fast, "face_rate").startswith(
        ">="
    )
    assert ttq.goal_cell(slow, "face_rate") == ">= 60 [60, 60] s, 0/2 reached"
    cell = ttq.paired_cell(slow, fast, lambda r: r["points"][-1]["face_rate"])
    assert cell.startswith("+0.25 [") and "(2 seeds)" in cell  # the mean of 0.9 - 0.6 and 0.9 - 0.7
    assert ttq.seeds_list("0-3") == [0, 1, 2, 3] and ttq.seeds_list("1,5") == [1, 5]


@pytest.mark.slow
def test_time_to_quality_bench_clocks_training_and_evaluates_off_the_clock(tmp_path):
    results = tmp_path / "results.jsonl"
    cmd = [
        sys.executable, str(ROOT / "bench" / "time_to_quality.py"), "--presets", "fast32", "--seeds", "0",
        "--budget", "6", "--every", "3", "--variant", "narrow=--g-width 0.25", "--variant", "one=--epochs 1",
        "--results", str(results),
        "--chart", str(tmp_path / "chart.png"), "--keep-runs",
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    runs = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["name"] for r in runs] == ["fast32", "fast32+narrow", "fast32+one"]
    for run in runs:
        assert [p["t"] for p in run["points"]] == [3.0, 6.0]
        for point in run["points"]:
            assert point["training_seconds"] >= point["t"] and 0.0 <= point["face_rate"] <= 1.0 and point["swd"] > 0
        # (no count of steps between the points: a slow machine may still be compiling the first)
        assert run["points"][1]["images_seen"] >= run["points"][0]["images_seen"] > 0
        assert run["eval_seconds"] > 0 and run["real_face_rate"] > 0.5
    # --epochs in the flags ends the run there (3 steps of 32) even when the clock has time left: its
    # last faces stand for every later point, so the curve still has a point at each `every`.
    assert all(p["images_seen"] <= 96 for p in runs[2]["points"]) and runs[2]["config"]["train"]["epochs"] == 1
    assert "| fast32+narrow - fast32 |" in res.stdout and "CPU:" in res.stdout
    assert (tmp_path / "chart.png").stat().st_size > 10_000
    for name in ("fast32-seed0", "fast32+narrow-seed0"):  # the runs, stopped by the clock, with a checkpoint
        assert list((tmp_path / "runs" / name / "checkpoints").glob("ckpt-*.npz"))
    # a second call measures nothing again: it reads the results and prints
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.returncode == 0 and len(results.read_text().splitlines()) == 3
