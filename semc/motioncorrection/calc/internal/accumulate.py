"""Numba kernel for the Fourier summation pass: shifted and weighted accumulation.

Public wrappers check their inputs and call private ``_kernel`` functions; each
kernel has a slow numpy twin in ``tests/motioncorrection/naive.py``.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal._jit import NJIT_PARALLEL_OPTIONS

__all__ = ["radial_bin_index", "accumulate_shifted"]

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
