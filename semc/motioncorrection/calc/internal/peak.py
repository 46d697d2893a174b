"""Sub-pixel location of correlation peaks near the origin."""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal._jit import NJIT_PARALLEL_OPTIONS
from semc.motioncorrection.calc.internal.fourier import stack_ramp_axes

__all__ = ["peak_near_origin", "refine_peaks"]


def _parabola_offset(minus: NDArray, centre: NDArray, plus: NDArray) -> NDArray[np.float64]:
    denom = minus - 2.0 * centre + plus
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(denom < 0, 0.5 * (minus - plus) / denom, 0.0)
    return np.clip(off, -0.5, 0.5)


def peak_near_origin(cc: NDArray[np.floating], max_shift_px: int) -> NDArray[np.float64]:
    """Sub-pixel (x, y) of the maximum of periodic correlation maps within +-max_shift_px.

    The integer maximum is refined with a separate three-point parabola along x
    and along y (the neighbours wrap around periodically).

    Parameters
    ----------
    cc
        Shape (n, cy, cx): correlation maps with the zero shift at index (0, 0).
    max_shift_px
        Search radius in map pixels (clipped to fit the map).

    Returns
    -------
    ndarray
        Shape (n, 2), float64: (x, y) positions in map pixels, signed.

    Raises
    ------
    ValueError
        If ``cc`` is not 3-D or ``max_shift_px`` is negative.
    """
    if cc.ndim != 3:
        raise ValueError(f"cc must have shape (n, cy, cx), got {cc.shape}")
    if max_shift_px < 0:
        raise ValueError(f"max_shift_px must be >= 0, got {max_shift_px}")
    n, cy, cx = cc.shape
    wy = int(min(max_shift_px, cy // 2 - 2))
    wx = int(min(max_shift_px, cx // 2 - 2))
    iy = np.arange(-wy - 1, wy + 2) % cy
    ix = np.arange(-wx - 1, wx + 2) % cx
    win = cc[:, iy[:, None], ix[None, :]].astype(np.float64)  # (n, 2wy+3, 2wx+3)
    inner = win[:, 1:-1, 1:-1].reshape(n, -1)
    flat = np.argmax(inner, axis=1)
    py, px = np.unravel_index(flat, (2 * wy + 1, 2 * wx + 1))
    py = py + 1
    px = px + 1
    rows = np.arange(n)
    c0 = win[rows, py, px]
    ox = _parabola_offset(win[rows, py, px - 1], c0, win[rows, py, px + 1])
    oy = _parabola_offset(win[rows, py - 1, px], c0, win[rows, py + 1, px])
    out = np.empty((n, 2), dtype=np.float64)
    out[:, 0] = px - 1 - wx + ox
    out[:, 1] = py - 1 - wy + oy
    return out


@numba.njit(**NJIT_PARALLEL_OPTIONS)
def _newton_sums(prod, fy, fx, ramp_y, ramp_x, out):  # pragma: no cover - jitted
    # gradient and Hessian of c(s) = sum_k h_k Re(P(k) exp(2 pi i k.s)), exp(2 pi i k.s) = ramp_y ramp_x
    n, cy, cxh = prod.shape
    two_pi = 2.0 * np.pi
    last = cxh - 1
    for g in numba.prange(n):
        gx = gy = hxx = hyy = hxy = 0.0
        for y in range(cy):
            ky = fy[y]
            ry = ramp_y[g, y]
            rgx = rgy = rhxx = rhyy = rhxy = 0.0
            for x in range(cxh):
                kx = fx[x]
                h = 1.0 if (x == 0 or x == last) else 2.0
                v = prod[g, y, x] * ry * ramp_x[g, x]
                re = h * v.real
                im = h * v.imag
                rgx += kx * im
                rgy += im
                rhxx += kx * kx * re
                rhyy += re
                rhxy += kx * re
            gx -= rgx
            gy -= ky * rgy
            hxx -= rhxx
            hyy -= ky * ky * rhyy
            hxy -= ky * rhxy
        out[g, 0] = two_pi * gx
        out[g, 1] = two_pi * gy
        out[g, 2] = two_pi * two_pi * hxx
        out[g, 3] = two_pi * two_pi * hyy
        out[g, 4] = two_pi * two_pi * hxy


def refine_peaks(
    cross_spectra: NDArray[np.complex64],
    *,
    freq_y: NDArray[np.floating],
    freq_x: NDArray[np.floating],
    start_px: NDArray[np.floating],
    max_step_px: float,
    steps: int = 2,
) -> NDArray[np.float64]:
    """Sub-pixel maxima of correlations by Newton steps on their Fourier series.

    The correlation of half spectrum P is c(s) = sum_k h_k Re(P(k) exp(2 pi i k.s))
    (h_k = 1 on the first and last column, else 2); its gradient and Hessian are
    sums over the spectrum, so the maximum is refined with every frequency at
    its true weight, with no interpolation of a sampled map (a three-point
    parabola on a map sampled every few pixels weights the frequencies by
    sin(2 pi k h) instead of 2 pi k h, which wastes the high ones).

    Parameters
    ----------
    cross_spectra
        Shape (n, cy, cxh) complex: half spectra of the correlations.
    freq_y, freq_x
        Shapes (cy,), (cxh,): frequencies of the rows and columns (cycles per pixel).
    start_px
        Shape (n, 2): (x, y) starting points near the maxima (pixels).
    max_step_px
        A step longer than this, or at a point that is not a maximum, keeps the
        previous estimate.
    steps
        Newton steps.

    Returns
    -------
    ndarray
        Shape (n, 2): refined (x, y) maxima.
    """
    prod = np.ascontiguousarray(cross_spectra, dtype=np.complex64)
    n = prod.shape[0]
    fy = np.ascontiguousarray(freq_y, dtype=np.float64)
    fx = np.ascontiguousarray(freq_x, dtype=np.float64)
    if prod.ndim != 3 or fy.shape != (prod.shape[1],) or fx.shape != (prod.shape[2],):
        raise ValueError("cross_spectra must be (n, cy, cxh) with matching frequency axes")
    s = np.array(start_px, dtype=np.float64).reshape(n, 2)
    start = s.copy()
    sums = np.empty((n, 5), dtype=np.float64)
    for _ in range(steps):
        ramp_y, ramp_x = stack_ramp_axes(fy, fx, s)
        _newton_sums(prod, fy, fx, ramp_y, ramp_x, sums)
        gx, gy, hxx, hyy, hxy = sums.T
        det = hxx * hyy - hxy * hxy
        ok = (hxx < 0) & (det > 0)
        safe = np.where(ok, det, 1.0)
        dx = -(hyy * gx - hxy * gy) / safe
        dy = -(hxx * gy - hxy * gx) / safe
        new = s + np.stack([dx, dy], axis=1)
        ok &= np.hypot(*(new - start).T) <= max_step_px
        s = np.where(ok[:, None], new, s)
    return s
