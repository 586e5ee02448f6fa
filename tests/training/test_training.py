"""End-to-end training runs on the embedded faces: run folder, determinism, resume, guard rails."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run_cli, tiny_config
from PIL import Image

from facegan.layout import RunDir
from facegan.training import checkpoints
from facegan.training.run import train

pytestmark = pytest.mark.slow


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_folder_contents(trained_run):
    assert RunDir(trained_run).load_config() == tiny_config(2)
    records = _metrics(trained_run)
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        for key in ("g_loss", "d_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake", "images_per_sec"):
            assert np.isfinite(r[key]), key
        assert 0 <= r["d_real"] <= 1 and 0 <= r["d_fake"] <= 1
    previews = sorted(p.name for p in (trained_run / "previews").iterdir())
    assert previews == ["epoch-0001.png", "epoch-0002.png"]
    with Image.open(trained_run / "previews" / "epoch-0002.png") as im:
        assert im.size == (2 + 3 * 34, 2 + 2 * 34)  # 2x3 faces of 32 px, margin 2
    with Image.open(trained_run / "evolution.gif") as im:
        assert im.n_frames == 2
    assert [p.name for p in checkpoints.list_checkpoints(trained_run / "checkpoints")] == [
        "ckpt-0001.npz",
        "ckpt-0002.npz",
    ]
    assert np.load(trained_run / "preview_z.npy").shape == (6, 100)


def test_same_seed_same_first_epoch_losses(trained_run, tmp_path):
    again = train(tiny_config(1), run_dir=tmp_path / "again", verbose=0)
    a, b = _metrics(trained_run)[0], _metrics(again)[0]
    for key in ("g_loss", "d_loss", "d_real", "d_fake"):
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
    other = train(tiny_config(1, seed=7), run_dir=tmp_path / "other", verbose=0)
    assert _metrics(other)[0]["g_loss"] != pytest.approx(a["g_loss"], rel=1e-4)


def _start(run_dir, epochs, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "facegan.cli",
            "train",
            "--run-dir",
            str(run_dir),
            "--epochs",
            str(epochs),
            "--batch-size",
            "16",
            "--checkpoint-every",  # the default preset checkpoints every 10 epochs; these tests kill after the 1st
            "1",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(path, proc, timeout=180):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_sigkill_then_resume(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, 30)
    _wait_for(run_dir / "checkpoints" / "ckpt-0001.npz", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = checkpoints.latest(run_dir / "checkpoints")
    done = int(saved.stem.split("-")[1])
    z_before = np.load(run_dir / "preview_z.npy")

    res = run_cli("train", "--resume", run_dir, "--epochs", done + 2)
    assert res.returncode == 0, res.stderr
    assert f"resuming {run_dir} at epoch {done + 1}" in res.stdout
    assert [r["epoch"] for r in _metrics(run_dir)] == list(range(1, done + 3))
    np.testing.assert_array_equal(np.load(run_dir / "preview_z.npy"), z_before)
    assert checkpoints.latest(run_dir / "checkpoints").name == f"ckpt-{done + 2:04d}.npz"
    meta = checkpoints.read(checkpoints.latest(run_dir / "checkpoints"))[1]
    np.testing.assert_allclose(np.array(meta["preview_z"], np.float32), z_before)


def test_ctrl_c_saves_and_stops_cleanly(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, 500)
    _wait_for(run_dir / "checkpoints" / "ckpt-0001.npz", proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "stopping after this step" in out
    latest = checkpoints.latest(run_dir / "checkpoints")
    meta = checkpoints.read(latest)[1]
    assert meta["epoch"] < 500
    assert "Traceback" not in out


def test_non_finite_loss_stops_without_checkpoint(tmp_path):
    res = run_cli(
        "train", "--run-dir", tmp_path / "run", "--epochs", 3, "--batch-size", 16, "--g-lr", 1e30, "--d-lr", 1e30
    )
    assert res.returncode == 1, res.stdout + res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "became" in last and "epoch" in last and "step" in last
    assert "Traceback" not in res.stderr
    assert checkpoints.latest(tmp_path / "run" / "checkpoints") is None


@pytest.mark.parametrize("remedies", [{}, {"ada_target": 0.6, "ada_images": 100, "r1_gamma": 0.01, "r1_every": 2}])
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, remedies):
    """Plain, and with ADA (p is a variable every replica updates) and lazy R1 (a tape inside the
    tapes, inside a tf.cond on the step's number)."""
    script = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import sys; sys.path.insert(0, {str(ROOT / "tests")!r})
from conftest import tiny_config
from facegan.training.run import train
train(tiny_config(1, strategy="mirrored", xla=False, **{remedies!r}), run_dir={str(tmp_path / "run")!r}, verbose=0)
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 replica(s)" in res.stdout
    record = _metrics(tmp_path / "run")[0]
    assert np.isfinite(record["g_loss"]) and np.isfinite(record["d_loss"])
    if remedies:
        assert 0.0 <= record["ada_p"] <= 1.0 and np.isfinite(record["r1_penalty"]) and record["r1_penalty"] > 0
    assert checkpoints.latest(tmp_path / "run" / "checkpoints") is not None
