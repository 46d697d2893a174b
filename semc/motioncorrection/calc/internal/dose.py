"""Dose weighting after Grant & Grigorieff (2015), with MotionCor's voltage factor.

Critical exposure (Grant & Grigorieff 2015, eLife 4:e06980, fit of their Fig. 3)::

    N_e(k) = (a * k**b + c) * f_kV,   a = 0.245, b = -1.665, c = 2.81  (k in 1/Angstrom)

and the optimal weight of a frame that has seen an accumulated dose D is
``exp(-D / (2 N_e(k)))``. The voltage factor ``f_kV`` follows MotionCor3
(1.0 at >= 300 kV, 0.8 at 200 kV, 0.45 at 120 kV, linear in between).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CRITICAL_EXPOSURE_A",
    "CRITICAL_EXPOSURE_B",
    "CRITICAL_EXPOSURE_C",
    "voltage_factor",
    "critical_exposure_e_per_a2",
    "accumulated_dose_e_per_a2",
    "dose_weights",
    "low_rank_frame_basis",
]

#: Grant & Grigorieff 2015, critical exposure fit N_e = a k^b + c (k in 1/A, N_e in e/A^2)
CRITICAL_EXPOSURE_A = 0.245
CRITICAL_EXPOSURE_B = -1.665
CRITICAL_EXPOSURE_C = 2.81


def voltage_factor(voltage_kv: float) -> float:
    """Scale of the critical exposure at ``voltage_kv`` (MotionCor3 ``GWeightFrame``).

    Raises
    ------
    ValueError
        If the voltage is not positive.
    """
    if not voltage_kv > 0:
        raise ValueError(f"voltage_kv must be > 0, got {voltage_kv}")
    if voltage_kv >= 300:
        return 1.0
    if voltage_kv >= 200:
        return 0.8 + 0.002 * (voltage_kv - 200)
    if voltage_kv >= 120:
        return 0.45 + 0.004375 * (voltage_kv - 120)
    return 0.45


def critical_exposure_e_per_a2(
    spatial_frequency_per_a: NDArray[np.floating], voltage_kv: float
) -> NDArray[np.float64]:
    """Critical exposure N_e(k) in e/A^2 at spatial frequencies ``k`` (1/A); inf at k = 0."""
    k = np.asarray(spatial_frequency_per_a, dtype=np.float64)
    with np.errstate(divide="ignore"):
        ne = CRITICAL_EXPOSURE_A * np.power(k, CRITICAL_EXPOSURE_B) + CRITICAL_EXPOSURE_C
    return ne * voltage_factor(voltage_kv)


def accumulated_dose_e_per_a2(
    frame_dose_e_per_a2: NDArray[np.floating], initial_dose_e_per_a2: float = 0.0
) -> NDArray[np.float64]:
    """Dose seen at the end of each frame: pre-exposure plus the cumulative frame doses."""
    d = np.asarray(frame_dose_e_per_a2, dtype=np.float64)
    if d.ndim != 1 or np.any(d < 0):
        raise ValueError("frame_dose_e_per_a2 must be a 1-D array of non-negative doses")
    return initial_dose_e_per_a2 + np.cumsum(d)


def dose_weights(
    *,
    accumulated_dose_e_per_a2: NDArray[np.floating],
    spatial_frequency_per_a: NDArray[np.floating],
    voltage_kv: float,
) -> NDArray[np.float64]:
    """Per-frame Fourier weights, normalised so that sum_i w_i(k)^2 = n_frames.

    With this normalisation the weighted sum has the noise power of the plain
    sum at every frequency and equals it at k = 0 (where every weight is 1).

    Parameters
    ----------
    accumulated_dose_e_per_a2
        Shape (n,): the dose each frame has seen at its end (e/A^2).
    spatial_frequency_per_a
        Any shape: |k| in 1/A.
    voltage_kv
        Acceleration voltage.

    Returns
    -------
    ndarray
        Shape (n, *k.shape), float64.
    """
    dose = np.asarray(accumulated_dose_e_per_a2, dtype=np.float64)
    ne = critical_exposure_e_per_a2(spatial_frequency_per_a, voltage_kv)
    w = np.exp(-dose.reshape((-1,) + (1,) * ne.ndim) / (2.0 * ne)[None])
    norm = np.sqrt(dose.size / np.maximum(np.sum(w * w, axis=0), 1e-300))
    return w * norm[None]


def low_rank_frame_basis(
    weights: NDArray[np.floating],
    fixed: NDArray[np.floating],
    *,
    tolerance: float = 1e-4,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Few frame combinations that reproduce per-frame weight tables (a low-rank expansion).

    Dose weights ``w_i(k) = exp(-D_i a(k))`` (normalised per frequency) form an
    (n frames x n frequencies) matrix of very low numerical rank: about six
    frame combinations reproduce it to 1e-4. So a weighted sum
    ``sum_i w_i(k) F_i(k)`` equals ``sum_j B_j(k) FFT(sum_i C_ij f_i)(k)`` with
    only ``m`` forward FFTs instead of one per frame.

    Parameters
    ----------
    weights
        Shape (n, L): the weight of each frame in each radial bin.
    fixed
        Shape (n, p): frame combinations that are kept as they are (the plain
        sum's all-ones column, or odd/even indicators); p may be 0.
    tolerance
        Largest allowed absolute error of the reproduced weights (> 0).

    Returns
    -------
    (C, B)
        C shape (n, m): ``fixed`` followed by the added combinations (orthonormal
        among themselves); B shape (m, L) with ``max |C @ B - weights| <= tolerance``.

    Raises
    ------
    ValueError
        On mismatched shapes or a tolerance that is not positive.
    """
    w = np.asarray(weights, dtype=np.float64)
    p = np.asarray(fixed, dtype=np.float64).reshape(w.shape[0], -1)
    if w.ndim != 2 or not tolerance > 0:
        raise ValueError("weights must be 2-D and tolerance > 0")
    if p.shape[1]:
        residual = w - p @ np.linalg.lstsq(p, w, rcond=None)[0]
    else:
        residual = w
    u = np.linalg.svd(residual, full_matrices=False)[0]
    for rank in range(0, u.shape[1] + 1):
        c = np.hstack([p, u[:, :rank]])
        if not c.shape[1]:
            continue
        b = np.linalg.lstsq(c, w, rcond=None)[0]
        if np.max(np.abs(c @ b - w)) <= tolerance:
            return c, b
    return c, b
