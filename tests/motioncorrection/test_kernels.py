"""Numba kernels against their slow numpy twins (naive.py)."""

import numpy as np
import pytest

from semc.motioncorrection.calc.internal.accumulate import accumulate_shifted, radial_bin_index
from semc.motioncorrection.calc.internal.fourier import bin_image_sum, crop_half_spectrum, phase_ramp_axes

from . import naive


@pytest.mark.parametrize("shape,factor", [((64, 96), 2), ((65, 97), 3), ((8, 8), 1), ((7, 9), 4)])
def test_binning_matches_the_naive_block_sum(shape, factor):
    img = np.random.default_rng(0).integers(0, 9, shape).astype(np.uint8)
    np.testing.assert_allclose(bin_image_sum(img, factor), naive.bin_image_sum(img, factor), rtol=1e-6)


def test_binning_of_zeros_is_zero_and_nan_propagates():
    assert not bin_image_sum(np.zeros((8, 8), np.float32), 2).any()
    img = np.zeros((8, 8), np.float32)
    img[0, 0] = np.nan
    out = bin_image_sum(img, 2)
    assert np.isnan(out[0, 0]) and np.isfinite(out[1:, 1:]).all()


def test_binning_rejects_a_non_integer_factor():
    with pytest.raises(ValueError, match="positive integer"):
        bin_image_sum(np.zeros((8, 8)), 1.5)


@pytest.mark.parametrize("shape", [(32, 48), (31, 45)])
def test_weighted_accumulation_matches_the_naive_twin(shape):
    rng = np.random.default_rng(1)
    ny, nx = shape
    spec = (rng.standard_normal((ny, nx // 2 + 1)) + 1j * rng.standard_normal((ny, nx // 2 + 1))).astype(np.complex64)
    ry, rx = phase_ramp_axes(ny, nx, 1.3, -2.7)
    ridx = radial_bin_index(ny, nx)
    table = rng.random(ridx.max() - 3).astype(np.float32)  # shorter: last entry used beyond
    acc = np.zeros_like(spec)
    acc_w = np.zeros_like(spec)
    accumulate_shifted(spec, ramp_y=ry, ramp_x=rx, acc=acc, weighted=(acc_w, table, ridx))
    ref, ref_w = naive.accumulate_shifted(spec, ry, rx, np.zeros_like(spec), table, ridx, np.zeros_like(spec))
    np.testing.assert_allclose(acc, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(acc_w, ref_w, rtol=1e-5, atol=1e-5)


def test_accumulation_rejects_wrong_dtype():
    spec = np.zeros((8, 5), np.complex128)
    with pytest.raises(ValueError, match="complex64"):
        accumulate_shifted(spec, ramp_y=np.ones(8, np.complex64), ramp_x=np.ones(5, np.complex64),
                           acc=np.zeros((8, 5), np.complex64))


def test_phase_ramp_of_an_integer_shift_equals_a_roll():
    img = np.random.default_rng(2).random((32, 40)).astype(np.float32)
    ry, rx = phase_ramp_axes(32, 40, 3.0, -5.0)
    out = np.fft.irfft2(np.fft.rfft2(img) * ry[:, None] * rx[None, :], s=img.shape)
    np.testing.assert_allclose(out, np.roll(img, (-5, 3), axis=(0, 1)), atol=1e-5)


def test_cropping_keeps_the_low_frequencies_of_a_band_limited_image():
    y, x = np.mgrid[0:64, 0:64]
    img = np.cos(2 * np.pi * 3 * x / 64) + np.sin(2 * np.pi * 2 * y / 64)
    small = np.fft.irfft2(crop_half_spectrum(np.fft.rfft2(img), (32, 32)), s=(32, 32)) * (32 * 32) / (64 * 64)
    np.testing.assert_allclose(small, img[::2, ::2], atol=1e-9)


def test_newton_refinement_finds_the_exact_maximum_of_a_shifted_peak():
    from semc.motioncorrection.calc.internal.peak import refine_peaks

    ny, nx = 96, 128
    fy, fx = np.fft.fftfreq(ny), np.fft.rfftfreq(nx)
    envelope = np.exp(-30 * (fy[:, None] ** 2 + fx[None] ** 2))
    true = np.array([[0.37, -1.21], [-2.6, 0.05], [0.0, 0.0]])
    spectra = np.stack([envelope * np.exp(-2j * np.pi * (fx[None] * sx + fy[:, None] * sy)) for sx, sy in true])
    start = np.round(true) + 0.3
    got = refine_peaks(spectra.astype(np.complex64), freq_y=fy, freq_x=fx, start_px=start, max_step_px=3, steps=4)
    np.testing.assert_allclose(got, true, atol=1e-6)
    # a start beyond the allowed step keeps the start instead of jumping
    kept = refine_peaks(spectra.astype(np.complex64), freq_y=fy, freq_x=fx, start_px=start, max_step_px=0.01)
    np.testing.assert_array_equal(kept, start)


def test_ssnr_weights_follow_the_signal_spectrum():
    from semc.motioncorrection.calc.internal.align import SsnrWeights

    rng = np.random.default_rng(5)
    n, size = 16, 128
    fy, fx = np.fft.fftfreq(size), np.fft.rfftfreq(size)
    f = np.sqrt(fy[:, None] ** 2 + fx[None] ** 2)
    signal = np.fft.rfft2(rng.standard_normal((size, size))) * np.exp(-f**2 / (2 * 0.05**2)) * 3.0
    noise = [np.fft.rfft2(rng.standard_normal((size, size))) for _ in range(n)]
    spectra = np.stack([signal + e for e in noise]).astype(np.complex64)
    rings = np.rint(f * size).astype(np.int64)
    weights = SsnrWeights(spectra, rings)
    ssnr = weights.ssnr(spectra.sum(0))
    true = np.bincount(rings.ravel(), (np.abs(signal) ** 2).ravel()) / np.bincount(rings.ravel()) / size**2
    true = np.convolve(true, np.ones(3) / 3, mode="same")     # the estimate averages three rings too
    low = slice(2, 8)
    np.testing.assert_allclose(ssnr[low], true[low], rtol=0.35)   # measured from the data alone
    w = weights(spectra.sum(0))
    assert w.max() == pytest.approx(1.0)
    assert w[rings > 40].max() < 0.05                             # no signal there: no weight
