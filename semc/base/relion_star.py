"""A RELION-compatible view of a run: ``corrected_micrographs.star`` and ``micrographs_ctf.star``.

Pure table builders plus one atomic writer (via ``starfile``), so that RELION or any STAR
reader can pick a live run up at any moment (the file is replaced, never half-written).
Column meanings follow RELION 3.1: defoci in Å, angle in degrees, motion in Å.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import starfile

__all__ = ["Optics", "accumulated_motion_angstrom", "corrected_micrographs_table", "micrographs_ctf_table",
           "star_write"]


@dataclass(frozen=True, slots=True)
class Optics:
    pixel_size_angstrom: float  # of the micrographs
    original_pixel_size_angstrom: float  # of the movies
    voltage_kv: float
    cs_mm: float
    amplitude_contrast: float

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({
            "rlnOpticsGroupName": ["opticsGroup1"], "rlnOpticsGroup": [1],
            "rlnMicrographOriginalPixelSize": [self.original_pixel_size_angstrom],
            "rlnVoltage": [self.voltage_kv], "rlnSphericalAberration": [self.cs_mm],
            "rlnAmplitudeContrast": [self.amplitude_contrast], "rlnMicrographPixelSize": [self.pixel_size_angstrom],
        })


def accumulated_motion_angstrom(positions_px: Sequence[tuple[float, float]], *, pixel_size_angstrom: float,
                                dose_per_frame: float | None, initial_dose: float = 0.0,
                                early_cutoff_e_per_a2: float = 4.0) -> tuple[float, float, float]:
    """RELION's total, early and late accumulated motion (Å): frame-to-frame distances summed over all
    frames, over frames whose accumulated dose is within the early cutoff, and over the rest."""
    steps = [math.dist(a, b) * pixel_size_angstrom for a, b in zip(positions_px, positions_px[1:])]
    total = float(sum(steps))
    if not dose_per_frame:
        return total, 0.0, total
    early = float(sum(s for i, s in enumerate(steps)
                      if initial_dose + dose_per_frame * (i + 1) <= early_cutoff_e_per_a2))
    return total, early, total - early


def corrected_micrographs_table(rows: Sequence[dict]) -> pd.DataFrame:
    """rows: micrograph (path), total, early, late (Å)."""
    return pd.DataFrame({
        "rlnMicrographName": [r["micrograph"] for r in rows], "rlnOpticsGroup": [1] * len(rows),
        "rlnAccumMotionTotal": [r["total"] for r in rows], "rlnAccumMotionEarly": [r["early"] for r in rows],
        "rlnAccumMotionLate": [r["late"] for r in rows],
    })


def micrographs_ctf_table(rows: Sequence[dict]) -> pd.DataFrame:
    """rows: micrograph, ctf_image, defocus_u, defocus_v (Å), angle (deg), figure_of_merit, max_resolution (Å)."""
    return pd.DataFrame({
        "rlnMicrographName": [r["micrograph"] for r in rows], "rlnOpticsGroup": [1] * len(rows),
        "rlnCtfImage": [r["ctf_image"] for r in rows], "rlnDefocusU": [r["defocus_u"] for r in rows],
        "rlnDefocusV": [r["defocus_v"] for r in rows],
        "rlnCtfAstigmatism": [abs(r["defocus_u"] - r["defocus_v"]) for r in rows],
        "rlnDefocusAngle": [r["angle"] for r in rows], "rlnCtfFigureOfMerit": [r["figure_of_merit"] for r in rows],
        "rlnCtfMaxResolution": [r["max_resolution"] for r in rows],
    })


def star_write(path: str | os.PathLike, optics: Optics, micrographs: pd.DataFrame) -> None:
    """Write ``data_optics`` and ``data_micrographs`` atomically (temporary name, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    starfile.write({"optics": optics.table(), "micrographs": micrographs}, tmp, float_format="%.6f", sep=" ")
    os.replace(tmp, path)
