"""The JAX backend: the same models and run folders, a stateless jitted step, no TensorFlow needed.

Keras picks its backend at import, so the JAX-side tests (tests/training/jax/) run in a fresh interpreter
with KERAS_BACKEND=jax and TensorFlow blocked; this file computes what they compare against on
TensorFlow (losses and R1 on the same weights, batch and z), runs them, and exports the run they
trained with TensorFlow.
"""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_cli, save_networks

from facegan.config import ModelConfig
from facegan.training.gan import FaceGAN
from facegan.training.models import build_discriminator, build_generator

pytestmark = pytest.mark.slow


def tensorflow_reference(path) -> None:
    """Both networks' weights (dropout off: the backends draw different masks), a batch, z, and
    what the TensorFlow step computes from them: the losses (label smoothing 0.1) and R1 (gamma 10)."""
    cfg = ModelConfig(resolution=32, dropout=0.0)
    keras.utils.set_random_seed(4)
    g = build_generator(cfg)
    d = build_discriminator(cfg)
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    z = rng.standard_normal((8, 100)).astype(np.float32)
    losses = FaceGAN(g, d, label_smoothing=0.1).compute_losses(real, z)
    with_r1 = FaceGAN(g, d, seed=3, r1_gamma=10.0)
    with_r1.compile(keras.optimizers.Adam(1e-4, beta_1=0.5), keras.optimizers.Adam(1e-4, beta_1=0.5))
    with_r1.build_optimizers()
    _, _, r1 = with_r1.compute_gradients(tf.constant(real), tf.constant(z))
    save_networks(
        path,
        g,
        d,
        real=real,
        z=z,
        tf_g_loss=float(losses["g_loss"]),
        tf_d_loss=float(losses["d_loss"]),
        tf_r1_penalty=float(r1["r1_penalty"]),
        tf_r1_d_loss=float(r1["d_loss"]),
    )


def test_the_jax_side_passes_and_its_run_exports_with_tensorflow(tmp_path):
    tensorflow_reference(tmp_path / "reference.npz")
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "FACEGAN_JAX_REFERENCE": str(tmp_path / "reference.npz"),
        "FACEGAN_JAX_OUT": str(tmp_path),
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",  # for the data-parallel test
    }
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/training/jax",
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "t"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    passed = re.search(r"(\d+) passed", res.stdout)
    assert passed and int(passed[1]) >= 7 and "failed" not in res.stdout, res.stdout[-2000:]
    # a JAX checkpoint, exported by TensorFlow
    r = run_cli("export", "--run", tmp_path / "run", "--base-path", tmp_path / "models")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "models" / "facegan" / "1" / "saved_model.pb").is_file()
