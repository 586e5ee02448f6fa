"""The embedded default data set (real LFW faces that ship inside scikit-image) and the choice
between it and a prepared cache."""

from __future__ import annotations

import numpy as np

from facegan.data.cache import content_hash, load_dataset, make_manifest
from facegan.errors import DataError

EMBEDDED = "embedded:lfw"  # the data name recorded for the default data set
LFW_FACES = 100  # lfw_subset(): 200 images of 25x25 gray, the first 100 are faces


def embedded_faces(res: int) -> tuple[np.ndarray, dict]:
    """The 100 real LFW faces that ship inside scikit-image, upsampled to res and made RGB."""
    from PIL import Image
    from skimage.data import lfw_subset

    gray = np.round(lfw_subset()[:LFW_FACES] * 255).astype(np.uint8)
    images = np.stack([np.asarray(Image.fromarray(g).resize((res, res), Image.Resampling.LANCZOS)) for g in gray])
    images = np.repeat(images[..., None], 3, axis=-1)
    return images, make_manifest(
        "skimage.data.lfw_subset()[:100] (25x25 gray LFW faces)", len(images), res, content_hash(images)
    )


def load_training_data(path: str | None, res: int) -> tuple[np.ndarray, dict]:
    """The run's images: a prepared cache at `path`, or the embedded faces when path is None."""
    if path is None:
        return embedded_faces(res)
    images, manifest = load_dataset(path)
    if images.shape[1] != res:
        raise DataError(
            f"data file {path} is {images.shape[1]} px but the config asks for {res} px "
            f"(pass --res {images.shape[1]} or prepare the data at {res} px)"
        )
    return images, manifest
