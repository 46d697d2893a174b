"""Smooth local-motion model: a polynomial in space and time, fitted robustly.

The model is the one of the MotionCor2 paper as kept by RELION 3.1: for each
axis, 18 coefficients over the products of (1, x, x^2, y, y^2, x y) and
(t, t^2, t^3), where x, y in [-0.5, 0.5) are positions normalised by the image
size and t = (frame - reference frame) / n_frames. It describes the residual
motion after the global (whole-frame) correction, so it is zero at the
reference frame. Outlying patch measurements are rejected (|residual| > 3
robust sigma, at least 0.5 px) and the fit repeated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["LocalMotionModel", "spatial_terms", "time_terms", "fit_local_model"]

N_SPATIAL = 6
N_TIME = 3


def spatial_terms(x: NDArray[np.floating], y: NDArray[np.floating]) -> NDArray[np.float64]:
    """(1, x, x^2, y, y^2, xy) stacked on the last axis."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return np.stack([np.ones_like(x), x, x * x, y, y * y, x * y], axis=-1)


def time_terms(t: NDArray[np.floating]) -> NDArray[np.float64]:
    """(t, t^2, t^3) stacked on the last axis."""
    t = np.asarray(t, dtype=np.float64)
    return np.stack([t, t * t, t * t * t], axis=-1)


@dataclass(frozen=True, slots=True)
class LocalMotionModel:
    """Polynomial local (residual) motion of the content, in pixels of the input movie.

    Attributes
    ----------
    coefficients_x, coefficients_y
        Shape (6, 3): index [spatial term, time term].
    image_shape
        (ny, nx) of the movie the positions are normalised by.
    reference_frame
        Frame index (0-based, within the processed frames) where the model is zero.
    n_frames
        Number of processed frames (time normalisation).
    fit_rmsd_px
        RMS residual of the accepted patch measurements.
    n_rejected
        Patch measurements rejected as outliers.
    """

    coefficients_x: NDArray[np.float64]
    coefficients_y: NDArray[np.float64]
    image_shape: tuple[int, int]
    reference_frame: int
    n_frames: int
    fit_rmsd_px: float
    n_rejected: int

    def __post_init__(self) -> None:
        for c in (self.coefficients_x, self.coefficients_y):
            if c.shape != (N_SPATIAL, N_TIME):
                raise ValueError(f"coefficients must have shape (6, 3), got {c.shape}")
        if self.n_frames < 1 or not 0 <= self.reference_frame < self.n_frames:
            raise ValueError("reference_frame must lie within n_frames")

    def normalised_time(self, frame: NDArray[np.floating] | float) -> NDArray[np.float64]:
        return (np.asarray(frame, dtype=np.float64) - self.reference_frame) / self.n_frames

    def frame_coefficients(self, frame: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Six spatial coefficients per axis at one frame: motion = terms(x, y) @ c."""
        tt = time_terms(self.normalised_time(frame))
        return self.coefficients_x @ tt, self.coefficients_y @ tt

    def motion_px(
        self, *, x_px: NDArray[np.floating], y_px: NDArray[np.floating], frame: NDArray[np.floating]
    ) -> NDArray[np.float64]:
        """Residual motion (x, y) on the last axis at pixel positions and frames (broadcast)."""
        ny, nx = self.image_shape
        s = spatial_terms(np.asarray(x_px) / nx - 0.5, np.asarray(y_px) / ny - 0.5)
        tt = time_terms(self.normalised_time(frame))
        basis = s[..., :, None] * tt[..., None, :]
        mx = np.einsum("...st,st->...", basis, self.coefficients_x)
        my = np.einsum("...st,st->...", basis, self.coefficients_y)
        return np.stack([mx, my], axis=-1)


def _design(x_px, y_px, frame, image_shape, reference_frame, n_frames):
    ny, nx = image_shape
    s = spatial_terms(np.asarray(x_px) / nx - 0.5, np.asarray(y_px) / ny - 0.5)
    tt = time_terms((np.asarray(frame, dtype=np.float64) - reference_frame) / n_frames)
    return (s[:, :, None] * tt[:, None, :]).reshape(len(s), -1)


def fit_local_model(
    *,
    x_px: NDArray[np.floating],
    y_px: NDArray[np.floating],
    frame: NDArray[np.integer],
    residual_motion_px: NDArray[np.floating],
    image_shape: tuple[int, int],
    reference_frame: int,
    n_frames: int,
    rounds: int = 3,
) -> LocalMotionModel:
    """Least-squares fit with outlier rejection of patch measurements to the model.

    Parameters
    ----------
    x_px, y_px, frame
        Shape (m,): patch centre (pixels of the movie) and frame index of each measurement.
    residual_motion_px
        Shape (m, 2): measured motion minus the global motion (pixels).
    image_shape, reference_frame, n_frames
        See `LocalMotionModel`.

    Returns
    -------
    LocalMotionModel

    Raises
    ------
    ValueError
        If there are not more measurements than the 18 coefficients.
    """
    a = _design(x_px, y_px, frame, image_shape, reference_frame, n_frames)
    b = np.asarray(residual_motion_px, dtype=np.float64)
    if a.shape[0] <= a.shape[1]:
        raise ValueError(f"need more than {a.shape[1]} patch measurements, got {a.shape[0]}")
    keep = np.ones(a.shape[0], dtype=bool)
    coef = np.zeros((a.shape[1], 2))
    for _ in range(rounds):
        coef, *_ = np.linalg.lstsq(a[keep], b[keep], rcond=None)
        res = np.hypot(*(a @ coef - b).T)
        sigma = 1.4826 * np.median(res[keep])
        new_keep = res <= max(3.0 * sigma, 0.5)
        if new_keep.sum() <= a.shape[1] or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    res = np.hypot(*(a @ coef - b).T)
    return LocalMotionModel(
        coefficients_x=coef[:, 0].reshape(N_SPATIAL, N_TIME).copy(),
        coefficients_y=coef[:, 1].reshape(N_SPATIAL, N_TIME).copy(),
        image_shape=(int(image_shape[0]), int(image_shape[1])),
        reference_frame=int(reference_frame),
        n_frames=int(n_frames),
        fit_rmsd_px=float(np.sqrt(np.mean(res[keep] ** 2))),
        n_rejected=int((~keep).sum()),
    )
