"""Movies against ground truth: trajectories, shot noise, gain, reproducibility."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from semc.simulation.movie import simulate_micrograph, simulate_movie
from semc.simulation.types import DetectorSpec, MotionSpec, MovieSpec, SpecimenSpec
from tests.simulation.conftest import estimate_shift

FLAT = SpecimenSpec(n_particles=0, ice_texture=0.0)


def test_trajectory_recovered_from_noise_free_frames_matches_truth_to_a_hundredth_pixel():
    spec = MovieSpec(shape=(256, 256), n_frames=12, pixel_size_angstrom=1.5,
                     specimen=SpecimenSpec(n_particles=30, ice_texture=1.0),
                     motion=MotionSpec(global_amplitude_px=5.0, drift_px_per_frame=0.3, jitter_px=0.1))
    movie = simulate_movie(spec, seed=7, noise=False)
    truth = movie.truth.shifts_px
    assert np.abs(truth[-1]).max() > 2.0  # the movie really moves
    for i in range(1, spec.n_frames):
        measured = estimate_shift(movie.frames[0].astype(np.float64), movie.frames[i].astype(np.float64))
        assert measured == pytest.approx(truth[i], abs=0.01), f"frame {i}"


def test_shift_sign_convention_moves_content_towards_larger_indices():
    spec = MovieSpec(shape=(128, 128), n_frames=2, specimen=SpecimenSpec(n_particles=1, models=("point",),
                     ice_texture=0.0), motion=MotionSpec(global_amplitude_px=6.0, decay_frames=0.5,
                     drift_px_per_frame=0.0, jitter_px=0.0, intra_frame_blur=False),
                     detector=DetectorSpec.ideal(), radiation_damage=False)
    movie = simulate_movie(spec, seed=3, noise=False)
    dx, dy = movie.truth.shifts_px[1]
    # a corrector that applies -shift to frame 1 (integer part, by np.roll) brings it onto frame 0
    back = np.roll(movie.frames[1], (-int(round(dy)), -int(round(dx))), axis=(0, 1))
    before = np.abs(movie.frames[1] - movie.frames[0]).sum()
    after = np.abs(back - movie.frames[0]).sum()
    assert after < 0.5 * before


@pytest.mark.parametrize("dose_per_frame", [0.5, 2.0, 8.0])
def test_counts_are_poisson_with_mean_and_variance_equal_to_the_dose(dose_per_frame):
    spec = MovieSpec(shape=(256, 256), n_frames=6, pixel_size_angstrom=1.0,
                     dose_per_frame_e_per_a2=dose_per_frame, specimen=FLAT, motion=MotionSpec.still(),
                     detector=DetectorSpec.ideal())
    frames = simulate_movie(spec, seed=11).frames.astype(np.float64)
    n = frames.size
    lam = dose_per_frame  # electrons per pixel at 1 Å pixels
    assert frames.mean() == pytest.approx(lam, abs=5 * np.sqrt(lam / n))
    assert frames.var() == pytest.approx(lam, rel=5 * np.sqrt(2.0 / n) + 0.01)
    assert np.mean(frames == 0) == pytest.approx(np.exp(-lam), abs=5 * np.sqrt(np.exp(-lam) / n) + 1e-4)


def test_gain_reference_times_raw_counts_restores_the_dose():
    spec = MovieSpec(shape=(128, 128), n_frames=200, dose_per_frame_e_per_a2=2.0, specimen=FLAT,
                     motion=MotionSpec.still(), detector=DetectorSpec(gain_sigma=0.2, mtf=False))
    movie = simulate_movie(spec, seed=5)
    raw_mean = movie.frames.mean(axis=0)
    corrected = raw_mean * movie.gain_reference
    # per pixel the corrected mean is the dose; the raw mean follows 1/gain
    assert corrected.mean() == pytest.approx(2.0, rel=0.01)
    assert np.corrcoef(raw_mean.ravel(), 1.0 / movie.gain_reference.ravel())[0, 1] > 0.9


def test_hot_pixels_and_dead_columns_are_where_the_truth_says():
    spec = MovieSpec(shape=(128, 128), n_frames=20, dose_per_frame_e_per_a2=0.5, specimen=FLAT,
                     motion=MotionSpec.still(), detector=DetectorSpec(n_hot_pixels=5, hot_pixel_rate=20.0,
                                                                       n_dead_columns=2))
    movie = simulate_movie(spec, seed=2)
    det = movie.truth.detector
    assert np.all(movie.frames[:, :, det.dead_columns] == 0)
    hot = movie.frames.mean(axis=0)[det.hot_pixels_xy[:, 1], det.hot_pixels_xy[:, 0]]
    assert np.all(hot > 10)
    marked = {(y, x) for y in range(128) for x in det.dead_columns} | {(y, x) for x, y in det.hot_pixels_xy}
    assert set(zip(*np.nonzero(movie.defect_map))) == marked


def test_clean_sum_is_the_mean_of_many_noisy_sums_without_motion():
    spec = MovieSpec(shape=(128, 128), n_frames=4, dose_per_frame_e_per_a2=5.0, motion=MotionSpec.still(),
                     detector=DetectorSpec.ideal(), specimen=SpecimenSpec(n_particles=5))
    sums = [simulate_movie(spec, seed=4).clean_sum]
    movie = simulate_movie(spec, seed=4, noise=False)
    assert movie.frames.sum(axis=0) == pytest.approx(sums[0], rel=1e-4, abs=1e-3)


def test_the_same_seed_gives_the_same_arrays_and_another_seed_does_not():
    spec = MovieSpec(shape=(128, 128), n_frames=5, motion=MotionSpec(local_amplitude_px=0.5),
                     detector=DetectorSpec(n_hot_pixels=2, n_dead_columns=1))
    a, b, c = simulate_movie(spec, 9), simulate_movie(spec, 9), simulate_movie(spec, 10)
    assert a.frames.tobytes() == b.frames.tobytes()
    assert a.clean_sum.tobytes() == b.clean_sum.tobytes()
    assert a.frames.tobytes() != c.frames.tobytes()


def test_local_deformation_is_zero_in_frame_zero_and_moves_later_frames_by_the_field():
    from semc.simulation.physics.motion import local_displacement

    spec = MovieSpec(shape=(256, 256), n_frames=6, specimen=SpecimenSpec(n_particles=60),
                     motion=replace(MotionSpec.still(), local_amplitude_px=1.5, local_modes=1),
                     detector=DetectorSpec.ideal(), radiation_damage=False)
    movie = simulate_movie(spec, seed=8, noise=False)
    field = movie.truth.local_field
    assert field.time_weight[0] == 0
    # measure the shift of a 64 px patch around a point and compare with the field there
    cy, cx = 64, 64
    d = local_displacement(field, 5, np.array(float(cx)), np.array(float(cy)))
    win = (slice(cy - 32, cy + 32), slice(cx - 32, cx + 32))
    taper = np.outer(np.hanning(64), np.hanning(64))
    a, b = movie.frames[0][win], movie.frames[5][win]
    measured = estimate_shift((a - a.mean()) * taper, (b - b.mean()) * taper)
    assert measured == pytest.approx(d, abs=0.15)


def test_micrograph_has_the_total_dose_and_no_motion():
    spec = MovieSpec(shape=(128, 128), n_frames=10, dose_per_frame_e_per_a2=2.0, specimen=FLAT,
                     detector=DetectorSpec.ideal())
    mic = simulate_micrograph(spec, seed=1)
    assert mic.image.mean() == pytest.approx(20.0, rel=0.01)
    assert mic.truth.spec.n_frames == 1
    assert np.all(mic.truth.shifts_px == 0)
