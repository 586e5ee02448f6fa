"""Each measure beside its real-against-real floor, on sets whose relation is known."""

import numpy as np
import pytest

from facegan.evaluation.realism import halves, realism, wilson_interval


def faces_like(n, seed):
    """Smooth random images: a stand-in for one distribution of faces (uint8 NHWC, 32 px)."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(128, 40, (n, 8, 8, 3))
    return np.clip(np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2), 0, 255).astype(np.uint8)


def test_the_wilson_interval_matches_its_formula_and_stays_in_0_1():
    low, high = wilson_interval(83, 100)
    assert low == pytest.approx(0.7445, abs=1e-3) and high == pytest.approx(0.8911, abs=1e-3)  # tabulated values
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_the_halves_are_disjoint_equal_and_fixed_by_the_seed():
    real = np.arange(101)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    a, b = halves(real, seed=5)
    assert len(a) == len(b) == 50 and not set(a[:, 0, 0, 0]) & set(b[:, 0, 0, 0])
    assert np.array_equal(halves(real, seed=5)[0], a) and not np.array_equal(halves(real, seed=6)[0], a)
    with pytest.raises(ValueError, match="at least 4"):
        halves(real[:3], seed=0)


def test_a_sample_of_the_same_distribution_sits_at_the_floor_and_a_blurred_one_far_above():
    real = faces_like(128, seed=0)
    same = faces_like(128, seed=1)
    blurred = ((same.astype(np.float32) + np.roll(same, 2, axis=1) + np.roll(same, 2, axis=2)) / 3).astype(np.uint8)
    near = realism(real, same, seed=0)
    far = realism(real, blurred, seed=0)
    assert 0.5 < near["swd_x1e3"]["ratio"] < 2 and 0.3 < near["spectrum"]["ratio"] < 3
    assert far["spectrum"]["ratio"] > 5 and far["swd_x1e3"]["ratio"] > near["swd_x1e3"]["ratio"]
    assert far["spectrum"]["band_radii"] == [8, 13] and near["strict_face_rate"] is None
    assert realism(real, blurred, seed=0) == far  # deterministic for a seed
