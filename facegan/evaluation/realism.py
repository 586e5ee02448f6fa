"""How far from real the faces are, each measure beside its floor: what real faces score against
other real faces on the same protocol. The real images drawn for an evaluation are split in two
halves (a seeded split); the floor compares one half with the other, and the generated side is
compared with the first half using as many images as a half holds, so both figures have the same
sample size. A ratio of 1 means "as close to the real faces as real faces are to each other".

- SWD (swd.py), the whole average over the pyramid;
- the spectral gap (spectrum.py): blur and speckle, which SWD and the face rate barely see;
- a strict face rate: the face detector at STRICT_MIN_NEIGHBORS, where the default threshold no
  longer separates generated from real faces; its floor is the real faces' rate with a 95 %
  Wilson interval.
"""

from __future__ import annotations

import numpy as np

from facegan.evaluation.spectrum import band_radii, spectral_gap
from facegan.evaluation.swd import swd

STRICT_MIN_NEIGHBORS = 10  # overlapping detections a face needs for the strict rate (default: 3)
Z_95 = 1.959964  # the normal quantile of a two-sided 95 % interval


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (sound at 0 and n, unlike p ± z·se)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    scale = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / scale
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / scale
    return (float(max(0.0, center - half)), float(min(1.0, center + half)))


def halves(real: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The real images in two halves of equal size, by a permutation the seed fixes."""
    order = np.random.default_rng([seed, 11]).permutation(len(real))
    half = len(real) // 2
    if half < 2:
        raise ValueError(f"the floor needs at least 4 real images, got {len(real)}")
    return real[np.sort(order[:half])], real[np.sort(order[half : 2 * half])]


def ratio(value: float, floor: float) -> float:
    return float(value / floor) if floor > 0 else float("inf")


def realism(real: np.ndarray, fakes: np.ndarray, seed: int, strict_detector=None) -> dict:
    """Each measure of uint8 NHWC `fakes` against `real`, with the real-vs-real floor and the ratio.
    `strict_detector`: a FaceDetector at STRICT_MIN_NEIGHBORS (None without OpenCV)."""
    first, second = halves(real, seed)
    some = fakes[: len(first)]
    swd_fake = float(np.mean(swd(first, some, seed)))
    swd_floor = float(np.mean(swd(first, second, seed)))
    gap = spectral_gap(some, first)
    gap_floor = spectral_gap(second, first)["distance"]
    report = {
        "floor": f"real against real: the {len(real)} real images in two seeded halves of {len(first)}",
        "swd_x1e3": {"generated": swd_fake, "floor": swd_floor, "ratio": ratio(swd_fake, swd_floor)},
        "spectrum": {
            "generated": gap["distance"],
            "floor": gap_floor,
            "ratio": ratio(gap["distance"], gap_floor),
            "band_radii": [band_radii(real.shape[1])[0], band_radii(real.shape[1])[-1]],
            "log10_ratio": gap["log10_ratio"],
        },
        "strict_face_rate": None,
    }
    if strict_detector is not None:
        generated = strict_detector.rate(fakes)
        found = strict_detector.rate(real)
        report["strict_face_rate"] = {
            "generated": generated.rate,
            "real": found.rate,
            "real_interval": list(wilson_interval(found.faces, found.images)),
            "ratio": ratio(generated.rate, found.rate),
            "min_neighbors": strict_detector.min_neighbors,
        }
    return report
