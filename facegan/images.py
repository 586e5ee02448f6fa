"""uint8 image batches -> preview grids, PNG files and animated GIFs (NumPy and Pillow only)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.fileio import atomic_path


def grid(images: np.ndarray, rows: int, cols: int, margin: int = 16) -> np.ndarray:
    """Tile N uint8 HWC images into a rows x cols grid with black margins (as in the lecture)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 NHWC images, got {images.dtype} {images.shape}")
    n, h, w, c = images.shape
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows}x{cols} grid")
    out = np.zeros((margin + rows * (h + margin), margin + cols * (w + margin), c), np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        y, x = margin + r * (h + margin), margin + k * (w + margin)
        out[y : y + h, x : x + w] = img
    return out


def auto_grid(images: np.ndarray, margin: int = 4) -> np.ndarray:
    """A near-square grid for any number of images."""
    n = len(images)
    cols = int(np.ceil(np.sqrt(n)))
    return grid(images, int(np.ceil(n / cols)), cols, margin)


def enlarge(images: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of NHWC images: every pixel becomes a factor x factor block."""
    return np.repeat(np.repeat(np.asarray(images), factor, axis=1), factor, axis=2)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, np.uint8)).save(tmp, format="PNG")


def save_gif(path: str | os.PathLike, frames: Sequence[np.ndarray], ms_per_frame: int = 200) -> None:
    """An endlessly looping GIF; the last frame is held three times as long."""
    if not frames:
        raise ValueError("no frames for the GIF")
    pil = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    durations = [ms_per_frame] * (len(pil) - 1) + [ms_per_frame * 3]
    with atomic_path(path) as tmp:
        pil[0].save(tmp, format="GIF", save_all=True, append_images=pil[1:], duration=durations, loop=0)


def load_png(path: str | os.PathLike) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def save_batch(out_dir: str | os.PathLike, seeds: Sequence[int], images: np.ndarray) -> list[Path]:
    """Write `seed0042.png`-style files (StyleGAN's naming) and return their paths."""
    out_dir = Path(out_dir)
    paths = []
    for seed, img in zip(seeds, images):
        p = out_dir / f"seed{seed:04d}.png"
        save_png(p, img)
        paths.append(p)
    return paths
