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
