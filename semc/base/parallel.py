"""How many threads the numerical code may use.

One place reads the worker counts so that a Dask worker, a CLI run and a
benchmark agree: ``SEMC_FFT_WORKERS`` for ``scipy.fft`` and
``SEMC_IO_THREADS`` for decoding threads; both default to the CPUs this
process may run on.
"""

from __future__ import annotations

import os

from semc.base.errors import ConfigurationError

__all__ = ["available_cpus", "fft_workers", "io_threads"]


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks, e.g. a Slurm allocation)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _positive_int_from_env(key: str) -> int | None:
    raw = os.environ.get(key)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"{key} must be a positive integer, got {raw!r}", key=key, source="environment"
        ) from None
    if value < 1:
        raise ConfigurationError(
            f"{key} must be a positive integer, got {raw!r}", key=key, source="environment"
        )
    return value


def fft_workers() -> int:
    """Worker count for ``scipy.fft`` (``SEMC_FFT_WORKERS``, default: available CPUs)."""
    return _positive_int_from_env("SEMC_FFT_WORKERS") or available_cpus()


def io_threads() -> int:
    """Thread count for decoding movies (``SEMC_IO_THREADS``, default: available CPUs)."""
    return _positive_int_from_env("SEMC_IO_THREADS") or available_cpus()
