"""Training on JAX without TensorFlow: a run folder, a resume, and data parallelism on two CPU
devices (the interpreter is started with XLA_FLAGS=--xla_force_host_platform_device_count=2)."""

import numpy as np
from configs import tiny_config

from facegan.layout import RunDir
from facegan.training.run import train


def metrics(run: RunDir) -> list[dict]:
    return run.metrics_rows()


def test_a_run_trains_resumes_and_writes_the_same_files(out_dir, capsys):
    run = RunDir(out_dir / "run")
    train(tiny_config(2), run_dir=run.path, verbose=0)
    assert "jax" in capsys.readouterr().out
    train(resume=run.path, epochs=3, verbose=0)
    records = metrics(run)
    assert [m["epoch"] for m in records] == [1, 2, 3]
    assert all(np.isfinite(m["g_loss"]) and np.isfinite(m["d_loss"]) for m in records)
    assert records[-1]["swd"] > 0 and len(run.preview_frames()) == 3
    assert records[-1]["face_rate_real"] >= 0.8 and 0 <= records[-1]["face_rate"] <= 1  # OpenCV, no TensorFlow
    assert run.evolution.is_file()


def test_data_parallel_on_two_cpu_devices(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    train(tiny_config(1, strategy="data-parallel"), run_dir=run.path, verbose=0)
    assert "2 replica(s)" in capsys.readouterr().out
    record = metrics(run)[0]
    assert np.isfinite(record["g_loss"]) and np.isfinite(record["d_loss"])
