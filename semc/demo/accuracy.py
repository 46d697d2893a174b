"""What the demo measured, against the simulator's ground truth (pure: numbers in, dataclasses out).

Per exposure: the drift trajectory the daemon stored (``ApDDFrameTrajectoryData``, motioncorr
positions in pixels, relative to the reference frame) against the simulated one
(``<filename>.truth.json``: ``shift_x_px``/``shift_y_px``, the mean displacement during each frame);
the mean defocus stored in ``ApCtfData`` against the simulated one. Per session: the accuracy,
the latency from the exposure's row to its last step stored, and the throughput.

Accuracy targets are the engine issues' (issue 5, motion correction: global trajectory RMS error
≤ 0.05 px on 1024² movies at ≥ 1 e/px/frame; issue 6, CTF: median |mean-defocus error| ≤ 0.5 %).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DEFOCUS_ERROR_TARGET",
    "DRIFT_RMS_TARGET_PX",
    "ExposureRecord",
    "ExposureReport",
    "SessionReport",
    "drift_path_px",
    "drift_rms_error_px",
    "exposure_report",
    "finite_or_none",
    "session_report",
    "trajectory_grouped",
]

#: issue 5: global trajectory RMS error on 1024² movies at >= 1 e/px/frame (px)
DRIFT_RMS_TARGET_PX = 0.05
#: issue 6: median |mean-defocus error| (fraction)
DEFOCUS_ERROR_TARGET = 0.005


@dataclass(frozen=True, slots=True)
class ExposureRecord:
    """One exposure as read back: its ground truth, what was stored, and its ledger times.

    Trajectories are ``((x, y), ...)`` in movie pixels; defoci in Å; times in epoch seconds.
    ``state`` is the worst ledger state over the steps (``done`` only when every step is done).
    """

    exposure_id: int
    filename: str
    state: str
    truth_shifts_px: tuple[tuple[float, float], ...]
    truth_defocus_angstrom: tuple[float, float]
    stored_shifts_px: tuple[tuple[float, float], ...] | None = None
    stored_defocus_angstrom: tuple[float, float] | None = None
    fit_resolution_angstrom: float | None = None
    arrived_at_s: float | None = None
    stored_at_s: float | None = None
    worker_s: float | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class ExposureReport:
    """One line of the summary table (None where the exposure has no such result)."""

    exposure_id: int
    filename: str
    state: str
    drift_true_px: float
    drift_found_px: float | None
    drift_rms_error_px: float | None
    defocus_true_um: float
    defocus_found_um: float | None
    defocus_error_percent: float | None
    fit_resolution_angstrom: float | None
    latency_s: float | None
    worker_s: float | None
    error: str


@dataclass(frozen=True, slots=True)
class SessionReport:
    """The session's figures: counts, accuracy against the targets, latency, throughput."""

    session: str
    planned: int
    stored: int
    failed: int
    exposures: tuple[ExposureReport, ...]
    drift_rms_error_median_px: float | None
    drift_rms_error_max_px: float | None
    defocus_error_median_percent: float | None
    defocus_error_max_percent: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_max_s: float | None
    throughput_per_min: float | None
    arrival_per_min: float | None
    worker_s_median: float | None
    wall_s: float
    drift_target_px: float = DRIFT_RMS_TARGET_PX
    defocus_target_percent: float = 100 * DEFOCUS_ERROR_TARGET

    @property
    def drift_within_target(self) -> bool | None:
        m = self.drift_rms_error_median_px
        return None if m is None else m <= self.drift_target_px

    @property
    def defocus_within_target(self) -> bool | None:
        m = self.defocus_error_median_percent
        return None if m is None else m <= self.defocus_target_percent

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["drift_within_target"] = self.drift_within_target
        data["defocus_within_target"] = self.defocus_within_target
        return data


def trajectory_grouped(shifts_px: NDArray[np.float64], n_groups: int) -> NDArray[np.float64] | None:
    """The truth per rendered frame: detector frames (EER) averaged in ``n_groups`` equal groups.

    Returns ``shifts_px`` itself when it already has ``n_groups`` frames, None when the frames do
    not split evenly (the comparison would need the exact grouping).
    """
    n = len(shifts_px)
    if n == n_groups:
        return shifts_px
    if n_groups < 1 or n % n_groups:
        return None
    return shifts_px.reshape(n_groups, n // n_groups, 2).mean(axis=1)


def drift_rms_error_px(stored_px: NDArray[np.float64], truth_px: NDArray[np.float64]) -> float:
    """RMS over frames of |stored − truth| after removing the common offset (px).

    The offset is a translation of the whole sum (the reference frame is arbitrary), as in the
    engine's own accuracy tests.
    """
    error = np.asarray(stored_px, dtype=np.float64) - np.asarray(truth_px, dtype=np.float64)
    error -= error.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(error**2, axis=1))))


def drift_path_px(shifts_px: NDArray[np.float64]) -> float:
    """Length of the trajectory: the sum of the frame-to-frame displacements (px)."""
    return float(np.sum(np.linalg.norm(np.diff(np.asarray(shifts_px, dtype=np.float64), axis=0), axis=1)))


def exposure_report(record: ExposureRecord) -> ExposureReport:
    """Compare one exposure's stored results with its ground truth."""
    truth = np.asarray(record.truth_shifts_px, dtype=np.float64).reshape(-1, 2)
    drift_found = drift_error = None
    if record.stored_shifts_px:
        stored = np.asarray(record.stored_shifts_px, dtype=np.float64).reshape(-1, 2)
        drift_found = drift_path_px(stored)
        grouped = trajectory_grouped(truth, len(stored))
        if grouped is not None:
            drift_error = drift_rms_error_px(stored, grouped)
    true_defocus = sum(record.truth_defocus_angstrom) / 2
    found_defocus = error_percent = None
    if record.stored_defocus_angstrom is not None:
        found_defocus = sum(record.stored_defocus_angstrom) / 2
        error_percent = 100 * (found_defocus - true_defocus) / true_defocus
    latency = None
    if record.arrived_at_s is not None and record.stored_at_s is not None:
        latency = record.stored_at_s - record.arrived_at_s
    return ExposureReport(
        exposure_id=record.exposure_id, filename=record.filename, state=record.state,
        drift_true_px=drift_path_px(truth), drift_found_px=drift_found, drift_rms_error_px=drift_error,
        defocus_true_um=true_defocus / 1e4, defocus_found_um=None if found_defocus is None else found_defocus / 1e4,
        defocus_error_percent=error_percent, fit_resolution_angstrom=record.fit_resolution_angstrom,
        latency_s=latency, worker_s=record.worker_s, error=record.error)


def _quantile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    return float(np.quantile(np.asarray(values, dtype=np.float64), q))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def session_report(*, session: str, planned: int, records: list[ExposureRecord], wall_s: float) -> SessionReport:
    """The session's summary from its exposures' records.

    Throughput is the exposures stored per minute from the first arrival to the last store; the
    arrival rate is the microscope's (exposures per minute between the first and last arrival).
    """
    reports = tuple(exposure_report(r) for r in records)
    done = [r for r in reports if r.state == "done"]
    drift = [r.drift_rms_error_px for r in done if r.drift_rms_error_px is not None]
    defocus = [abs(r.defocus_error_percent) for r in done if r.defocus_error_percent is not None]
    latency = [r.latency_s for r in done if r.latency_s is not None]
    arrivals = sorted(r.arrived_at_s for r in records if r.arrived_at_s is not None)
    stores = [r.stored_at_s for r in records if r.state == "done" and r.stored_at_s is not None]
    throughput = None
    if arrivals and stores and max(stores) > arrivals[0]:
        throughput = 60.0 * len(stores) / (max(stores) - arrivals[0])
    arrival_rate = None
    if len(arrivals) > 1 and arrivals[-1] > arrivals[0]:
        arrival_rate = 60.0 * (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return SessionReport(
        session=session, planned=planned, stored=len(done),
        failed=sum(1 for r in reports if r.state in ("failed", "quarantined")), exposures=reports,
        drift_rms_error_median_px=_median(drift), drift_rms_error_max_px=max(drift, default=None),
        defocus_error_median_percent=_median(defocus), defocus_error_max_percent=max(defocus, default=None),
        latency_p50_s=_quantile(latency, 0.5), latency_p95_s=_quantile(latency, 0.95),
        latency_max_s=max(latency, default=None), throughput_per_min=throughput, arrival_per_min=arrival_rate,
        worker_s_median=_median([r.worker_s for r in done if r.worker_s is not None]), wall_s=wall_s)


def finite_or_none(value: float | None) -> float | None:
    """A float that JSON can carry (inf and nan become None)."""
    return None if value is None or not math.isfinite(value) else float(value)
