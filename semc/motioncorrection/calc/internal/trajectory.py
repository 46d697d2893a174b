"""Temporal smoothing of a measured whole-frame trajectory.

Beam-induced motion is a fast initial movement that dies away plus a slow
drift. The measured trajectory is first fitted, per axis, by that physical
model, ``c + v t + a (1 - exp(-t / tau))`` with ``tau`` shared by both axes
(least squares over a grid of ``tau`` from 0.3 frames to four movie lengths;
t = frame + 1/2, the middle of the frame). What the model leaves is then
smoothed by a cubic smoothing spline in sqrt(t) whose stiffness is chosen by
generalised cross-validation (``scipy.interpolate.make_smoothing_spline``),
so motion that does not follow the model is kept as the data show it. When
the model misses the data by more than the measurement noise (estimated from
second differences), it is dropped and the spline smooths the trajectory
alone, so a wandering path is not forced into the model's shape. In
sqrt(t) the fast start is stretched out, so the spline does not flatten it
(MotionCor3 likewise fits its trajectories in sqrt(t)).

On the simulation module's movies the model takes the error of ten-frame
movies whose motion decays within a frame or two from 0.055 to 0.040 px, and
leaves twenty- and forty-frame movies as they were (0.073 and 0.10 px mean).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import make_smoothing_spline
from scipy.optimize import minimize_scalar

__all__ = ["smooth_trajectory", "decay_and_drift_fit", "measurement_noise_px"]

MIN_FRAMES = 5

#: the decay-and-drift model is used when its RMS residual is within this many noise sds
MODEL_TOLERANCE = 1.2

#: decay times (frames, times the movie length for the upper end) tried by the model fit
_TAU_RANGE = (0.3, 4.0)
_TAU_STEPS = 48


def decay_and_drift_fit(motion_px: NDArray[np.floating]) -> NDArray[np.float64]:
    """Least-squares fit of ``c + v t + a (1 - exp(-t / tau))`` to each column (shared tau).

    ``tau`` is searched on a logarithmic grid, then refined between the grid
    neighbours of the best point (bounded scalar minimisation of the residual).

    Parameters
    ----------
    motion_px
        Shape (n, k), n >= 4: measured positions per frame.

    Returns
    -------
    ndarray
        Shape (n, k): the fitted model at every frame.
    """
    m = np.asarray(motion_px, dtype=np.float64)
    n = m.shape[0]
    t = np.arange(n, dtype=np.float64) + 0.5

    def fit(log_tau: float) -> tuple[float, NDArray[np.float64]]:
        design = np.stack([np.ones(n), t, 1.0 - np.exp(-t / np.exp(log_tau))], axis=1)
        model = design @ np.linalg.lstsq(design, m, rcond=None)[0]
        return float(np.sum((model - m) ** 2)), model

    grid = np.linspace(np.log(_TAU_RANGE[0]), np.log(_TAU_RANGE[1] * n), _TAU_STEPS)
    rss = [fit(g)[0] for g in grid]
    i = int(np.argmin(rss))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best = minimize_scalar(lambda g: fit(g)[0], bounds=(lo, hi), method="bounded",
                           options={"xatol": 1e-4})
    return fit(float(best.x) if best.fun <= rss[i] else float(grid[i]))[1]


def smooth_trajectory(motion_px: NDArray[np.floating]) -> NDArray[np.float64]:
    """Smoothed copy of an (n, 2) trajectory (see the module docstring); unchanged when n < 5.

    Raises
    ------
    ValueError
        If the input is not (n, 2) or holds non-finite values.
    """
    m = np.asarray(motion_px, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != 2:
        raise ValueError(f"motion_px must have shape (n, 2), got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("motion_px must be finite")
    n = m.shape[0]
    if n < MIN_FRAMES:
        return m.copy()
    model = decay_and_drift_fit(m)
    if np.sqrt(np.mean((m - model) ** 2)) > MODEL_TOLERANCE * measurement_noise_px(m):
        model = np.zeros_like(m)   # the motion does not follow the model: spline alone
    t = np.sqrt(np.arange(n, dtype=np.float64) + 0.5)
    rest = m - model
    return model + np.stack([make_smoothing_spline(t, rest[:, k])(t) for k in (0, 1)], axis=1)


def measurement_noise_px(motion_px: NDArray[np.floating]) -> float:
    """Robust per-axis noise of a trajectory from its second differences.

    For a smooth path plus white noise of sd s, the second difference has sd
    s sqrt(6); the median absolute value (scaled to a sd) ignores the few
    frames where the path itself turns sharply.
    """
    d2 = np.diff(np.asarray(motion_px, dtype=np.float64), n=2, axis=0)
    return float(1.4826 * np.median(np.abs(d2)) / np.sqrt(6.0))
