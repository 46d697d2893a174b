"""The one place that sets numba options for the simulation kernels."""

from __future__ import annotations

#: options for every ``@njit`` kernel of this package (compiled code cached between processes)
NJIT_OPTIONS: dict[str, bool] = {"cache": True, "nogil": True, "fastmath": False}

#: options for kernels that loop over rows with ``prange`` (results do not depend on the thread count)
NJIT_PARALLEL_OPTIONS: dict[str, bool] = {**NJIT_OPTIONS, "parallel": True}
