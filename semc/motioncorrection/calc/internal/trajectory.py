"""Temporal smoothing of a measured whole-frame trajectory.

Each axis is fitted, as a function of sqrt(frame + 1/2), with a cubic smoothing
spline whose stiffness is chosen by generalised cross-validation
(``scipy.interpolate.make_smoothing_spline``). Beam-induced motion is fast in
the first frames and slows down roughly like sqrt(t), so in that variable the
trajectory is close to straight and the smoothing removes per-frame
measurement noise without flattening the fast start (smoothing in t itself
pulls the first frames towards the later ones). MotionCor3 likewise fits its
trajectories in sqrt(t).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import make_smoothing_spline

__all__ = ["smooth_trajectory"]

MIN_FRAMES = 5


def smooth_trajectory(motion_px: NDArray[np.floating]) -> NDArray[np.float64]:
    """Smoothed copy of an (n, 2) trajectory; returned unchanged when n < 5.

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
    t = np.sqrt(np.arange(n, dtype=np.float64) + 0.5)
    return np.stack([make_smoothing_spline(t, m[:, k])(t) for k in (0, 1)], axis=1)
