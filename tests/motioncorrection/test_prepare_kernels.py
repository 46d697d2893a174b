"""Fused detector-correction kernels and the group cross-spectra kernel against naive twins."""

import numpy as np
import pytest

from semc.motioncorrection.calc.internal.align import group_cross_spectra
from semc.motioncorrection.calc.internal.frames import FramePreparer, defect_sources
from semc.motioncorrection.calc.internal.prepare_kernels import correct_and_bin, correct_and_warp, correct_frame

from . import naive


@pytest.fixture
def detector():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 6, (37, 53)).astype(np.uint8)
    gain = (1 + 0.1 * rng.standard_normal(raw.shape)).astype(np.float32)
    dark = (0.2 * rng.random(raw.shape)).astype(np.float32)
    return raw, gain, dark


@pytest.mark.parametrize("use_gain,use_dark", [(True, True), (True, False), (False, True), (False, False)])
def test_correct_frame_matches_naive(detector, use_gain, use_dark):
    raw, gain, dark = detector
    g, d = (gain if use_gain else None), (dark if use_dark else None)
    np.testing.assert_allclose(correct_frame(raw, gain=g, dark=d), naive.correct_frame(raw, g, d), rtol=1e-6)


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_correct_and_bin_matches_naive(detector, factor):
    raw, gain, dark = detector
    expected = naive.bin_image_sum(naive.correct_frame(raw, gain, dark), factor)
    np.testing.assert_allclose(correct_and_bin(raw, gain=gain, dark=dark, factor=factor), expected, rtol=1e-5, atol=1e-5)


def test_correct_and_warp_matches_naive(detector):
    raw, gain, dark = detector
    cx = np.array([0.4, -1.1, 2.0, 0.7, -0.3, 1.2])
    cy = np.array([-0.9, 0.5, -1.4, 0.2, 1.6, -0.7])
    expected = naive.warp_polynomial(naive.correct_frame(raw, gain, dark), cx, cy)
    got = correct_and_warp(raw, gain=gain, dark=dark, coefficients_x=cx, coefficients_y=cy)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_kernels_reject_mismatched_references(detector):
    raw, gain, _ = detector
    with pytest.raises(ValueError, match="gain"):
        correct_frame(raw, gain=gain[:-1], dark=None)
    with pytest.raises(ValueError, match="out"):
        correct_and_bin(raw, gain=None, dark=None, factor=2, out=np.empty((3, 3), np.float32))


def test_defect_pixels_take_a_good_neighbours_corrected_value(detector):
    raw, gain, dark = detector
    mask = np.zeros(raw.shape, bool)
    mask[10:12, 20:25] = True
    mask[0, 0] = True
    prep = FramePreparer.build(gain=gain, dark=dark, defect_mask=mask)
    out = prep(raw)
    targets, sources = prep.defect_targets, prep.defect_sources
    full = naive.correct_frame(raw, gain, dark).ravel()
    np.testing.assert_allclose(out.ravel()[targets], full[sources], rtol=1e-6)
    good = ~mask.ravel()
    np.testing.assert_allclose(out.ravel()[good], full[good], rtol=1e-6)
    ty, tx = np.divmod(targets, raw.shape[1])
    sy, sx = np.divmod(sources, raw.shape[1])
    assert not mask.ravel()[sources].any()
    assert np.all(np.abs(ty - sy) <= 4) and np.all(np.abs(tx - sx) <= 4)


def test_defect_sources_refuses_an_all_bad_image():
    with pytest.raises(ValueError, match="whole image"):
        defect_sources(np.ones((4, 4), bool))


@pytest.mark.parametrize("phase_only", [False, True])
def test_group_cross_spectra_match_naive(phase_only):
    rng = np.random.default_rng(5)
    n, cy, cxh = 7, 12, 9
    spectra = (rng.standard_normal((n, cy, cxh)) + 1j * rng.standard_normal((n, cy, cxh))).astype(np.complex64)
    ry = np.exp(1j * rng.random((n, cy))).astype(np.complex64)
    rx = np.exp(1j * rng.random((n, cxh))).astype(np.complex64)
    group_of = np.array([0, 0, 1, 1, 2, 2, 2])
    filt = rng.random((cy, cxh)).astype(np.float32)
    got = group_cross_spectra(spectra, ramp_y=ry, ramp_x=rx, group_of=group_of, n_groups=3, filt=filt,
                              phase_only=phase_only)
    expected = naive.group_cross_spectra(spectra, ry, rx, group_of, 3, filt, phase_only)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
