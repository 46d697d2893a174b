"""Fourier crop/pad/bin: band-limited signals resample exactly, means are kept, stacks equal per-image."""

from __future__ import annotations

import numpy as np
import pytest

from semc.base.errors import InvalidParameters
from semc.base.io import fourier_bin, fourier_crop, fourier_pad


def _band_limited(ny, nx):
    """1 + a few cosines whose frequencies (cycles per image) are below 8: exact on any grid >= 17."""
    y, x = np.mgrid[:ny, :nx].astype(np.float64)
    return (1.0 + np.cos(2 * np.pi * (3 * x / nx + 5 * y / ny))
            + 0.5 * np.sin(2 * np.pi * (-7 * x / nx + 2 * y / ny))
            + 0.25 * np.cos(2 * np.pi * (6 * y / ny) + 0.3))


@pytest.mark.parametrize("big,small", [((128, 96), (64, 48)), ((127, 95), (33, 41)), ((100, 100), (50, 51))])
def test_cropping_a_band_limited_image_equals_sampling_it_on_the_coarse_grid(big, small):
    cropped = fourier_crop(_band_limited(*big).astype(np.float32), small)
    np.testing.assert_allclose(cropped, _band_limited(*small), atol=2e-5)


@pytest.mark.parametrize("small,big", [((33, 41), (64, 80)), ((64, 48), (129, 97))])
def test_padding_a_band_limited_image_equals_sampling_it_on_the_fine_grid(small, big):
    padded = fourier_pad(_band_limited(*small).astype(np.float32), big)
    np.testing.assert_allclose(padded, _band_limited(*big), atol=2e-5)


def test_pad_then_crop_returns_an_odd_sized_image(rng):
    image = rng.normal(size=(63, 47)).astype(np.float32)
    np.testing.assert_allclose(fourier_crop(fourier_pad(image, (128, 100)), (63, 47)), image, atol=1e-5)


def test_binning_keeps_the_mean_and_stacks_bin_like_single_images(rng):
    stack = rng.poisson(2.0, size=(3, 96, 80)).astype(np.float32)
    binned = fourier_bin(stack, 2)
    assert binned.shape == (3, 48, 40) and binned.dtype == np.float32
    np.testing.assert_allclose(binned.mean(axis=(1, 2)), stack.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(binned[1], fourier_bin(stack[1], 2), atol=1e-5)


def test_wrong_directions_and_inputs_are_refused():
    with pytest.raises(InvalidParameters):
        fourier_crop(np.zeros((8, 8)), (16, 8))
    with pytest.raises(InvalidParameters):
        fourier_pad(np.zeros((8, 8)), (4, 8))
    with pytest.raises(InvalidParameters):
        fourier_bin(np.zeros((8, 8)), 0.5)
    with pytest.raises(InvalidParameters):
        fourier_crop(np.zeros(8, dtype=complex), (4, 4))
