"""Numba kernels for the summation pass: Fourier accumulation and local warping.

Public wrappers check their inputs and call private ``_kernel`` functions; each
kernel has a slow numpy twin in ``tests/motioncorrection/naive.py``.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal._jit import NJIT_PARALLEL_OPTIONS

__all__ = ["radial_bin_index", "accumulate_shifted", "warp_polynomial"]

#: radial bins per frequency-index unit of the weight look-up table
RADIAL_OVERSAMPLING = 4


def radial_bin_index(ny: int, nx: int) -> NDArray[np.int32]:
    """Index into a radial table for every element of an (ny, nx) half spectrum.

    Bin ``r`` holds |f| = r / (RADIAL_OVERSAMPLING * max(ny, nx)) cycles/pixel
    (nearest bin), so a table of length ``radial_table_length`` covers it.
    """
    fy = np.fft.fftfreq(ny)
    fx = np.arange(nx // 2 + 1) / nx
    f = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    return np.rint(f * RADIAL_OVERSAMPLING * max(ny, nx)).astype(np.int32)


@numba.njit(**NJIT_PARALLEL_OPTIONS)
def _accumulate_shifted(spec, ramp_y, ramp_x, ridx, table, acc, acc_w, use_plain, use_w):  # pragma: no cover
    ny, nxh = spec.shape
    last = table.shape[0] - 1
    for y in numba.prange(ny):
        ry = ramp_y[y]
        for x in range(nxh):
            v = spec[y, x] * ry * ramp_x[x]
            if use_plain:
                acc[y, x] += v
            if use_w:
                r = min(max(ridx[y, x], 0), last)
                acc_w[y, x] += v * table[r]


def accumulate_shifted(
    spectrum: NDArray[np.complex64],
    *,
    ramp_y: NDArray[np.complex64],
    ramp_x: NDArray[np.complex64],
    acc: NDArray[np.complex64] | None,
    weighted: tuple[NDArray[np.complex64], NDArray[np.float32], NDArray[np.int32]] | None = None,
) -> None:
    """acc += spectrum * ramp_y[:, None] * ramp_x; and/or acc_w += same * table[ridx].

    Parameters
    ----------
    spectrum
        Shape (ny, nxh) complex64, C-contiguous: one frame's half spectrum.
    ramp_y, ramp_x
        Shapes (ny,), (nxh,) complex64: the separable phase ramp.
    acc
        Shape (ny, nxh) complex64, updated in place; None to update only ``acc_w``.
    weighted
        (acc_w, table, ridx): weighted accumulator, the frame's radial weight
        table (float32) and the radial bin index (int32, shape (ny, nxh));
        indices beyond the table use its last entry.

    Raises
    ------
    ValueError
        On a wrong shape, dtype or non-contiguous array.
    """
    if acc is None and weighted is None:
        raise ValueError("give acc, weighted, or both")
    arrays = [("spectrum", spectrum, np.complex64, 2), ("ramp_y", ramp_y, np.complex64, 1),
              ("ramp_x", ramp_x, np.complex64, 1)]
    if weighted is not None:
        acc_w, table, ridx = weighted
        arrays += [("acc_w", acc_w, np.complex64, 2), ("table", table, np.float32, 1),
                   ("ridx", ridx, np.int32, 2)]
    if acc is not None:
        arrays.append(("acc", acc, np.complex64, 2))
    for name, arr, dtype, ndim in arrays:
        if arr.dtype != dtype or arr.ndim != ndim or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous {ndim}-D {np.dtype(dtype).name} array")
    ny, nxh = spectrum.shape
    if ramp_y.shape != (ny,) or ramp_x.shape != (nxh,) or (acc is not None and acc.shape != spectrum.shape):
        raise ValueError("spectrum, acc and ramps must agree in shape")
    dummy_c = np.zeros((1, 1), np.complex64)
    if weighted is None:
        _accumulate_shifted(spectrum, ramp_y, ramp_x, np.zeros((1, 1), np.int32),
                            np.zeros(1, np.float32), acc, dummy_c, True, False)
        return
    if acc_w.shape != spectrum.shape or ridx.shape != spectrum.shape:
        raise ValueError("acc_w and ridx must have the spectrum's shape")
    if table.shape[0] < 1:
        raise ValueError("table must not be empty")
    _accumulate_shifted(spectrum, ramp_y, ramp_x, ridx, table,
                        dummy_c if acc is None else acc, acc_w, acc is not None, True)



@numba.njit(**NJIT_PARALLEL_OPTIONS)
def _warp_polynomial(image, cx, cy, out):  # pragma: no cover - jitted
    ny, nx = image.shape
    for y in numba.prange(ny):
        v = y / ny - 0.5
        for x in range(nx):
            u = x / nx - 0.5
            sx = cx[0] + cx[1] * u + cx[2] * u * u + cx[3] * v + cx[4] * v * v + cx[5] * u * v
            sy = cy[0] + cy[1] * u + cy[2] * u * u + cy[3] * v + cy[4] * v * v + cy[5] * u * v
            px = x + sx
            py = y + sy
            px = min(max(px, 0.0), nx - 1.0)
            py = min(max(py, 0.0), ny - 1.0)
            x0 = min(int(px), nx - 2)
            y0 = min(int(py), ny - 2)
            fx = px - x0
            fy = py - y0
            a = image[y0, x0] * (1.0 - fx) + image[y0, x0 + 1] * fx
            b = image[y0 + 1, x0] * (1.0 - fx) + image[y0 + 1, x0 + 1] * fx
            out[y, x] = a * (1.0 - fy) + b * fy


def warp_polynomial(
    image: NDArray[np.float32],
    *,
    coefficients_x: NDArray[np.float64],
    coefficients_y: NDArray[np.float64],
) -> NDArray[np.float32]:
    """Undo a smooth motion field by bilinear interpolation (edges clamped).

    ``out[y, x] = image[y + m_y(x, y), x + m_x(x, y)]`` where the content motion
    m = (1, u, u^2, v, v^2, u v) @ coefficients, u = x/nx - 0.5, v = y/ny - 0.5.

    Parameters
    ----------
    image
        Shape (ny, nx) float32, C-contiguous, ny, nx >= 2.
    coefficients_x, coefficients_y
        Shape (6,): spatial coefficients of the motion at this frame (pixels).

    Returns
    -------
    ndarray
        Shape (ny, nx) float32.

    Raises
    ------
    ValueError
        On wrong shapes or dtypes.
    """
    if image.dtype != np.float32 or image.ndim != 2 or not image.flags.c_contiguous:
        raise ValueError("image must be a C-contiguous 2-D float32 array")
    if min(image.shape) < 2:
        raise ValueError("image must be at least 2x2")
    cx = np.ascontiguousarray(coefficients_x, dtype=np.float64)
    cy = np.ascontiguousarray(coefficients_y, dtype=np.float64)
    if cx.shape != (6,) or cy.shape != (6,):
        raise ValueError("coefficients must have shape (6,)")
    out = np.empty_like(image)
    _warp_polynomial(image, cx, cy, out)
    return out
