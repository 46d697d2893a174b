"""Ground truth as JSON-ready dicts (one file per exposure), with conventions spelled out."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from semc.simulation.movie import MovieTruth

__all__ = ["movie_truth_dict", "euler_zyz_degree_from_matrix", "json_write"]

TRUTH_FORMAT = "semc-simulation-truth/1"


def euler_zyz_degree_from_matrix(rot: np.ndarray) -> tuple[float, float, float]:
    """ZYZ Euler angles (rot, tilt, psi) in degrees with R = Rz(psi) · Ry(tilt) · Rz(rot).

    Rz(a) = [[cos a, −sin a, 0], [sin a, cos a, 0], [0, 0, 1]] and
    Ry(b) = [[cos b, 0, sin b], [0, 1, 0], [−sin b, 0, cos b]] (active rotations).
    The rotation matrix itself is always written beside the angles.
    """
    r = np.asarray(rot, dtype=float)
    tilt = math.acos(max(-1.0, min(1.0, r[2, 2])))
    if abs(math.sin(tilt)) > 1e-8:
        rot_a = math.atan2(r[2, 1], -r[2, 0])
        psi = math.atan2(r[1, 2], r[0, 2])
    else:
        rot_a = 0.0
        psi = math.atan2(r[1, 0], r[0, 0])
    return math.degrees(rot_a), math.degrees(tilt), math.degrees(psi)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def movie_truth_dict(truth: "MovieTruth", paths: dict[str, str | None]) -> dict:
    """The ground-truth record of one exposure."""
    spec = truth.spec
    shifts = truth.trajectory.shifts_px
    place = truth.placement
    return {
        "format": TRUTH_FORMAT,
        "seed": truth.seed,
        "paths": {k: v for k, v in paths.items() if v is not None},
        "spec": _plain(spec),
        "conventions": {
            "array_axes": "frames are (frame, y=row, x=column); row 0 is the first row as written",
            "shift": "shift_x_px[i], shift_y_px[i] = mean displacement of the specimen during frame i minus "
                     "that during frame 0, in movie pixels; +x towards increasing column, +y towards "
                     "increasing row; a motion corrector must apply -shift[i] to frame i to align it onto "
                     "frame 0",
            "defocus": "Angstrom, positive = underfocus; defocus1 along the astigmatism azimuth (CTFFIND)",
            "astigmatism_azimuth": "degrees from the x axis (columns) towards the y axis (rows)",
            "amplitude_contrast": "fraction w, entering the CTF as the phase arctan(w/sqrt(1-w^2))",
            "phase_shift": "radians, additional phase shift of scattered relative to unscattered waves",
            "gain": "gain reference is multiplicative: corrected = raw * gain (0 = dead pixel)",
            "particle_position": "Angstrom in the lab frame: x along columns, y along rows, z towards the "
                                 "electron source, origin at pixel (ny//2, nx//2) and the ice mid-plane; "
                                 "local defocus of a particle = defocus + z",
            "particle_rotation": "r_lab = R @ r_model + centre; euler_zyz_degree = (rot, tilt, psi) with R = Rz(psi) Ry(tilt) Rz(rot), active",
            "clean_reference_sum": "sum over frames of the noise-free expected electrons per pixel with no "
                                   "motion (no shift, blur or local deformation), with radiation damage, "
                                   "without detector sensitivity or defects",
        },
        "pixel_size_angstrom": spec.pixel_size_angstrom,
        "voltage_kv": spec.optics.voltage_kv,
        "n_frames": spec.n_frames,
        "frame_dose_e_per_a2": truth.frame_dose_e_per_a2.tolist(),
        "total_dose_e_per_a2": float(truth.frame_dose_e_per_a2.sum()),
        "zero_loss_fraction": truth.zero_loss_fraction,
        "ctf": {
            "defocus1_angstrom": spec.optics.defocus1_angstrom,
            "defocus2_angstrom": spec.optics.defocus2_angstrom,
            "astigmatism_azimuth_degree": spec.optics.astigmatism_azimuth_degree,
            "phase_shift_radian": spec.optics.phase_shift_radian,
            "amplitude_contrast": spec.optics.amplitude_contrast,
            "cs_mm": spec.optics.cs_mm,
            "voltage_kv": spec.optics.voltage_kv,
        },
        "trajectory": {
            "shift_x_px": shifts[:, 0].tolist(),
            "shift_y_px": shifts[:, 1].tolist(),
            "knots_x_px": truth.trajectory.knots_px[:, 0].tolist(),
            "knots_y_px": truth.trajectory.knots_px[:, 1].tolist(),
            "knots": "absolute displacement at frame boundaries t=0..n (frames); piecewise linear in between",
        },
        "local_motion": None if truth.local_field is None else truth.local_field.to_dict(),
        "detector": {
            "hot_pixels_xy": truth.detector.hot_pixels_xy.tolist(),
            "dead_columns": truth.detector.dead_columns.tolist(),
            "gain_mean": float(truth.detector.gain_reference.mean()),
        },
        "particles": [
            {
                "model": place.model_names[int(place.model_index[k])],
                "centre_angstrom_xyz": place.centres_angstrom[k].tolist(),
                "rotation_matrix": place.rotations[k].tolist(),
                "euler_zyz_degree": list(euler_zyz_degree_from_matrix(place.rotations[k])),
                "defocus_angstrom": spec.optics.defocus1_angstrom / 2 + spec.optics.defocus2_angstrom / 2
                + float(place.centres_angstrom[k][2]),
            }
            for k in range(len(place.model_index))
        ],
    }


def json_write(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically (temporary name, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
