"""Numba kernels of the CTF search (private; checked wrappers live in :mod:`search`)."""

from __future__ import annotations

import math

import numba
import numpy as np

#: numba options of this package's kernels (compiled code cached between processes)
NJIT_OPTIONS: dict[str, bool] = {"cache": True, "nogil": True, "fastmath": False}


@numba.njit(**NJIT_OPTIONS)
def _score_kernel(
    g2: np.ndarray,  # (n,) 1/Å^2
    g2c: np.ndarray,  # (n,) g2 * cos(2 theta)
    g2s: np.ndarray,  # (n,) g2 * sin(2 theta)
    base: np.ndarray,  # (n,) phase terms that do not depend on the candidate (rad)
    data: np.ndarray,  # (n,) zero-mean spectrum values
    coefficients: np.ndarray,  # (m, 4): pi*lambda*mean, pi*lambda*x, pi*lambda*y, phase shift
) -> np.ndarray:
    """(m, 3) sums of |sin chi|, |sin chi|^2 and |sin chi| * data for each candidate."""
    m = coefficients.shape[0]
    out = np.zeros((m, 3))
    for j in range(m):
        cm, cx, cy, phase = coefficients[j, 0], coefficients[j, 1], coefficients[j, 2], coefficients[j, 3]
        s1 = 0.0
        s2 = 0.0
        sd = 0.0
        for i in range(g2.size):
            value = abs(math.sin(cm * g2[i] + cx * g2c[i] + cy * g2s[i] + base[i] + phase))
            s1 += value
            s2 += value * value
            sd += value * data[i]
        out[j, 0] = s1
        out[j, 1] = s2
        out[j, 2] = sd
    return out


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _grid_sums_kernel(
    g2: np.ndarray,  # (n,) 1/Å^2
    g2c: np.ndarray,  # (n,) g2 * cos(2 theta)
    g2s: np.ndarray,  # (n,) g2 * sin(2 theta)
    base: np.ndarray,  # (n,) candidate-independent phase (rad), phase shift included
    data: np.ndarray,  # (n,) zero-mean spectrum values
    coefficient: float,  # pi * lambda
    mean_first: float,  # mean defocus of grid column 0 (Å)
    mean_step: float,  # step between grid columns (Å)
    n_means: int,
    x: np.ndarray,  # (m,) astigmatism x of each grid row (Å)
    y: np.ndarray,  # (m,) astigmatism y of each grid row (Å)
    first: np.ndarray,  # (m,) first valid column of each row
    stop: np.ndarray,  # (m,) one past the last valid column of each row
) -> np.ndarray:
    """(m, n_means, 3) sums of |sin chi|, |sin chi|^2 and |sin chi| * data over a (x, y) x mean grid.

    Along a row the mean defocus grows by ``mean_step``, so chi of every pixel grows by a
    constant per pixel: sin chi is advanced by a rotation (no transcendental call in the
    inner loop). Columns outside [first, stop) are left at zero.
    """
    n = g2.size
    m = x.size
    out = np.zeros((m, n_means, 3))
    rotation_cos = np.empty(n)
    rotation_sin = np.empty(n)
    for i in range(n):
        rotation_cos[i] = math.cos(coefficient * mean_step * g2[i])
        rotation_sin[i] = math.sin(coefficient * mean_step * g2[i])
    real = np.empty(n)
    imaginary = np.empty(n)
    for k in range(m):
        if stop[k] <= first[k]:
            continue
        mean = mean_first + first[k] * mean_step
        for i in range(n):
            chi = coefficient * (mean * g2[i] + x[k] * g2c[i] + y[k] * g2s[i]) + base[i]
            real[i] = math.cos(chi)
            imaginary[i] = math.sin(chi)
        for j in range(first[k], stop[k]):
            s1 = 0.0
            s2 = 0.0
            sd = 0.0
            for i in range(n):
                value = abs(imaginary[i])
                s1 += value
                s2 += value * value
                sd += value * data[i]
                advanced = real[i] * rotation_cos[i] - imaginary[i] * rotation_sin[i]
                imaginary[i] = real[i] * rotation_sin[i] + imaginary[i] * rotation_cos[i]
                real[i] = advanced
            out[k, j, 0] = s1
            out[k, j, 1] = s2
            out[k, j, 2] = sd
    return out
