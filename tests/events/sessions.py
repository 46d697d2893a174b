"""Simulated sessions at the level QC reads: per-exposure results with realistic scatter, and injected
faults (defocus creeping away from target, ice getting thicker, a bad grid square, a failure burst).

Scatter follows what a 300 kV session of a well-behaved sample gives: autofocus to ±0.06 µm of target
with a small constant offset, astigmatism ~250 ± 120 Å, CTF-fit resolution ~3.6 Å worsening with ice,
total drift ~12 ± 3 Å, ice 35 ± 4 nm (Leginon's zero-loss measurement; ±2.5 nm of it from square to square).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semc.events.qc import ExposureMetrics

TARGETS_UM = (1.0, 1.5, 2.0, 2.5)


@dataclass(frozen=True)
class Fault:
    kind: str  # defocus_creep | ice_thickening | bad_square | failures
    start: int  # index of the first affected exposure
    length: int = 10**9
    rate: float = 0.0  # per exposure (µm or nm), for the creeping kinds


def simulated_session(n: int, *, seed: int, faults: tuple[Fault, ...] = (), first_id: int = 1000):
    """A list of ExposureMetrics, or ``None`` for an exposure whose processing failed."""
    rng = np.random.default_rng(seed)
    out: list[ExposureMetrics | None] = []
    square_ice = 0.0
    for i in range(n):
        if i % 12 == 0:  # a new grid square every 12 exposures: its ice differs a little
            square_ice = rng.normal(0, 2.5)
        target = TARGETS_UM[i % len(TARGETS_UM)]
        error = 0.05 + rng.normal(0, 0.06)
        ice = 35 + square_ice + rng.normal(0, 3)
        astig = abs(rng.normal(250, 120))
        drift = max(2.0, 12 + rng.normal(0, 3))
        failed = False
        for fault in faults:
            k = i - fault.start
            if not 0 <= k < fault.length:
                continue
            if fault.kind == "defocus_creep":
                error += fault.rate * (k + 1)
            elif fault.kind == "ice_thickening":
                ice += fault.rate * (k + 1)
            elif fault.kind == "bad_square":  # cracked, thick ice: no usable Thon rings
                ice = 170 + rng.normal(0, 15)
                drift += 25
            elif fault.kind == "failures":
                failed = True
        resolution = 3.6 + abs(rng.normal(0, 0.35)) + max(0.0, ice - 35) * 0.03
        if failed:
            out.append(None)
            continue
        out.append(ExposureMetrics(exposure_id=first_id + i, filename=f"sim_{i:05d}", defocus_target_um=target,
                                   defocus_measured_um=target + error, astigmatism_A=astig,
                                   resolution_A=resolution if resolution < 20 else None, drift_total_A=drift,
                                   ice_thickness_nm=ice, ctf_expected=True))
    return out


def monitor_run(monitor, session, first_id: int = 1000):
    """Feed a session through a monitor; returns the observations in order."""
    observations = []
    for i, metrics in enumerate(session):
        observations.append(monitor.observe_failure(first_id + i) if metrics is None else monitor.observe(metrics))
    return observations
