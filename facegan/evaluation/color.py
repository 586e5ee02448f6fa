"""How much colour images have: the mean of |R - G| + |G - B| per pixel, on a 0..1 scale.

The embedded LFW faces are gray (the three channels are equal, so 0.0); a generator trained on
them that paints coloured speckles scores above 0. NumPy only.
"""

from __future__ import annotations

import numpy as np


def color_spread(images: np.ndarray) -> float:
    """images: uint8 [N, H, W, 3] -> mean |R - G| + |G - B| in [0, 2] (0: gray)."""
    x = images.astype(np.float32) / 255.0
    return float(np.mean(np.abs(x[..., 0] - x[..., 1]) + np.abs(x[..., 1] - x[..., 2])))
