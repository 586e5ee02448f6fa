"""The JAX-side tests. tests/training/test_jax.py runs this folder with pytest in a fresh interpreter with
KERAS_BACKEND=jax (Keras picks its backend at import) and TensorFlow blocked, as on a JAX-only
GPU machine. What the TensorFlow side computed for comparison (both networks' weights, a batch, z,
its losses and R1 figures) arrives in the .npz that FACEGAN_JAX_REFERENCE names; a training run
is left in FACEGAN_JAX_OUT for the TensorFlow side to export."""

import os
import sys
from pathlib import Path

sys.modules["tensorflow"] = None  # importing TensorFlow fails from here on

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # jax_helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/configs.py

assert keras.backend.backend() == "jax", "run through tests/training/test_jax.py (KERAS_BACKEND=jax)"


@pytest.fixture(scope="session")
def reference():
    return np.load(os.environ["FACEGAN_JAX_REFERENCE"])


@pytest.fixture(scope="session")
def out_dir() -> Path:
    return Path(os.environ["FACEGAN_JAX_OUT"])


@pytest.fixture
def networks(reference):
    """The 32 px networks (dropout off) with the TensorFlow side's weights."""
    from facegan.config import ModelConfig
    from facegan.training.models import build_discriminator, build_generator

    cfg = ModelConfig(resolution=32, dropout=0.0)
    g = build_generator(cfg)
    d = build_discriminator(cfg)
    g.set_weights([reference[f"g{i}"] for i in range(len(g.weights))])
    d.set_weights([reference[f"d{i}"] for i in range(len(d.weights))])
    return g, d
