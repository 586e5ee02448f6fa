"""Does the generator copy its training faces? Nearest training image by L2 distance in pixels."""

from __future__ import annotations

import numpy as np

CHUNK = 2048  # training images per distance block: bounds memory for large sets


def _flat(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32).reshape(len(images), -1) / 255.0


def nearest(queries: np.ndarray, train: np.ndarray, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of each query's nearest training image, skipping train[exclude[j]] for query j."""
    q = _flat(queries)
    q_sq = (q * q).sum(1, keepdims=True)
    best_d = np.full(len(q), np.inf, np.float32)
    best_i = np.zeros(len(q), np.int64)
    for start in range(0, len(train), CHUNK):
        t = _flat(train[start : start + CHUNK])
        d2 = q_sq + (t * t).sum(1)[None] - 2.0 * q @ t.T
        if exclude is not None:
            own = exclude - start
            mask = (own >= 0) & (own < len(t))
            d2[np.nonzero(mask)[0], own[mask]] = np.inf
        i = d2.argmin(1)
        d = np.sqrt(np.maximum(d2[np.arange(len(q)), i], 0.0))
        better = d < best_d
        best_d[better] = d[better]
        best_i[better] = i[better] + start
    return best_i, best_d


def memorization(fakes: np.ndarray, train: np.ndarray, rng: np.random.Generator, reference: int = 1024) -> dict:
    """Generated faces' nearest-neighbour distances relative to the training set's own.

    A ratio well below 1 means generated faces sit closer to training images than training
    images sit to each other: copies. Also returns the pairs for the side-by-side picture.
    """
    idx, dist = nearest(fakes, train)
    chosen = rng.permutation(len(train))[: min(reference, len(train))]
    _, ref = nearest(train[chosen], train, exclude=chosen)  # each image's nearest *other* training image
    median_ref = float(np.median(ref))
    return {
        "median_nn_distance": float(np.median(dist)),
        "min_nn_distance": float(dist.min()),
        "train_median_nn_distance": median_ref,
        "ratio": float(np.median(dist) / max(median_ref, 1e-12)),
        "pairs": (fakes, train[idx]),
    }
