"""Training on several hosts, on one machine: two worker processes with the TF_CONFIG that the
Training Operator would set (and two JAX processes with the variables an indexed Job gives)
train together and write one run folder; --auto-resume makes one command line serve the first
start and every restart."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, free_port, run_cli

from facegan.errors import ConfigError
from facegan.training.cluster import jax_task, tf_task


def test_tf_config_names_the_chief():
    workers = {"worker": ["a:1", "b:2"]}
    first = tf_task({"TF_CONFIG": json.dumps({"cluster": workers, "task": {"type": "worker", "index": 0}})})
    second = tf_task({"TF_CONFIG": json.dumps({"cluster": workers, "task": {"type": "worker", "index": 1}})})
    assert first.chief and not second.chief and first.workers == second.workers == 2
    with_chief = {"chief": ["c:0"], **workers}
    worker0 = tf_task({"TF_CONFIG": json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})})
    chief = tf_task({"TF_CONFIG": json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})})
    assert chief.chief and not worker0.chief and chief.workers == 3
    assert tf_task({}).chief and tf_task({}).workers == 1
    for bad in ("not json", json.dumps({"cluster": workers, "task": {"type": "worker", "index": 5}})):
        with pytest.raises(ConfigError):
            tf_task({"TF_CONFIG": bad})


def test_jax_process_from_an_indexed_job():
    env = {"FACEGAN_COORDINATOR_ADDRESS": "train-0.train:1234", "FACEGAN_NUM_PROCESSES": "4"}
    assert jax_task({}) is None
    task = jax_task({**env, "JOB_COMPLETION_INDEX": "2"})
    assert task.index == 2 and task.workers == 4 and not task.chief
    assert jax_task({**env, "JOB_COMPLETION_INDEX": "2", "FACEGAN_PROCESS_ID": "0"}).chief
    for bad in ({**env}, {**env, "JOB_COMPLETION_INDEX": "4"}, {**env, "FACEGAN_NUM_PROCESSES": "x"}):
        with pytest.raises(ConfigError):
            jax_task(bad)


def start_workers(run_dir, envs, *flags):
    """One `facegan train` process per environment; returns their (exit code, stdout, stderr)."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "facegan.cli",
                "train",
                "--epochs",
                "1",
                "--batch-size",
                "50",
                "--run-dir",
                str(run_dir),
                *flags,
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env in envs
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append((p.returncode, out, err))
    return results


def check_one_run_folder(run_dir, results):
    for code, out, err in results:
        assert code == 0, err[-2000:]
    epoch_lines = [next(ln for ln in out.splitlines() if ln.startswith("epoch 1/1")) for _, out, _ in results]
    losses = [ln.split("img/s")[0].rsplit("  ", 2)[0] for ln in epoch_lines]
    assert losses[0] == losses[1], epoch_lines  # one training, in step: the same losses on both
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1  # one writer
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["ckpt-0001.npz"]
    assert json.loads((run_dir / "metrics.jsonl").read_text())["images_seen"] == 100  # 2 steps of 50


@pytest.mark.slow
def test_two_tensorflow_workers_write_one_run(tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    envs = [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})} for i in (0, 1)]
    results = start_workers(tmp_path / "run", envs, "--strategy", "multiworker")
    check_one_run_folder(tmp_path / "run", results)
    assert "2 replica(s)" in results[0][1] and "the chief writes" in results[1][1]


@pytest.mark.slow
def test_two_jax_processes_write_one_run(tmp_path):
    common = {
        "KERAS_BACKEND": "jax",
        "FACEGAN_COORDINATOR_ADDRESS": f"127.0.0.1:{free_port()}",
        "FACEGAN_NUM_PROCESSES": "2",
    }
    envs = [{**common, "JOB_COMPLETION_INDEX": str(i)} for i in (0, 1)]
    results = start_workers(tmp_path / "run", envs, "--strategy", "data-parallel")
    check_one_run_folder(tmp_path / "run", results)


@pytest.mark.slow
def test_auto_resume_one_command_line_for_start_and_restart(tmp_path):
    run = tmp_path / "run"
    first = run_cli("train", "--epochs", "1", "--run-dir", run, "--auto-resume")
    assert first.returncode == 0, first.stderr
    again = run_cli("train", "--epochs", "2", "--run-dir", run, "--auto-resume")  # a restarted pod, a longer target
    assert again.returncode == 0 and "auto-resume: continuing" in again.stdout, again.stderr
    assert [json.loads(ln)["epoch"] for ln in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    other = run_cli("train", "--epochs", "2", "--batch-size", "8", "--run-dir", run, "--auto-resume")
    assert other.returncode == 2 and "another config" in other.stderr and len(other.stderr.strip().splitlines()) == 1
    alone = run_cli("train", "--auto-resume")
    assert alone.returncode == 2 and "run_dir" in alone.stderr
