"""ProGAN's sliced Wasserstein distance (Karras et al. 2018, appendix D): no pretrained network.

Each image becomes a Laplacian pyramid (5x5 binomial kernel) from full resolution down to
16 px. From every level, 128 random 7x7 patches per image are descriptors; each colour channel
is normalised by the mean and std over all of one side's descriptors. Four times, 128 random
unit directions project both sides' descriptors; the sorted projections are compared by mean
absolute difference. Reported x1e3 per level (finest first) and averaged.

The patch positions and directions come from `seed` alone and are shared by both sides, so
swd(a, b) == swd(b, a) exactly, and a seed makes the figure reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

KERNEL_1D = np.array([1, 4, 6, 4, 1], np.float32) / 16  # outer product: the 5x5 binomial [1,4,6,4,1]^2/256
PATCH = 7
PATCHES_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16


def _blur(x: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Separable 5x5 binomial filter over H and W of NHWC, mirrored edges (cv2's BORDER_REFLECT_101).

    NumPy only (no SciPy), so evaluation also runs on a machine with just JAX and Keras.
    """
    k = KERNEL_1D * np.float32(np.sqrt(gain))
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (2, 2)
        p = np.pad(x, pad, mode="reflect")
        n = x.shape[axis]
        x = sum(k[i] * np.take(p, np.arange(i, i + n), axis=axis) for i in range(5))
    return x


def pyr_down(x: np.ndarray) -> np.ndarray:
    return _blur(x)[:, ::2, ::2]


def pyr_up(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    up = np.zeros((n, 2 * h, 2 * w, c), x.dtype)
    up[:, ::2, ::2] = x
    return _blur(up, gain=4.0)  # 4x: three of every four samples are zeros


def laplacian_pyramid(images: np.ndarray, levels: int) -> list[np.ndarray]:
    """Band-pass levels, finest first; the last is the low-pass remainder."""
    pyramid = [np.asarray(images, np.float32)]
    for _ in range(levels - 1):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def num_levels(resolution: int) -> int:
    """Levels from `resolution` down to 16 px: 64 -> 3 (64, 32, 16), 32 -> 2."""
    if resolution < MIN_RESOLUTION or resolution & (resolution - 1):
        raise ValueError(f"SWD needs a power-of-two resolution >= {MIN_RESOLUTION}, got {resolution}")
    return int(np.log2(resolution // MIN_RESOLUTION)) + 1


def descriptors(level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PATCHES_PER_IMAGE random 7x7xC patches per image, channel-normalised, flattened."""
    n, h, w, _ = level.shape
    half = PATCH // 2
    count = n * PATCHES_PER_IMAGE
    img = np.repeat(np.arange(n), PATCHES_PER_IMAGE)
    ys = rng.integers(half, h - half, count)
    xs = rng.integers(half, w - half, count)
    offsets = np.arange(-half, half + 1)
    patches = level[img[:, None, None], (ys[:, None] + offsets)[:, :, None], (xs[:, None] + offsets)[:, None, :]]
    patches -= patches.mean(axis=(0, 1, 2), keepdims=True)
    patches /= patches.std(axis=(0, 1, 2), keepdims=True) + 1e-8
    return patches.reshape(count, -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> float:
    results = []
    for _ in range(DIR_REPEATS):
        dirs = rng.standard_normal((a.shape[1], DIRS_PER_REPEAT)).astype(np.float32)
        dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
        proj_a = np.sort((a @ dirs).T, axis=1)  # rows: one direction, sorted along the samples
        proj_b = np.sort((b @ dirs).T, axis=1)
        results.append(float(np.mean(np.abs(proj_a - proj_b))))
    return float(np.mean(results))


def swd(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> list[float]:
    """SWD x1e3 per pyramid level (finest first) between two uint8 NHWC sets of equal size."""
    if real.shape != fake.shape:
        raise ValueError(f"SWD compares equal-sized sets of equal images, got {real.shape} and {fake.shape}")
    levels = num_levels(real.shape[1])
    out = []
    for i, (ra, fa) in enumerate(zip(laplacian_pyramid(real, levels), laplacian_pyramid(fake, levels))):
        da = descriptors(ra, np.random.default_rng([seed, i, 0]))
        db = descriptors(fa, np.random.default_rng([seed, i, 0]))  # the same patch positions
        out.append(sliced_wasserstein(da, db, np.random.default_rng([seed, i, 1])) * 1e3)
    return out


# ---- whole image sets: what training logs and `facegan evaluate` reports ----------------------
Sampler = Callable[[np.ndarray], np.ndarray]  # z float32 [N, latent_dim] -> uint8 faces [N, H, W, 3]
BATCH = 256


def fake_images(sample: Sampler, z: np.ndarray) -> np.ndarray:
    return np.concatenate([sample(z[i : i + BATCH]) for i in range(0, len(z), BATCH)])


def draw(real: np.ndarray, latent_dim: int, num_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """min(num_images, len(real)) real images and as many z, both fixed by the seed."""
    rng = np.random.default_rng([seed, 7])
    n = min(num_images, len(real))
    return real[np.sort(rng.permutation(len(real))[:n])], rng.standard_normal((n, latent_dim)).astype(np.float32)


def swd_dict(levels: list[float], resolution: int) -> dict[str, float]:
    return {"swd": float(np.mean(levels)), **{f"swd_{resolution >> i}": float(v) for i, v in enumerate(levels)}}
