"""Fused warp-and-accumulate kernel and the low-rank dose-weight expansion."""

import numpy as np
import pytest

from semc.motioncorrection.calc.internal import correct as correct_module
from semc.motioncorrection.calc.internal.dose import (
    accumulated_dose_e_per_a2,
    dose_weights,
    low_rank_frame_basis,
)
from semc.motioncorrection.calc.internal.frames import FramePreparer
from semc.motioncorrection.calc.internal.warp_sum import warp_accumulate
from semc.motioncorrection.types import MotionCorrectionParams

from . import naive


def _coefficients(shifts_xy):
    coef = np.zeros((len(shifts_xy), 2, 6))
    coef[:, :, 0] = shifts_xy
    return coef


@pytest.mark.parametrize("use_gain,use_dark", [(False, False), (True, False), (True, True), (False, True)])
def test_whole_frame_shifts_match_the_naive_twin(use_gain, use_dark):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 9, (5, 41, 67)).astype(np.uint8)
    gain = (1 + 0.1 * rng.standard_normal(frames.shape[1:])).astype(np.float32) if use_gain else None
    dark = (0.3 * rng.random(frames.shape[1:])).astype(np.float32) if use_dark else None
    # sub-pixel, negative and several-pixel shifts: the edges are clamped like the twin's
    coef = _coefficients([[0.0, 0.0], [0.37, -1.62], [-3.5, 2.25], [6.9, 0.01], [-0.99, -7.4]])
    index = np.array([4, 0, 2, 1, 3])
    weights = rng.standard_normal((5, 3))
    got = warp_accumulate(frames, frame_index=index, coefficients=coef, weights=weights, gain=gain, dark=dark)
    want = naive.warp_accumulate(frames, index, coef, weights, gain, dark)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("tolerance", [0.01, 0.002])
def test_every_sample_lies_within_the_tolerance_of_its_exact_position(tolerance):
    # bilinear interpolation of a linear ramp is exact, so a value error is a position error
    ny, nx = 64, 2000
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    alpha, beta = 0.5, 0.25
    frames = (alpha * x + beta * y + 10.0).astype(np.float32)[None]
    coef = np.zeros((1, 2, 6))
    coef[0, 0] = [1.2, 3.0, -2.0, 0.5, 0.4, 1.0]   # several pixels of deformation over the frame
    coef[0, 1] = [-0.7, -1.5, 1.0, 2.0, -0.3, 0.8]
    got = warp_accumulate(frames, frame_index=[0], coefficients=coef, weights=np.ones((1, 1)),
                          tolerance_px=tolerance)[0]
    u, v = x / nx - 0.5, y / ny - 0.5
    terms = np.stack([np.ones_like(u), u, u * u, v, v * v, u * v])
    px = x + np.tensordot(coef[0, 0], terms, 1)
    py = y + np.tensordot(coef[0, 1], terms, 1)
    inside = (px >= 0) & (px <= nx - 1) & (py >= 0) & (py <= ny - 1)
    exact = alpha * px + beta * py + 10.0
    # |alpha ex + beta ey| <= (alpha + beta) tol, plus float32 rounding (positions ~2000: ulp 1.2e-4 px)
    error_px = np.abs(got - exact)[inside] / max(alpha, beta)
    assert error_px.max() <= 1.5 * tolerance + 3e-4
    coarse = warp_accumulate(frames, frame_index=[0], coefficients=coef, weights=np.ones((1, 1)),
                             tolerance_px=1.0)[0]
    assert (np.abs(coarse - exact)[inside] / max(alpha, beta)).max() > 10 * tolerance  # the check can fail


def test_zero_motion_is_the_identity():
    frames = np.random.default_rng(4).random((2, 16, 20)).astype(np.float32)
    out = warp_accumulate(frames, frame_index=[1], coefficients=np.zeros((1, 2, 6)), weights=np.ones((1, 1)))
    np.testing.assert_array_equal(out[0], frames[1])


def test_weights_combine_the_warped_frames_linearly():
    rng = np.random.default_rng(2)
    frames = rng.random((4, 30, 40)).astype(np.float32)
    coef = np.zeros((4, 2, 6))
    coef[:, :, :3] = 0.3 * rng.standard_normal((4, 2, 3))
    one_each = warp_accumulate(frames, frame_index=np.arange(4), coefficients=coef, weights=np.eye(4))
    weights = rng.standard_normal((4, 2))
    combined = warp_accumulate(frames, frame_index=np.arange(4), coefficients=coef, weights=weights)
    np.testing.assert_allclose(combined, np.tensordot(weights.T, one_each, 1), rtol=1e-4, atol=1e-5)


def test_warp_accumulate_rejects_bad_input():
    frames = np.zeros((3, 8, 8), np.float32)
    ok = dict(frame_index=[0, 1], coefficients=np.zeros((2, 2, 6)), weights=np.ones((2, 1)))
    with pytest.raises(ValueError, match="frame_index"):
        warp_accumulate(frames, **{**ok, "frame_index": [0, 3]})
    with pytest.raises(ValueError, match="coefficients"):
        warp_accumulate(frames, **{**ok, "coefficients": np.zeros((2, 2, 5))})
    with pytest.raises(ValueError, match="finite"):
        warp_accumulate(frames, **{**ok, "weights": np.array([[1.0], [np.nan]])})
    with pytest.raises(ValueError, match="gain"):
        warp_accumulate(frames, **ok, gain=np.ones((8, 7), np.float32))
    with pytest.raises(ValueError, match="3-D"):
        warp_accumulate(frames[0], **ok)


def _k3_tables(n=40, dose=1.45, pixel=0.83, bins=3000):
    acc = accumulated_dose_e_per_a2(np.full(n, dose))
    k = np.linspace(0, 0.5 / pixel * 1.5, bins)
    return dose_weights(accumulated_dose_e_per_a2=acc, spatial_frequency_per_a=k, voltage_kv=300)


def test_low_rank_basis_reproduces_the_dose_weights_with_few_sums():
    w = _k3_tables()
    c, b = low_rank_frame_basis(w, np.ones((40, 1)), tolerance=1e-4)
    assert np.abs(c @ b - w).max() <= 1e-4
    assert c.shape[1] <= 8                      # a handful of FFTs instead of 40
    np.testing.assert_array_equal(c[:, 0], 1.0)  # the plain sum stays one of the sums
    c2, b2 = low_rank_frame_basis(w, np.ones((40, 1)), tolerance=1e-2)
    assert c2.shape[1] < c.shape[1] and np.abs(c2 @ b2 - w).max() <= 1e-2


def test_low_rank_basis_keeps_odd_even_columns_and_handles_zero_rows():
    w = _k3_tables(n=12)
    w[:3] = 0.0                                  # frames outside a dose range
    odd_even = np.stack([np.arange(12) % 2 == 0, np.arange(12) % 2 == 1], 1).astype(float)
    c, b = low_rank_frame_basis(w, odd_even)
    np.testing.assert_array_equal(c[:, :2], odd_even)
    assert np.abs(c @ b - w).max() <= 1e-4


def test_fused_sums_equal_the_per_frame_fourier_sums():
    # no motion: both passes are exact, so the dose-weighted sums from the low-rank
    # expansion must match the ones weighted frame by frame in Fourier space
    rng = np.random.default_rng(3)
    frames = rng.poisson(2.0, (14, 96, 128)).astype(np.uint8)
    gain = (1 + 0.05 * rng.standard_normal((96, 128))).astype(np.float32)
    params = MotionCorrectionParams(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=2.0, voltage_kv=300,
                                    split_sum=True, dose_range_sum_e_per_a2=(4.0, 20.0))
    assert params.dose_weighting
    prep = FramePreparer.build(gain=gain)
    idx, motion = np.arange(1, 14), np.zeros((13, 2))
    fused = correct_module._pass_two_fused(frames, idx, prep, motion, None, params, 1)
    fourier, _ = correct_module._pass_two_fourier(frames, idx, prep, motion, None, params, 1)
    assert set(fused) == set(fourier) == {"sum", "odd", "even", "dose_weighted", "dose_selected"}
    for kind in fused:
        scale = np.abs(fourier[kind]).max()
        np.testing.assert_allclose(fused[kind], fourier[kind], atol=2e-4 * scale, err_msg=kind)
