"""Walks through the latent space on the client side: the demo's Interpolate and `facegan.slerp`."""

from __future__ import annotations

import numpy as np


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation, which keeps Gaussian z at a typical norm (a straight line dips)."""
    t = np.asarray(t, np.float64)[:, None]
    a, b = z0.astype(np.float64), z1.astype(np.float64)
    cos = np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:  # (anti)parallel: any path is as good; use the straight one
        out = (1 - t) * a + t * b
    else:
        out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    out[t[:, 0] == 0] = a  # the ends are exactly the two seeds' z
    out[t[:, 0] == 1] = b
    return out.astype(np.float32)
