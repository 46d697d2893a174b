"""The one place that sets numba options for the motion-correction kernels."""

from __future__ import annotations

#: options for every ``@njit`` kernel of this package; ``cache`` keeps the
#: compiled code between processes (first call in a fresh environment compiles)
NJIT_OPTIONS: dict[str, bool] = {"cache": True, "nogil": True, "fastmath": False}

#: options for kernels that loop over rows with ``prange``
NJIT_PARALLEL_OPTIONS: dict[str, bool] = {**NJIT_OPTIONS, "parallel": True}
