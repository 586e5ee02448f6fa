"""What the JAX-side tests share (a plain module: `conftest` is ambiguous between tests/ and tests/training/jax/)."""

import keras
import numpy as np


def compiled(gan):
    gan.compile(keras.optimizers.Adam(1e-4, beta_1=0.5), keras.optimizers.Adam(1e-4, beta_1=0.5))
    gan.build_optimizers()
    return gan


def flat(arrays) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(a)) for a in arrays])
