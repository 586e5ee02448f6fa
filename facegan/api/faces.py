"""What a notebook shows besides runs and servers: the real faces, the two networks, grids of
faces as images, and the walks through z (slerp) that the demo makes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegan import extras, images
from facegan.api.train_options import config_for
from facegan.client.latent import slerp

__all__ = ["Networks", "grid", "networks", "real_faces", "slerp"]


@extras.explained
def real_faces(data: str | None = None, resolution: int = 32) -> np.ndarray:
    """The training images, uint8 [N, res, res, 3]: a prepared .npz (`facegan prepare`), or the 100
    real LFW faces inside scikit-image (the default data) at `resolution`."""
    from facegan.data.embedded import load_training_data

    faces, _ = load_training_data(data, resolution)
    return faces


def grid(faces, scale: int = 1, cols: int | None = None, margin: int = 4):
    """uint8 faces [N, H, W, 3] as one PIL image: `cols` per row (default a near-square grid),
    each pixel `scale` x `scale`."""
    from PIL import Image

    faces = np.asarray(faces, np.uint8)
    if faces.ndim != 4 or len(faces) == 0:
        raise ValueError(f"faces must be [N, H, W, C] with N >= 1, got shape {list(faces.shape)}")
    big = images.enlarge(faces, scale)
    if cols is None:
        return Image.fromarray(images.auto_grid(big, margin * scale))
    rows = -(-len(faces) // cols)
    return Image.fromarray(images.grid(big, rows, cols, margin * scale))


@dataclass(frozen=True)
class Networks:
    generator: object  # keras.Model: z [N, latent_dim] -> image [N, res, res, 3] in [-1, 1]
    discriminator: object  # keras.Model: image -> one logit (real > 0)


@extras.explained
def networks(preset: str | None = None, **options) -> Networks:
    """The generator and discriminator a run with `preset` and `options` would train, freshly
    initialized (for their summaries: `networks().generator.summary()`)."""
    from facegan.training.models import build_discriminator, build_generator

    cfg = config_for(preset, options)
    return Networks(build_generator(cfg.model), build_discriminator(cfg.model))
