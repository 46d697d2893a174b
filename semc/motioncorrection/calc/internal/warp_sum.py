"""Fused local-motion summation: warp every frame and accumulate weighted real-space sums.

One pass over the raw frames, output row by output row: each frame's row is
detector-corrected and resampled (bilinear, edges clamped) along its total
motion (global shift plus the smooth local model), then added with one real
coefficient per accumulator to ``m`` running sums. The dose-weighted sum is
later formed from a few of these sums in Fourier space (a low-rank expansion
of the dose weights over frames, `semc.motioncorrection.calc.internal.dose`),
so the movie needs ``m`` full-size FFTs instead of one per frame.

Along a row the motion is a quadratic in x; it is held constant over segments
short enough that it changes by at most ``2 * tolerance_px`` within one, and
evaluated at the segment centre, so every sample lies within ``tolerance_px``
of its exact position. With the motion constant over a segment the four
bilinear weights are too, and the inner loop is four contiguous streams
(vectorised by LLVM). Slow numpy twin: ``tests/motioncorrection/naive.py``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal._jit import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS

__all__ = ["warp_accumulate", "DEFAULT_TOLERANCE_PX"]

#: largest distance (pixels) between a sample and its exact position
DEFAULT_TOLERANCE_PX = 0.005

_KERNEL_OPTIONS = {**NJIT_PARALLEL_OPTIONS, "fastmath": True}
_SPAN_OPTIONS = {**NJIT_OPTIONS, "fastmath": True}


@numba.njit(**_SPAN_OPTIONS)
def _clamped_span(frames, f, y, sx, sy, xa, xb, gain, offset, mode, row):  # pragma: no cover - jitted
    # samples that fall outside the frame are clamped into it (as RELION does)
    ny = frames.shape[1]
    nx = frames.shape[2]
    py = min(max(y + sy, 0.0), ny - 1.0)
    y0 = min(int(py), ny - 2)
    fy = np.float32(py - y0)
    for x in range(xa, xb):
        px = min(max(x + sx, 0.0), nx - 1.0)
        x0 = min(int(px), nx - 2)
        fx = np.float32(px - x0)
        val = np.float32(0.0)
        for dy in range(2):
            wy = fy if dy else np.float32(1.0) - fy
            for dx in range(2):
                wx = fx if dx else np.float32(1.0) - fx
                q = np.float32(frames[f, y0 + dy, x0 + dx])
                if mode >= 1:
                    q *= gain[y0 + dy, x0 + dx]
                if mode == 2:
                    q -= offset[y0 + dy, x0 + dx]
                val += wy * wx * q
        row[x] = val


@numba.njit(**_KERNEL_OPTIONS)
def _warp_accumulate(frames, index, coef, weights, gain, offset, mode, tol, acc):  # pragma: no cover
    # mode 0: raw; 1: raw * gain; 2: raw * gain - offset (offset = dark * gain)
    n = index.shape[0]
    m = weights.shape[1]
    ny = frames.shape[1]
    nx = frames.shape[2]
    inv_nx = 1.0 / nx
    for y in numba.prange(ny):
        row = np.empty(nx, dtype=np.float32)
        v = y / ny - 0.5
        for j in range(n):
            f = index[j]
            a_x = coef[j, 0, 0] + coef[j, 0, 3] * v + coef[j, 0, 4] * v * v
            b_x = coef[j, 0, 1] + coef[j, 0, 5] * v
            c_x = coef[j, 0, 2]
            a_y = coef[j, 1, 0] + coef[j, 1, 3] * v + coef[j, 1, 4] * v * v
            b_y = coef[j, 1, 1] + coef[j, 1, 5] * v
            c_y = coef[j, 1, 2]
            # |d motion / dx| <= (|b| + |c|) / nx on the row (u in [-0.5, 0.5])
            slope = max(abs(b_x) + abs(c_x), abs(b_y) + abs(c_y)) * inv_nx
            seg = nx
            if slope * nx > 2.0 * tol:
                seg = max(1, int(2.0 * tol / slope))
            xa = 0
            while xa < nx:
                xb = min(nx, xa + seg)
                u = 0.5 * (xa + xb - 1) * inv_nx - 0.5
                sx = a_x + (b_x + c_x * u) * u
                sy = a_y + (b_y + c_y * u) * u
                ix = int(math.floor(sx))
                iy = int(math.floor(sy))
                r0 = y + iy
                # x whose four samples all lie inside the frame: 0 <= x + ix and x + ix + 1 <= nx - 1
                lo = xa
                hi = xa
                if r0 >= 0 and r0 + 1 < ny:
                    lo = min(max(xa, -ix), xb)
                    hi = max(min(xb, nx - 1 - ix), lo)
                if lo > xa:
                    _clamped_span(frames, f, y, sx, sy, xa, lo, gain, offset, mode, row)
                if hi < xb:
                    _clamped_span(frames, f, y, sx, sy, hi, xb, gain, offset, mode, row)
                length = hi - lo
                if length > 0:
                    s0 = lo + ix
                    fx = np.float32(sx - ix)
                    fy = np.float32(sy - iy)
                    w00 = (np.float32(1.0) - fx) * (np.float32(1.0) - fy)
                    w01 = fx * (np.float32(1.0) - fy)
                    w10 = (np.float32(1.0) - fx) * fy
                    w11 = fx * fy
                    p0 = frames[f, r0, s0 : s0 + length + 1]
                    p1 = frames[f, r0 + 1, s0 : s0 + length + 1]
                    out = row[lo:hi]
                    if mode == 0:
                        for t in range(length):
                            out[t] = (w00 * np.float32(p0[t]) + w01 * np.float32(p0[t + 1])
                                      + w10 * np.float32(p1[t]) + w11 * np.float32(p1[t + 1]))
                    elif mode == 1:
                        g0 = gain[r0, s0 : s0 + length + 1]
                        g1 = gain[r0 + 1, s0 : s0 + length + 1]
                        for t in range(length):
                            out[t] = (w00 * (np.float32(p0[t]) * g0[t]) + w01 * (np.float32(p0[t + 1]) * g0[t + 1])
                                      + w10 * (np.float32(p1[t]) * g1[t]) + w11 * (np.float32(p1[t + 1]) * g1[t + 1]))
                    else:
                        g0 = gain[r0, s0 : s0 + length + 1]
                        g1 = gain[r0 + 1, s0 : s0 + length + 1]
                        o0 = offset[r0, s0 : s0 + length + 1]
                        o1 = offset[r0 + 1, s0 : s0 + length + 1]
                        for t in range(length):
                            out[t] = (w00 * (np.float32(p0[t]) * g0[t] - o0[t])
                                      + w01 * (np.float32(p0[t + 1]) * g0[t + 1] - o0[t + 1])
                                      + w10 * (np.float32(p1[t]) * g1[t] - o1[t])
                                      + w11 * (np.float32(p1[t + 1]) * g1[t + 1] - o1[t + 1]))
                xa = xb
            for k in range(m):
                c = np.float32(weights[j, k])
                if c != 0.0:
                    dst = acc[k, y]
                    for x in range(nx):
                        dst[x] += c * row[x]


def warp_accumulate(
    frames: NDArray[np.generic],
    *,
    frame_index: NDArray[np.integer],
    coefficients: NDArray[np.floating],
    weights: NDArray[np.floating],
    gain: NDArray[np.float32] | None = None,
    dark: NDArray[np.float32] | None = None,
    tolerance_px: float = DEFAULT_TOLERANCE_PX,
) -> NDArray[np.float32]:
    """Weighted sums of detector-corrected frames resampled to undo their motion.

    ``acc[k] = sum_j weights[j, k] * W_j`` where ``W_j[y, x] = C_f(y + m_y, x + m_x)``
    is frame ``f = frame_index[j]`` corrected as ``(raw - dark) * gain`` and sampled
    (bilinear, clamped at the edges) at its content motion
    ``m = (1, u, u^2, v, v^2, u v) @ coefficients[j, axis]``, u = x/nx - 0.5, v = y/ny - 0.5.

    Parameters
    ----------
    frames
        Shape (n_all, ny, nx), any real dtype, C-contiguous; ny, nx >= 2.
    frame_index
        Shape (n,): frames to use, in order.
    coefficients
        Shape (n, 2, 6): per frame, x then y motion coefficients (pixels).
    weights
        Shape (n, m): real coefficient of each frame in each of the ``m`` sums.
    gain, dark
        Shape (ny, nx) float32 references, or None.
    tolerance_px
        Largest allowed distance between a sample and its exact position (> 0).

    Returns
    -------
    ndarray
        Shape (m, ny, nx) float32.

    Raises
    ------
    ValueError
        On wrong shapes, dtypes, indices or tolerance.
    """
    if frames.ndim != 3 or not frames.flags.c_contiguous:
        raise ValueError("frames must be a C-contiguous 3-D array")
    n_all, ny, nx = frames.shape
    if ny < 2 or nx < 2:
        raise ValueError("frames must be at least 2x2")
    index = np.ascontiguousarray(frame_index, dtype=np.int64)
    coef = np.ascontiguousarray(coefficients, dtype=np.float64)
    w = np.ascontiguousarray(weights, dtype=np.float32)
    n = index.shape[0]
    if index.ndim != 1 or (n and (index.min() < 0 or index.max() >= n_all)):
        raise ValueError(f"frame_index must be a 1-D array of indices below {n_all}")
    if coef.shape != (n, 2, 6):
        raise ValueError(f"coefficients must have shape ({n}, 2, 6), got {coef.shape}")
    if w.ndim != 2 or w.shape[0] != n or w.shape[1] < 1:
        raise ValueError(f"weights must have shape ({n}, m >= 1), got {w.shape}")
    if not np.all(np.isfinite(coef)) or not np.all(np.isfinite(w)):
        raise ValueError("coefficients and weights must be finite")
    if not tolerance_px > 0:
        raise ValueError(f"tolerance_px must be > 0, got {tolerance_px}")
    for name, ref in (("gain", gain), ("dark", dark)):
        if ref is not None and (ref.shape != (ny, nx) or ref.dtype != np.float32 or not ref.flags.c_contiguous):
            raise ValueError(f"{name} must be a C-contiguous float32 array of the frame's shape {(ny, nx)}")
    empty = np.zeros((1, 1), np.float32)
    if dark is not None:
        g = gain if gain is not None else np.ones((ny, nx), np.float32)
        mode, offset = 2, dark * g
    elif gain is not None:
        g, mode, offset = gain, 1, empty
    else:
        g, mode, offset = empty, 0, empty
    acc = np.zeros((w.shape[1], ny, nx), dtype=np.float32)
    _warp_accumulate(frames, index, coef, w, g, offset, mode, float(tolerance_px), acc)
    return acc
