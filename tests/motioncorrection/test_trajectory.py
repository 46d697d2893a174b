"""Temporal smoothing of whole-frame trajectories."""

import numpy as np
import pytest

from semc.motioncorrection.calc.internal.trajectory import decay_and_drift_fit, smooth_trajectory
from semc.simulation.physics.motion import trajectory_generate
from semc.simulation.types import MotionSpec


def _rms(a, b):
    e = a - b
    e -= e.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(e**2, axis=1))))


def test_a_decay_and_drift_trajectory_is_kept_exactly():
    t = np.arange(12) + 0.5
    m = np.stack([0.3 + 0.1 * t + 4.0 * (1 - np.exp(-t / 1.7)), -1.0 - 0.05 * t - 2.0 * (1 - np.exp(-t / 1.7))], 1)
    np.testing.assert_allclose(decay_and_drift_fit(m), m, atol=2e-3)   # tau on a grid: near, not exact
    np.testing.assert_allclose(smooth_trajectory(m), m, atol=2e-3)


@pytest.mark.parametrize("n_frames,decay", [(10, 1.0), (20, 4.0), (40, 4.0)])
def test_smoothing_removes_most_of_the_measurement_noise(n_frames, decay):
    rng = np.random.default_rng(0)
    raw, smooth = [], []
    for seed in range(30):
        truth = trajectory_generate(np.random.default_rng(seed), spec=MotionSpec(decay_frames=decay),
                                    n_frames=n_frames).shifts_px
        noisy = truth + rng.normal(0.0, 0.1, truth.shape)
        raw.append(_rms(noisy, truth))
        smooth.append(_rms(smooth_trajectory(noisy), truth))
    assert np.mean(smooth) < 0.65 * np.mean(raw)


def test_smoothing_keeps_motion_that_does_not_follow_the_model():
    # a slow oscillation is not decay-and-drift; without noise the spline must keep it
    t = np.arange(30, dtype=float)
    m = np.stack([np.sin(t / 4.0), 0.02 * t**1.5], 1)
    assert _rms(smooth_trajectory(m), m) < 0.02


def test_short_or_bad_trajectories():
    short = np.arange(8, dtype=float).reshape(4, 2)
    np.testing.assert_array_equal(smooth_trajectory(short), short)
    with pytest.raises(ValueError, match="shape"):
        smooth_trajectory(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="finite"):
        smooth_trajectory(np.full((10, 2), np.nan))
