"""How much fine detail the faces have: the radially averaged log power spectrum, compared with the
real faces' over the mid-to-high frequencies, where blur (too little power) and speckle (too much)
show.

Each image is turned to gray (ITU-R 601 weights), its mean removed, and Fourier-transformed; the
power, averaged over the images, is averaged again over rings of equal radius (0 .. Nyquist, in
whole frequency steps) and taken as log10. Two sets are compared by the difference of their curves
over BAND: the mean absolute log10 ratio is the distance (0: the same spectrum; 0.3: about half or
twice the power).
"""

from __future__ import annotations

import numpy as np

BAND = (0.5, 0.85)  # mid-to-high frequencies, as a fraction of Nyquist: radii 8..13 of 16 at 32 px
GRAY = np.array([0.299, 0.587, 0.114])


def radial_log_power(images: np.ndarray) -> np.ndarray:
    """log10 of the mean power at each integer radius 0 .. min(H, W) // 2 of NHWC (or NHW) images."""
    x = np.asarray(images, np.float64)
    gray = x @ GRAY if x.ndim == 4 else x
    gray = gray - gray.mean(axis=(1, 2), keepdims=True)
    power = np.fft.fftshift(np.abs(np.fft.fft2(gray)) ** 2, axes=(1, 2)).mean(axis=0)
    h, w = power.shape
    yy, xx = np.indices((h, w))
    radius = np.rint(np.hypot(yy - h // 2, xx - w // 2)).astype(np.int64).ravel()
    nyquist = min(h, w) // 2
    sums = np.bincount(radius, power.ravel())[: nyquist + 1]
    counts = np.bincount(radius)[: nyquist + 1]
    return np.log10(sums / counts + 1e-12)


def band_radii(resolution: int, band: tuple[float, float] = BAND) -> list[int]:
    nyquist = resolution // 2
    return [r for r in range(1, nyquist + 1) if band[0] <= r / nyquist <= band[1]]


def spectral_gap(images: np.ndarray, reference: np.ndarray, band: tuple[float, float] = BAND) -> dict:
    """How `images`' spectrum differs from `reference`'s over `band`: the distance (mean absolute
    log10 ratio) and the signed log10 ratio at each radius (negative: less power than the reference)."""
    radii = band_radii(min(np.shape(images)[1:3]), band)
    ratio = radial_log_power(images)[radii] - radial_log_power(reference)[radii]
    return {
        "distance": float(np.mean(np.abs(ratio))),
        "log10_ratio": {str(r): round(float(v), 4) for r, v in zip(radii, ratio)},
    }
