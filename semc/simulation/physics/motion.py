"""Beam-induced motion: the global trajectory, a smooth local deformation, exact sub-pixel shifts.

Sign convention (stated in every ground-truth file): a displacement ``(x, y)``
in pixels moves the specimen content towards increasing column (x) and row (y)
index. ``shift[i]`` is the mean displacement of the specimen during frame i
minus that during frame 0, so ``shift[0] == (0, 0)``; a motion corrector must
apply ``−shift[i]`` to frame i to bring it onto frame 0.

The continuous path is piecewise linear between the knots ``s(t_j)`` at frame
boundaries ``t_j = j`` (j = 0..n). Inside frame i the specimen moves uniformly
from knot i to knot i + 1, so the intra-frame blur is exactly a line segment:
its Fourier transform is exp(−2πi k·m) · sinc(k·Δ), m the midpoint, Δ the step.
Shifts are applied as Fourier phase ramps, which is exact for band-limited,
periodic images (no interpolation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from semc.simulation.types import MotionSpec

__all__ = ["Trajectory", "LocalField", "trajectory_generate", "local_field_generate",
           "shift_filter", "local_displacement", "apply_local_deformation"]


@dataclass(frozen=True, slots=True)
class Trajectory:
    """Knots (n + 1, 2) at frame boundaries and per-frame mean shifts (n, 2), pixels, (x, y) columns."""

    knots_px: NDArray[np.float64]

    @property
    def frame_mean_px(self) -> NDArray[np.float64]:
        """Mean displacement during each frame (absolute, not referenced)."""
        return 0.5 * (self.knots_px[:-1] + self.knots_px[1:])

    @property
    def shifts_px(self) -> NDArray[np.float64]:
        """Per-frame shift relative to frame 0 (the ground truth a corrector must undo)."""
        m = self.frame_mean_px
        return m - m[0]


@dataclass(frozen=True, slots=True)
class LocalField:
    """Smooth periodic field d(x, y, i) = h[i] · Σ_m (a_m cos φ_m + b_m sin φ_m), φ_m = 2π (p_m x / nx + q_m y / ny).

    ``modes`` (M, 2) integer (p, q); ``cos_coeff_px`` / ``sin_coeff_px`` (M, 2)
    with (x, y) columns; ``time_weight`` (n_frames,) with ``time_weight[0] == 0``.
    """

    shape: tuple[int, int]
    modes: NDArray[np.int64]
    cos_coeff_px: NDArray[np.float64]
    sin_coeff_px: NDArray[np.float64]
    time_weight: NDArray[np.float64]

    def to_dict(self) -> dict:
        """JSON-ready description, with its formula."""
        return {
            "formula": "d(x,y,i) = time_weight[i] * sum_m (cos_coeff[m] * cos(phi_m) + sin_coeff[m] * sin(phi_m)), "
                       "phi_m = 2*pi*(p_m*x/nx + q_m*y/ny); x,y in pixels (column,row); d in pixels (dx,dy); "
                       "frame i pixel (x,y) shows the reference content at (x,y) - global_shift[i] - d(x,y,i)",
            "shape_yx": list(self.shape),
            "modes_pq": self.modes.tolist(),
            "cos_coeff_px_xy": self.cos_coeff_px.tolist(),
            "sin_coeff_px_xy": self.sin_coeff_px.tolist(),
            "time_weight": self.time_weight.tolist(),
        }


def trajectory_generate(rng: np.random.Generator, *, spec: MotionSpec, n_frames: int) -> Trajectory:
    """Draw a global trajectory (see :class:`semc.simulation.types.MotionSpec` for the formula)."""
    t = np.arange(n_frames + 1, dtype=np.float64)
    u = rng.normal(size=2)
    u /= max(np.linalg.norm(u), 1e-12)
    v = rng.normal(size=2)
    v *= spec.drift_px_per_frame / max(np.linalg.norm(v), 1e-12)
    knots = spec.global_amplitude_px * u[None, :] * (1 - np.exp(-t / spec.decay_frames))[:, None]
    knots += t[:, None] * v[None, :]
    if spec.jitter_px > 0:
        steps = rng.normal(scale=spec.jitter_px, size=(n_frames + 1, 2))
        steps[0] = 0
        walk = ndimage.gaussian_filter1d(np.cumsum(steps, axis=0), sigma=1.5, axis=0, mode="nearest")
        knots += walk - walk[0]
    return Trajectory(knots)


def local_field_generate(
    rng: np.random.Generator, *, spec: MotionSpec, shape: tuple[int, int], n_frames: int
) -> LocalField | None:
    """Draw the smooth local deformation, or ``None`` when ``local_amplitude_px`` is 0."""
    if spec.local_amplitude_px <= 0:
        return None
    k = spec.local_modes
    modes = np.array([(p, q) for p in range(0, k + 1) for q in range(-k, k + 1)
                      if (p > 0 or q > 0) and p * p + q * q <= k * k], dtype=np.int64)
    decay = 1.0 / (1.0 + (modes**2).sum(axis=1))[:, None]
    a = rng.normal(size=(len(modes), 2)) * decay
    b = rng.normal(size=(len(modes), 2)) * decay
    rms = math.sqrt(0.5 * float((a**2 + b**2).sum()))  # RMS of the field over the image
    a *= spec.local_amplitude_px / rms
    b *= spec.local_amplitude_px / rms
    tmid = np.arange(n_frames) + 0.5
    h = (1 - np.exp(-tmid / spec.decay_frames)) / (1 - math.exp(-max(n_frames, 1) / spec.decay_frames))
    return LocalField(shape, modes, a, b, h - h[0])


def local_displacement(field: LocalField, frame: int, x: NDArray, y: NDArray) -> NDArray[np.float64]:
    """d(x, y, frame) in pixels, shape x.shape + (2,) with (dx, dy)."""
    ny, nx = field.shape
    out = np.zeros(np.broadcast(x, y).shape + (2,))
    for (p, q), a, b in zip(field.modes, field.cos_coeff_px, field.sin_coeff_px):
        phi = 2 * math.pi * (p * x / nx + q * y / ny)
        out += np.cos(phi)[..., None] * a + np.sin(phi)[..., None] * b
    return out * field.time_weight[frame]


def shift_filter(
    shape: tuple[int, int], *, start_px: NDArray[np.float64], stop_px: NDArray[np.float64], blur: bool
) -> NDArray[np.complex128]:
    """Fourier filter (rfft2 layout) moving content uniformly from ``start_px`` to ``stop_px`` (x, y).

    Without ``blur`` it is the pure shift to the midpoint. Both are exact for
    images with no content at the Nyquist row and column (the simulator zeroes
    them), where a fractional shift would be ambiguous.
    """
    ny, nx = shape
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.rfftfreq(nx)[None, :]
    mid = 0.5 * (np.asarray(start_px) + np.asarray(stop_px))
    # separable ramps in double precision, combined in single precision (phase error < 1e-5 rad)
    ramp_x = np.exp(-2j * math.pi * fx * mid[0]).astype(np.complex64)
    ramp_y = np.exp(-2j * math.pi * fy * mid[1]).astype(np.complex64)
    filt = ramp_y * ramp_x
    if blur:
        d = np.asarray(stop_px) - np.asarray(start_px)
        arg = (fx * d[0]).astype(np.float32) + (fy * d[1]).astype(np.float32)
        arg *= np.float32(math.pi)
        safe = np.where(arg == 0, np.float32(1.0), arg)
        filt *= np.where(arg == 0, np.float32(1.0), np.sin(safe) / safe)
    return filt


def apply_local_deformation(image: NDArray[np.float64], field: LocalField, frame: int) -> NDArray[np.float64]:
    """Resample ``image`` so pixel (x, y) shows the content at (x, y) − d(x, y, frame).

    Cubic-spline interpolation with periodic wrap (scipy.ndimage.map_coordinates,
    order 3). The local field is smooth and small (≲ 1–2 px), so the error is a
    small loss of the highest frequencies; the global part is applied exactly
    in Fourier space before this.
    """
    if field.time_weight[frame] == 0:
        return image
    ny, nx = image.shape
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    d = local_displacement(field, frame, x, y)
    coords = np.stack([y - d[..., 1], x - d[..., 0]])
    return ndimage.map_coordinates(image, coords, order=3, mode="grid-wrap")
