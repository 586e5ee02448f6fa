"""The spectral measure on inputs whose spectrum is known."""

import numpy as np
import pytest

from facegan.evaluation.spectrum import band_radii, radial_log_power, spectral_gap


def noise(n=64, side=32, seed=0):
    return np.random.default_rng(seed).normal(128, 20, (n, side, side, 3))


def test_the_band_is_radii_8_to_13_at_32_px_and_scales_with_the_resolution():
    assert band_radii(32) == [8, 9, 10, 11, 12, 13]
    assert band_radii(64) == list(range(16, 28))


def test_white_noise_has_a_flat_spectrum():
    curve = radial_log_power(noise(n=256))
    assert len(curve) == 17  # radii 0..16
    assert np.ptp(curve[1:]) < 0.1  # every ring holds the same power, within sampling noise


def test_twice_the_contrast_is_four_times_the_power_at_every_radius():
    x = noise()
    louder = 128 + 2 * (x - 128)
    gap = spectral_gap(louder, x)
    assert gap["distance"] == pytest.approx(np.log10(4), abs=1e-9)
    assert all(v == pytest.approx(np.log10(4), abs=1e-3) for v in gap["log10_ratio"].values())
    assert spectral_gap(x, x)["distance"] == 0.0


def test_blur_loses_power_in_the_band_and_speckle_adds_it():
    x = noise(seed=1)
    blurred = (x + np.roll(x, 1, axis=1) + np.roll(x, 1, axis=2) + np.roll(x, (1, 1), axis=(1, 2))) / 4
    assert all(v < -0.2 for v in spectral_gap(blurred, x)["log10_ratio"].values())
    smooth = np.repeat(np.repeat(noise(side=8, seed=2), 4, axis=1), 4, axis=2)  # blocky: little fine detail
    speckled = smooth + np.random.default_rng(3).normal(0, 10, smooth.shape)
    assert all(v > 0 for v in spectral_gap(speckled, smooth)["log10_ratio"].values())
