"""Slow, obvious twins of the simulation's numba kernels (style convention 9)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def poisson_by_inversion(lam, u):
    """Smallest k with F(k; λ) >= u, from scipy's Poisson quantile function."""
    return stats.poisson.ppf(u, lam).astype(np.int64)
