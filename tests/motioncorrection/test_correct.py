"""Accuracy of the engine on synthetic movies with known motion (see conftest.py)."""

import numpy as np
import pytest

from semc.motioncorrection.calc.internal.correct import correct_frames
from semc.motioncorrection.types import MotionCorrectionParams

from .conftest import frc, make_movie


def _rms_error(result, movie):
    """RMS trajectory error after removing the common offset (a translation of the whole sum)."""
    err = result.motion_px - movie.motion_px
    err -= err.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(err**2, axis=1))))


@pytest.mark.parametrize("dose,limit", [(1.0, 0.05), (2.0, 0.05), (0.5, 0.15)])
def test_global_trajectory_error_is_within_target(dose, limit):
    movie = make_movie(shape=(1024, 1024), n_frames=20, dose_per_pixel=dose, seed=3)
    result = correct_frames(movie.frames, params=MotionCorrectionParams(), workers=2)
    assert _rms_error(result, movie) <= limit


def test_static_movie_gets_no_invented_motion():
    movie = make_movie(shape=(1024, 1024), n_frames=20, dose_per_pixel=1.0, motion_scale=0.0, seed=4)
    result = correct_frames(movie.frames, params=MotionCorrectionParams(), workers=2)
    assert np.sqrt(np.mean(np.sum(result.motion_px**2, axis=1))) <= 0.05


def test_reference_frame_has_zero_shift_and_first_frame_can_be_chosen():
    movie = make_movie(shape=(256, 256), n_frames=8, dose_per_pixel=4.0, seed=5)
    r = correct_frames(movie.frames, params=MotionCorrectionParams(reference_frame=0), workers=1)
    assert r.reference_frame == 0 and np.allclose(r.motion_px[0], 0)
    r = correct_frames(movie.frames, params=MotionCorrectionParams(), workers=1)
    assert r.reference_frame == 4 and np.allclose(r.motion_px[4], 0)


def test_throw_and_trunc_drop_frames():
    movie = make_movie(shape=(256, 256), n_frames=10, dose_per_pixel=4.0, seed=6)
    r = correct_frames(movie.frames, params=MotionCorrectionParams(throw_frames=2, truncate_frames=3), workers=1)
    assert r.motion_px.shape == (5, 2) and r.first_frame == 2
    expected = movie.frames[2:7].sum(axis=0)
    assert r.sums["sum"].mean() == pytest.approx(expected.mean(), rel=1e-4)


@pytest.mark.slow
def test_local_alignment_beats_global_alignment_on_a_deformed_movie():
    movie = make_movie(shape=(1024, 1024), n_frames=20, dose_per_pixel=2.0, local_amplitude=4.0,
                       contrast=0.3, seed=7)
    scores = {}
    for patches in ((0, 0), (5, 5)):
        r = correct_frames(movie.frames, params=MotionCorrectionParams(patches_xy=patches), workers=2)
        f, c = frc(r.sums["sum"], movie.clean)
        scores[patches] = c[(f > 0.05) & (f < 0.25)].mean()
    assert scores[(5, 5)] > scores[(0, 0)] + 0.01


def test_dose_weighted_sum_has_higher_spectral_snr_at_high_frequency():
    pix, dose = 1.0, 2.0
    movie = make_movie(shape=(512, 512), n_frames=24, dose_per_pixel=dose, motion_scale=0.5,
                       damage_pixel_size_angstrom=pix, dose_per_frame_e_per_a2=dose, contrast=0.5,
                       seed=8)
    params = MotionCorrectionParams(pixel_size_angstrom=pix, dose_per_frame_e_per_a2=dose)
    r = correct_frames(movie.frames, params=params, workers=2)
    f, plain = frc(r.sums["sum"], movie.clean, n_bins=25)
    _, weighted = frc(r.sums["dose_weighted"], movie.clean, n_bins=25)
    band = (f > 0.1) & (f < 0.3)
    assert weighted[band].mean() > plain[band].mean() + 0.02
    # low frequencies are barely damaged: the two sums agree there
    assert abs(weighted[1] - plain[1]) < 0.02
    assert r.sums["dose_weighted"].mean() == pytest.approx(r.sums["sum"].mean(), rel=1e-3)


def test_output_binning_and_split_sums():
    movie = make_movie(shape=(256, 256), n_frames=8, dose_per_pixel=4.0, seed=9)
    r = correct_frames(movie.frames, params=MotionCorrectionParams(output_bin=2, split_sum=True), workers=1)
    assert r.sums["sum"].shape == (128, 128)
    np.testing.assert_allclose(r.sums["odd"] + r.sums["even"], r.sums["sum"], rtol=1e-4, atol=1e-3)
    assert r.sums["sum"].mean() == pytest.approx(movie.frames.sum(0).mean(), rel=1e-4)


def test_align_off_sums_the_frames_as_they_are():
    movie = make_movie(shape=(128, 128), n_frames=6, dose_per_pixel=4.0, seed=10)
    r = correct_frames(movie.frames, params=MotionCorrectionParams(align=False), workers=1)
    assert not r.motion_px.any()
    np.testing.assert_allclose(r.sums["sum"], movie.frames.sum(axis=0), rtol=1e-4, atol=1e-3)


def test_output_stack_holds_the_shifted_frames():
    movie = make_movie(shape=(128, 128), n_frames=6, dose_per_pixel=4.0, seed=12)
    r = correct_frames(movie.frames, params=MotionCorrectionParams(output_stack=True), workers=1)
    assert r.stack.shape == (6, 128, 128)
    np.testing.assert_allclose(r.stack.sum(axis=0), r.sums["sum"], rtol=1e-3, atol=1e-2)
