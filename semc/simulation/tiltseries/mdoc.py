"""Text outputs of a tilt series: IMOD ``.rawtlt`` and a SerialEM-style ``.mdoc`` (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["MdocSection", "rawtlt_text", "mdoc_text"]

#: a fixed clock, so the same seed writes the same bytes
_EPOCH = datetime(2026, 1, 1, 9, 0, 0)


@dataclass(frozen=True, slots=True)
class MdocSection:
    """One image of the stack, in SerialEM's words (given, i.e. possibly perturbed, values)."""

    z_value: int
    tilt_angle_degree: float
    defocus_um: float  # SerialEM sign: negative = underfocus
    exposure_dose_e_per_a2: float
    prior_record_dose_e_per_a2: float
    acquisition_index: int
    n_sub_frames: int
    sub_frame_path: str | None
    exposure_time_s: float = 1.0


def rawtlt_text(angles_degree: list[float]) -> str:
    """One tilt angle per line (degrees, two decimals), in stack order."""
    return "".join(f"{a:.2f}\n" for a in angles_degree)


def mdoc_text(
    *, image_file: str, image_size: tuple[int, int], pixel_size_angstrom: float, voltage_kv: float,
    sections: list[MdocSection], tilt_axis_angle_degree: float = 0.0, seconds_per_tilt: float = 30.0,
) -> str:
    """A SerialEM-style autodoc: global header, then one ``[ZValue = n]`` section per image.

    ``image_size`` is (nx, ny) as SerialEM writes it. ``DateTime`` follows the
    acquisition order from a fixed start time, ``seconds_per_tilt`` apart.
    """
    nx, ny = image_size
    lines = [
        f"PixelSpacing = {pixel_size_angstrom:g}",
        f"Voltage = {voltage_kv:g}",
        f"ImageFile = {image_file}",
        f"ImageSize = {nx} {ny}",
        "DataMode = 2",
        "",
        f"[T = SerialEM: simulated by semc.simulation  Tilt axis angle = {tilt_axis_angle_degree:g}, "
        "binning = 1  spot = 1  camera = 0]",
        "",
    ]
    for s in sections:
        when = _EPOCH + timedelta(seconds=seconds_per_tilt * s.acquisition_index)
        lines += [
            f"[ZValue = {s.z_value}]",
            f"TiltAngle = {s.tilt_angle_degree:.2f}",
            "StagePosition = 0 0",
            f"Defocus = {s.defocus_um:.4f}",
            f"ExposureDose = {s.exposure_dose_e_per_a2:.4f}",
            f"PriorRecordDose = {s.prior_record_dose_e_per_a2:.4f}",
            f"PixelSpacing = {pixel_size_angstrom:g}",
            f"ExposureTime = {s.exposure_time_s:g}",
            f"RotationAngle = {tilt_axis_angle_degree:g}",
            f"NumSubFrames = {s.n_sub_frames}",
            f"FrameDosesAndNumber = {s.exposure_dose_e_per_a2 / s.n_sub_frames:.4f} {s.n_sub_frames}",
        ]
        if s.sub_frame_path:
            lines.append(f"SubFramePath = {s.sub_frame_path}")
        lines += [f"DateTime = {when.strftime('%d-%b-%y  %H:%M:%S')}", ""]
    return "\n".join(lines) + "\n"
