"""Classic Appion conventions for aligned images (pure): names, presets and camera geometry.

From appion-compat §2.3: the aligned preset is ``<raw preset>-<label>`` (dose-weighted:
``<raw preset>-<label>-DW``; an image without a preset gets ``ma--<label>``, as classic
Appion writes it); the aligned file name replaces the *last* occurrence of the raw preset
name in the raw file name; the aligned camera geometry follows ``setAlignedCameraEMData``.
"""

from __future__ import annotations

from dataclasses import dataclass

from semc.base.errors import InvalidParameters

__all__ = ["AxisGeometry", "aligned_preset_name", "aligned_filename", "aligned_axis_geometry",
           "use_frames_for_aligned", "motioncorr_positions", "motioncorr_log_text"]


@dataclass(frozen=True, slots=True)
class AxisGeometry:
    """Camera geometry along one axis: pixels at this binning, binning, offset (binned pixels)."""

    dimension: int
    binning: int
    offset: int


def aligned_preset_name(raw_preset: str | None, *, label: str = "a", dose_weighted: bool = False) -> str:
    """``enn`` -> ``enn-a`` / ``enn-a-DW``; no preset -> ``ma--a`` (classic spelling)."""
    if not label or "/" in label:
        raise InvalidParameters(f"invalid align label {label!r}", step="motioncorrection")
    base = f"{raw_preset}-{label}" if raw_preset else f"ma--{label}"
    return f"{base}-DW" if dose_weighted else base


def aligned_filename(raw_filename: str, raw_preset: str | None, aligned_preset: str) -> str:
    """Replace the last occurrence of the raw preset name by the aligned one (else append it)."""
    if raw_preset and raw_preset in raw_filename:
        head, _, tail = raw_filename.rpartition(raw_preset)
        return f"{head}{aligned_preset}{tail}"
    suffix = aligned_preset[len(raw_preset):] if raw_preset else f"-{aligned_preset}"
    return f"{raw_filename}{suffix}"


def aligned_axis_geometry(axis: AxisGeometry, *, extra_bin: int = 1, trim: int = 0,
                          square_dimension: int | None = None) -> AxisGeometry:
    """Geometry of the aligned image along one axis ([C] ``setAlignedCameraEMData``).

    new binning = binning × extra_bin; camera size = (2·offset + dimension) × binning;
    new dimension = dimension × binning / new binning − 2·trim / new binning (with ``square``,
    the dimension is first set to the smaller of the two); new offset =
    (camera size / new binning − new dimension) / 2.
    """
    if extra_bin < 1 or trim < 0:
        raise InvalidParameters(f"bin must be >= 1 and trim >= 0, got {extra_bin}, {trim}", step="motioncorrection")
    dimension = square_dimension if square_dimension is not None else axis.dimension
    new_binning = axis.binning * extra_bin
    camera_size = (2 * axis.offset + axis.dimension) * axis.binning
    new_dimension = (dimension * axis.binning) // new_binning - (2 * trim) // new_binning
    new_offset = (camera_size // new_binning - new_dimension) // 2
    if new_dimension < 1:
        raise InvalidParameters("trim leaves no image", step="motioncorrection")
    return AxisGeometry(dimension=new_dimension, binning=new_binning, offset=new_offset)


def use_frames_for_aligned(summed_frames: tuple[int, ...], n_saved_frames: int) -> tuple[int, ...] | None:
    """``SEQ|use frames`` of the aligned camera row: the summed list, or None when all saved frames were
    summed (Appion issue 12298; not the always-written list of defect D16)."""
    if tuple(summed_frames) == tuple(range(n_saved_frames)):
        return None
    return tuple(summed_frames)


def motioncorr_positions(shifts_px: tuple[tuple[float, float], ...], *, output_bin: float = 1.0
                         ) -> tuple[tuple[float, float], ...]:
    """Frame positions in the motioncorr convention (compat §5.4): negated, re-centred on the frame at
    index n//2, divided by FtBin — pixels of the aligned image."""
    if not shifts_px:
        raise InvalidParameters("no shifts", step="motioncorrection")
    mid_x, mid_y = shifts_px[len(shifts_px) // 2]
    return tuple((-(x - mid_x) / output_bin, -(y - mid_y) / output_bin) for x, y in shifts_px)


def motioncorr_log_text(positions: tuple[tuple[float, float], ...], *, throw: int = 0) -> str:
    """The ``<filename>_st_Log.txt`` myamiweb reads: a header, then one ``Add Frame`` line per position.
    All n positions are written (classic dropped the last two when reading back; documented deviation)."""
    n = len(positions)
    lines = [f"Sum Frame #000 - #{n:03d} (Reference Frame #{n // 2:03d}):"]
    lines += [f"......Add Frame #{i + throw:03d} with xy shift: {x:.5f} {y:.5f}" for i, (x, y) in enumerate(positions)]
    return "\n".join(lines) + "\n"
