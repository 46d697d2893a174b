"""Camera effects: pixel sensitivity (gain), defects, shot noise and counting.

- The true per-pixel sensitivity s(x, y) is log-normal around 1 (σ ``gain_sigma``),
  normalised to mean 1. Raw counts are Poisson(λ · s). The gain *reference*
  is 1 / s, multiplicative (corrected = raw × gain, the K2/K3 and MotionCor
  ``-Gain`` convention), with 0 on dead pixels.
- Hot pixels add Poisson(``hot_pixel_rate``) counts in every frame.
- Dead columns read 0 in every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semc.simulation.physics.noise import poisson_counts
from semc.simulation.types import DetectorSpec

__all__ = ["DetectorState", "detector_generate", "counts_sample", "defect_mask"]


@dataclass(frozen=True, slots=True)
class DetectorState:
    """One camera: ``sensitivity`` (ny, nx), hot pixels as (x, y) rows, dead column indices."""

    sensitivity: NDArray[np.float64]
    hot_pixels_xy: NDArray[np.int64]
    dead_columns: NDArray[np.int64]

    @property
    def gain_reference(self) -> NDArray[np.float32]:
        """Multiplicative gain reference (1 / sensitivity; 0 on dead columns)."""
        gain = (1.0 / self.sensitivity).astype(np.float32)
        gain[:, self.dead_columns] = 0.0
        return gain


def detector_generate(rng: np.random.Generator, *, spec: DetectorSpec, shape: tuple[int, int]) -> DetectorState:
    """Draw a camera's sensitivity map and defects."""
    ny, nx = shape
    if spec.gain_sigma > 0:
        # correlated column/row structure plus pixel noise, like real gain references
        sens = np.exp(spec.gain_sigma * (0.8 * rng.standard_normal(shape)
                                          + 0.4 * rng.standard_normal((1, nx))
                                          + 0.4 * rng.standard_normal((ny, 1))) / np.sqrt(0.96))
        sens /= sens.mean()
    else:
        sens = np.ones(shape)
    sens = sens.astype(np.float32)
    n_hot = min(spec.n_hot_pixels, ny * nx)
    flat = rng.choice(ny * nx, size=n_hot, replace=False) if n_hot else np.zeros(0, dtype=np.int64)
    hot = np.stack([flat % nx, flat // nx], axis=1).astype(np.int64) if n_hot else np.zeros((0, 2), np.int64)
    dead = np.sort(rng.choice(nx, size=min(spec.n_dead_columns, nx), replace=False)).astype(np.int64)
    return DetectorState(sens, hot, dead)


def defect_mask(state: DetectorState, shape: tuple[int, int]) -> NDArray[np.uint8]:
    """1 on every hot pixel and dead column, 0 elsewhere (rows = y, columns = x)."""
    mask = np.zeros(shape, dtype=np.uint8)
    mask[:, state.dead_columns] = 1
    if len(state.hot_pixels_xy):
        mask[state.hot_pixels_xy[:, 1], state.hot_pixels_xy[:, 0]] = 1
    return mask


def counts_sample(
    rng: np.random.Generator,
    expected: NDArray[np.float64],
    *,
    state: DetectorState,
    spec: DetectorSpec,
) -> NDArray:
    """One frame as read out: Poisson counts (uint16) of ``expected`` × sensitivity, plus defects.

    ``expected`` is the mean number of electrons per pixel arriving at the
    detector. Without ``spec.counting`` the result is float32: electrons ×
    sensitivity plus Gaussian read noise.
    """
    lam = np.maximum(expected, 0.0) * state.sensitivity
    if spec.counting:
        frame = poisson_counts(rng, lam)
        if len(state.hot_pixels_xy):
            hx, hy = state.hot_pixels_xy[:, 0], state.hot_pixels_xy[:, 1]
            frame[hy, hx] += rng.poisson(spec.hot_pixel_rate, size=len(hx))
        frame = np.minimum(frame, np.iinfo(np.uint16).max).astype(np.uint16)
    else:
        frame = poisson_counts(rng, lam).astype(np.float32)
        if spec.read_noise_e > 0:
            frame += rng.normal(scale=spec.read_noise_e, size=frame.shape).astype(np.float32)
        if len(state.hot_pixels_xy):
            frame[state.hot_pixels_xy[:, 1], state.hot_pixels_xy[:, 0]] += spec.hot_pixel_rate
    frame[:, state.dead_columns] = 0
    return frame
