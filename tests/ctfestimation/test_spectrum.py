"""Amplitude spectra: centred block binning, resampling factor, peak positions, background removal."""

import numpy as np
import pytest
import scipy.fft

from semc.base.errors import InvalidParameters
from semc.ctfestimation.calc.internal.spectrum import (
    _assemble,
    amplitude_spectrum_from_frames,
    amplitude_spectrum_from_image,
    spectrum_background_subtract,
    spectrum_binning_factor,
)
from tests.ctfestimation.naive import centred_block_binning_naive, centred_window_binning_naive


@pytest.mark.parametrize(("n", "box", "k"), [(64, 16, 1), (64, 16, 3), (64, 16, 4), (60, 16, 3), (64, 32, 2), (66, 16, 4)])
def test_half_plane_binning_equals_full_plane_centred_blocks(n, box, k):
    image = np.random.default_rng(n + k).normal(size=(n, n))
    got = _assemble(np.abs(scipy.fft.rfft2(image)), shape=(n, n), box_size=box, step=(k, k))
    np.testing.assert_allclose(got, centred_block_binning_naive(image, box=box, k=k), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("shape", "box", "step"), [((48, 64), 16, (2.25, 3.0)), ((64, 40), 16, (4.0, 2.5)), ((40, 64), 32, (0.625, 1.0))])
def test_rectangular_spectra_are_binned_with_fractional_windows(shape, box, step):
    image = np.random.default_rng(sum(shape)).normal(size=shape)
    got = _assemble(np.abs(scipy.fft.rfft2(image)), shape=shape, box_size=box, step=step)
    np.testing.assert_allclose(got, centred_window_binning_naive(image, box=box, step=step), rtol=1e-10, atol=1e-10)


def test_binning_factor_keeps_the_fitted_pixel_at_most_the_target_and_the_box_inside_the_spectrum():
    assert spectrum_binning_factor(padded_size=4096, pixel_size_angstrom=1.0, box_size=512, target_pixel_size_angstrom=1.4) == 6
    assert spectrum_binning_factor(padded_size=4096, pixel_size_angstrom=0.3, box_size=512, target_pixel_size_angstrom=1.4) == 2
    assert spectrum_binning_factor(padded_size=1100, pixel_size_angstrom=0.99, box_size=512, target_pixel_size_angstrom=1.0) == 2
    assert spectrum_binning_factor(padded_size=4096, pixel_size_angstrom=1.5, box_size=512, target_pixel_size_angstrom=1.4) == 1
    assert spectrum_binning_factor(padded_size=4096, pixel_size_angstrom=1.0, box_size=512, target_pixel_size_angstrom=None) == 1
    with pytest.raises(InvalidParameters):
        spectrum_binning_factor(padded_size=256, pixel_size_angstrom=1.0, box_size=512, target_pixel_size_angstrom=1.4)


@pytest.mark.parametrize("shape", [(1024, 1024), (700, 1024), (1024, 620)])
def test_a_cosine_appears_at_its_frequency_in_the_resampled_spectrum(shape):
    pixel = 0.7
    y, x = np.mgrid[: shape[0], : shape[1]]
    frequency = 0.1  # 1/Å, along x and y at 45 degrees
    image = np.cos(2 * np.pi * frequency / np.sqrt(2) * (x + y) * pixel)
    spectrum, fitted_pixel = amplitude_spectrum_from_image(image, pixel_size_angstrom=pixel, box_size=256,
                                                           target_pixel_size_angstrom=1.4)
    assert fitted_pixel == pytest.approx(1.4)
    row, col = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    found = np.hypot(row - 128, col - 128) / (256 * fitted_pixel)
    assert found == pytest.approx(frequency, abs=1.0 / (256 * fitted_pixel))
    assert (row - 128) * (col - 128) > 0  # rows are ky, columns kx: the peak is on the +x+y diagonal
    assert spectrum[256 - row, 256 - col] == pytest.approx(spectrum[row, col])


def test_movie_mode_sums_the_spectra_of_averaged_groups():
    frames = np.random.default_rng(3).normal(size=(4, 256, 256)).astype(np.float32)
    summed, _ = amplitude_spectrum_from_frames(frames, pixel_size_angstrom=1.0, box_size=128, frames_to_average=2,
                                               target_pixel_size_angstrom=None)
    first, _ = amplitude_spectrum_from_image(frames[:2].mean(0), pixel_size_angstrom=1.0, box_size=128, target_pixel_size_angstrom=None)
    second, _ = amplitude_spectrum_from_image(frames[2:].mean(0), pixel_size_angstrom=1.0, box_size=128, target_pixel_size_angstrom=None)
    np.testing.assert_allclose(summed, first + second, rtol=1e-5)


def test_non_finite_or_wrongly_shaped_images_are_rejected():
    with pytest.raises(InvalidParameters):
        amplitude_spectrum_from_image(np.full((600, 600), np.nan), pixel_size_angstrom=1.0, box_size=512)
    with pytest.raises(InvalidParameters):
        amplitude_spectrum_from_image(np.zeros((2, 600, 600)), pixel_size_angstrom=1.0, box_size=512)


def test_background_subtraction_flattens_a_smooth_falloff_and_keeps_rings():
    box, pixel = 256, 1.4
    index = np.arange(box) - box // 2
    radius = np.hypot(*np.meshgrid(index, index, indexing="ij"))
    smooth = 100.0 / (1.0 + radius / 20.0)
    rings = np.cos(2 * np.pi * radius / 8.0)
    filtered = spectrum_background_subtract(smooth + rings, pixel_size_angstrom=pixel, min_resolution_angstrom=30.0)
    band = (radius > 30) & (radius < 120)
    assert np.corrcoef(filtered[band], rings[band])[0, 1] > 0.95
