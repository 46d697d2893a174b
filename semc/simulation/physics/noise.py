"""Shot noise: Poisson counts by inversion of uniform variates (a numba kernel behind a checked wrapper).

For each pixel, k is the smallest integer with F(k; λ) ≥ u, F the Poisson
cumulative distribution and u a uniform variate from the caller's numpy
Generator. The kernel is a pure function of (λ, u), so results do not depend
on the number of threads. Pixels with λ above ``INVERSION_MAX_LAMBDA`` (where
the sequential search gets long) are drawn with ``Generator.poisson`` instead.
numpy's own sampler costs about 100 ns per pixel at λ ≈ 1 on our machine;
inversion about 10–20 ns, in parallel over rows.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from semc.simulation.physics._jit import NJIT_PARALLEL_OPTIONS

__all__ = ["poisson_counts", "INVERSION_MAX_LAMBDA"]

INVERSION_MAX_LAMBDA = 60.0


@numba.njit(**NJIT_PARALLEL_OPTIONS)
def _poisson_inversion_kernel(lam, u, out):  # pragma: no cover - compiled
    ny, nx = lam.shape
    for y in numba.prange(ny):
        for x in range(nx):
            m = lam[y, x]
            if m <= 0.0:
                out[y, x] = 0
                continue
            p = math.exp(-m)
            f = p
            k = 0
            uu = u[y, x]
            while uu > f and k < 1000:
                k += 1
                p *= m / k
                f += p
                if p == 0.0 and f < uu:  # numerical end of the tail
                    break
            out[y, x] = k


def poisson_counts(rng: np.random.Generator, lam: NDArray[np.floating]) -> NDArray[np.int64]:
    """Poisson counts of mean ``lam`` (2-D, λ ≥ 0), shape of ``lam``, int64.

    Raises
    ------
    ValueError
        ``lam`` is not 2-D, or holds a negative or non-finite value.
    """
    lam = np.asarray(lam)
    lam = np.ascontiguousarray(lam, dtype=lam.dtype if lam.dtype in (np.float32, np.float64) else np.float64)
    if lam.ndim != 2:
        raise ValueError(f"pass a 2-D array of means, got shape {lam.shape}")
    if not np.all(np.isfinite(lam)) or lam.size and lam.min() < 0:
        raise ValueError("Poisson means must be finite and >= 0")
    u = rng.random(lam.shape)
    out = np.empty(lam.shape, dtype=np.int64)
    _poisson_inversion_kernel(lam, u, out)
    big = lam > INVERSION_MAX_LAMBDA
    if big.any():
        out[big] = rng.poisson(lam[big])
    return out
