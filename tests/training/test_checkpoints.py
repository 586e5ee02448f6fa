"""facegan.training.checkpoints: a corrupt newest checkpoint is named and the one before is used."""

import shutil

import numpy as np
import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    newest = run / "checkpoints" / "ckpt-0002.npz"
    newest.write_bytes(newest.read_bytes()[:1000])  # cut short, as by a full disk

    res = run_cli("sample", "--run", run, "--seeds", "0-1", "--out", tmp_path / "faces")
    assert res.returncode == 0, res.stderr
    assert "ckpt-0002.npz is corrupt" in res.stderr and "from ckpt-0001.npz" in res.stdout
    res = run_cli("export", "--run", run, "--base-path", tmp_path / "models", "--checkpoint", "1")
    assert res.returncode == 0 and "corrupt" not in res.stderr, res.stderr
    res = run_cli("train", "--resume", run, "--checkpoint", "7")
    assert res.returncode == 2 and "no checkpoint for epoch 7" in res.stderr and "there are: 1, 2" in res.stderr

    res = run_cli("train", "--resume", run, "--epochs", "2")
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("ckpt-0002.npz is corrupt") == 1 and "resuming" in res.stdout
    assert "at epoch 2" in res.stdout  # it redid epoch 2 from epoch 1's state
    assert len(np.load(newest)) > 0  # and wrote an intact epoch-2 checkpoint over the corrupt one
