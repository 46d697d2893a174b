"""MotionCor2 / MotionCor3 as an external engine: command builder and frame arithmetic (pure).

The argument set and value formats are classic Appion's
(``makeDDAlignMotionCor2_UCSF.py``, compat §5.1 and §5.5), without the
defects of the code SEMC replaces (compat §8):

* every value is its own argv element (``-Bft 500 100`` is three elements;
  D20: MotionCor's float lists read one element per value);
* ``-FtBin`` includes the EER sampling factor (D6);
* no-op flags are omitted as [C] omits them (``-Throw 0``, ``-Trunc 0``,
  ``-Patch 0 0``, a zero dark: D28);
* ``-MaskCent`` / ``-MaskSize`` are never sent: MotionCor2 since 2017
  (1.5.0, 1.6.x) and MotionCor3 no longer have them (absent from their
  parameter echo); [C] sent ``-MaskSize 1.000 1.000`` always;
* the FmIntFile keeps classic's quirk (second line's group size is the full
  raw frame count) because MotionCor reads it that way in production, and its
  name is chosen by the caller (D2 built it with a broken format string).

Log parsing, version detection and the motioncorr-format log are in
`semc.motioncorrection.calc.external_log` and re-exported here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from semc.base.errors import InvalidParameters
from semc.motioncorrection.calc.external_log import (
    AlignStats,
    ClassicMotionRecords,
    FrameTrajectory,
    MotionCorLog,
    MotionCorVersion,
    align_stats_from_positions,
    classic_records_from_log,
    frame_trajectory_from_positions,
    motioncor_log_parse,
    motioncor_version_parse,
    motioncorr_log_positions,
    motioncorr_log_text,
    motioncorr_positions_from_shifts,
)

__all__ = [
    "MotionCor2Params",
    "input_flag_for",
    "motioncor2_command",
    "fmintfile_text",
    "raw_frame_count",
    "rendered_frame_count",
    "raw_dose_per_frame_e_per_a2",
    "fm_dose_e_per_a2",
    "trunc_frame_count",
    "rot_flip_gain",
    "FAKE_EER_DOSE_PER_RAW_FRAME_E_PER_A2",
    # re-exported from external_log
    "MotionCorVersion",
    "MotionCorLog",
    "FrameTrajectory",
    "AlignStats",
    "motioncor_version_parse",
    "motioncor_log_parse",
    "motioncorr_positions_from_shifts",
    "motioncorr_log_text",
    "motioncorr_log_positions",
    "frame_trajectory_from_positions",
    "align_stats_from_positions",
    "ClassicMotionRecords",
    "classic_records_from_log",
]

_STEP = "motioncorrection"

#: [C]'s "fake dose similar to Falcon4EC 7 e/p/s" per raw EER frame when no dose is known
FAKE_EER_DOSE_PER_RAW_FRAME_E_PER_A2 = 0.03


def _bad(message: str) -> InvalidParameters:
    return InvalidParameters(message, step=_STEP)


@dataclass(frozen=True, slots=True)
class MotionCor2Params:
    """The classic Appion MotionCor2 flag set, with every value already resolved.

    Attributes
    ----------
    input_path, output_path
        The movie (its extension picks ``-InMrc``/``-InTiff``/``-InEer``) and
        the aligned sum ``-OutMrc``.
    bfactor_global, bfactor_local
        ``-Bft`` (``--Bft_global``/``--Bft_local``), > 0, sent as integers.
    iterations, tolerance_px
        ``-Iter`` (sent if > 0) and ``-Tol`` (sent if non-zero, ``%.3f``).
    patches_cols, patches_rows
        ``-Patch cols rows`` (sent if either > 0).
    group
        ``--nrw`` → ``-Group`` (sent if non-zero).
    bin
        ``--bin``; ``-FtBin`` = bin × eer_sampling for EER input, sent if > 1.
    eer_sampling
        ``-EerSampling`` (EER input only).
    throw_frames, trunc_frames
        ``-Throw`` / ``-Trunc`` (each sent if > 0).
    fmintfile_path
        ``-FmIntFile`` (see `fmintfile_text`), or None.
    dose_per_frame_e_per_a2, pixel_size_angstrom, voltage_kv
        ``-FmDose -PixSize -kV``, sent together when a dose is given
        (classic ``--doseweight`` with a known dose). ``pixel_size_angstrom``
        is that of the input movie, before ``-FtBin``.
    dark_path, gain_path, defect_map_path
        ``-Dark``, ``-Gain``, ``-DefectMap`` (each sent when given).
    flip_gain, rot_gain
        ``-FlipGain`` (0/1) and ``-RotGain`` (0–3), always sent.
    gpu_ids
        ``-Gpu`` ids, one argv element each, always sent.
    """

    input_path: str
    output_path: str
    bfactor_global: int = 500
    bfactor_local: int = 100
    iterations: int = 7
    tolerance_px: float = 0.5
    patches_cols: int = 0
    patches_rows: int = 0
    group: int = 1
    bin: float = 1.0
    eer_sampling: int = 1
    throw_frames: int = 0
    trunc_frames: int = 0
    fmintfile_path: str | None = None
    dose_per_frame_e_per_a2: float | None = None
    pixel_size_angstrom: float | None = None
    voltage_kv: float | None = None
    dark_path: str | None = None
    gain_path: str | None = None
    defect_map_path: str | None = None
    flip_gain: int = 0
    rot_gain: int = 0
    gpu_ids: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if not self.input_path or not self.output_path:
            raise _bad("input_path and output_path are required")
        if self.bfactor_global <= 0 or self.bfactor_local <= 0:
            raise _bad(f"B-factors must be > 0, got {self.bfactor_global} {self.bfactor_local}")
        for name in ("iterations", "patches_cols", "patches_rows", "group", "throw_frames", "trunc_frames"):
            if getattr(self, name) < 0:
                raise _bad(f"{name} must be >= 0, got {getattr(self, name)}")
        if not (math.isfinite(self.bin) and self.bin >= 1):
            raise _bad(f"bin must be >= 1, got {self.bin}")
        if self.eer_sampling not in (1, 2, 3):
            raise _bad(f"eer_sampling must be 1, 2 or 3, got {self.eer_sampling}")
        if self.flip_gain not in (0, 1) or self.rot_gain not in (0, 1, 2, 3):
            raise _bad(f"flip_gain must be 0/1 and rot_gain 0..3, got {self.flip_gain}, {self.rot_gain}")
        if not self.gpu_ids or min(self.gpu_ids) < 0:
            raise _bad(f"gpu_ids must be non-negative integers, got {self.gpu_ids}")
        if self.dose_per_frame_e_per_a2 is not None:
            if not self.dose_per_frame_e_per_a2 > 0:
                raise _bad(f"dose_per_frame_e_per_a2 must be > 0, got {self.dose_per_frame_e_per_a2}")
            if not (self.pixel_size_angstrom and self.pixel_size_angstrom > 0 and self.voltage_kv
                    and self.voltage_kv > 0):
                raise _bad("dose weighting needs pixel_size_angstrom > 0 and voltage_kv > 0")

    @property
    def is_eer(self) -> bool:
        """True for an ``.eer`` input movie."""
        return input_flag_for(self.input_path) == "-InEer"

    @property
    def ft_bin(self) -> float:
        """``-FtBin``: bin × EER sampling for EER input (D6 fixed), bin otherwise."""
        return self.bin * self.eer_sampling if self.is_eer else self.bin


def input_flag_for(path: str) -> str:
    """``-InTiff`` for ``.tif``/``.tiff``, ``-InEer`` for ``.eer``, else ``-InMrc`` (case-insensitive)."""
    ext = os.path.splitext(path)[1].lower()
    return {".tif": "-InTiff", ".tiff": "-InTiff", ".eer": "-InEer"}.get(ext, "-InMrc")


def motioncor2_command(params: MotionCor2Params, *, executable: str = "motioncor2") -> list[str]:
    """The MotionCor2/MotionCor3 argument list for one movie, classic flag order, one element per value.

    Parameters
    ----------
    params
        The resolved flag set.
    executable
        ``argv[0]`` (the engine registry's configured path).

    Returns
    -------
    list[str]
        E.g. ``["motioncor2", "-InTiff", "m.tif", "-OutMrc", "m_c.mrc", "-Bft", "500", "100", ...]``.
    """
    p = params
    argv = [executable, input_flag_for(p.input_path), p.input_path, "-OutMrc", p.output_path]
    if p.ft_bin > 1:
        argv += ["-FtBin", str(float(p.ft_bin))]
    argv += ["-Bft", f"{p.bfactor_global:d}", f"{p.bfactor_local:d}"]
    if p.throw_frames > 0:
        argv += ["-Throw", f"{p.throw_frames:d}"]
    if p.trunc_frames > 0:
        argv += ["-Trunc", f"{p.trunc_frames:d}"]
    if p.iterations > 0:
        argv += ["-Iter", f"{p.iterations:d}"]
    if p.tolerance_px != 0:
        argv += ["-Tol", f"{p.tolerance_px:.3f}"]
    if p.patches_cols > 0 or p.patches_rows > 0:
        argv += ["-Patch", f"{p.patches_cols:d}", f"{p.patches_rows:d}"]
    if p.group != 0:
        argv += ["-Group", f"{p.group:d}"]
    if p.fmintfile_path:
        argv += ["-FmIntFile", p.fmintfile_path]
    if p.dose_per_frame_e_per_a2 is not None:
        argv += ["-FmDose", f"{p.dose_per_frame_e_per_a2:.3f}", "-PixSize", f"{p.pixel_size_angstrom:.3f}",
                 "-kV", f"{int(p.voltage_kv):d}"]
    for flag, path in (("-Dark", p.dark_path), ("-Gain", p.gain_path), ("-DefectMap", p.defect_map_path)):
        if path:
            argv += [flag, path]
    argv += ["-FlipGain", f"{p.flip_gain:d}", "-RotGain", f"{p.rot_gain:d}"]
    argv += ["-Gpu", *(f"{g:d}" for g in p.gpu_ids)]
    if p.is_eer:
        argv += ["-EerSampling", f"{p.eer_sampling:d}"]
    return argv


def fmintfile_text(*, n_raw_frames: int, rendered_frame_size: int, dose_per_raw_frame_e_per_a2: float) -> str:
    """Classic Appion's FmIntFile (tab-separated ``<raw frames> <raw per rendered> <dose per raw frame>``).

    With ``m = n mod size``: if ``m`` is not 0 the first line is ``m m dose``;
    then always ``n size dose``. The second line's first value is the full raw
    count ``n`` rather than ``n - m`` (classic's quirk, kept for parity: compat
    §5.5). Example: n=1539, size=100, dose=0.032 → ``39 39 0.032`` and
    ``1539 100 0.032``.

    Raises
    ------
    InvalidParameters
        Non-positive counts or a negative dose.
    """
    if n_raw_frames < 1 or rendered_frame_size < 1:
        raise _bad(f"frame counts must be >= 1, got {n_raw_frames}, {rendered_frame_size}")
    if not (math.isfinite(dose_per_raw_frame_e_per_a2) and dose_per_raw_frame_e_per_a2 >= 0):
        raise _bad(f"dose per raw frame must be finite and >= 0, got {dose_per_raw_frame_e_per_a2}")
    dose = f"{dose_per_raw_frame_e_per_a2:.3f}"
    rest = n_raw_frames % rendered_frame_size
    lines = [f"{rest}\t{rest}\t{dose}"] if rest else []
    lines.append(f"{n_raw_frames}\t{rendered_frame_size}\t{dose}")
    return "\n".join(lines) + "\n"


def raw_frame_count(*, nframes: int | None, exposure_time_ms: float | None, frame_time_ms: float | None,
                    camera_name: str | None = None) -> int:
    """Raw frames of a movie from CameraEMData (compat §5.5): never 0.

    K2/K3 (camera name containing ``K2``/``K3``) and a NULL ``nframes`` use
    max(1, int(exposure time / frame time)); otherwise ``nframes``.

    Raises
    ------
    InvalidParameters
        When neither ``nframes`` nor both times are usable.
    """
    is_gatan_k = camera_name is not None and any(k in camera_name.upper() for k in ("K2", "K3"))
    if (is_gatan_k or not nframes) and exposure_time_ms and frame_time_ms and frame_time_ms > 0:
        return max(1, int(exposure_time_ms / frame_time_ms))
    if nframes and nframes > 0:
        return int(nframes)
    raise _bad(f"no frame count: nframes={nframes}, exposure={exposure_time_ms} ms, frame={frame_time_ms} ms")


def rendered_frame_count(n_raw_frames: int, rendered_frame_size: int) -> int:
    """Rendered frames: ``n // size`` plus one for a remainder (classic EER path)."""
    if n_raw_frames < 1 or rendered_frame_size < 1:
        raise _bad(f"frame counts must be >= 1, got {n_raw_frames}, {rendered_frame_size}")
    return n_raw_frames // rendered_frame_size + (1 if n_raw_frames % rendered_frame_size else 0)


def raw_dose_per_frame_e_per_a2(*, total_dose_e_per_a2: float | None, n_raw_frames: int,
                                is_eer: bool) -> float | None:
    """Dose per raw frame: total / raw frames; for EER without a dose, classic's 0.03 e/Å²."""
    if n_raw_frames < 1:
        raise _bad(f"n_raw_frames must be >= 1, got {n_raw_frames}")
    if total_dose_e_per_a2 is None or total_dose_e_per_a2 <= 0:
        return FAKE_EER_DOSE_PER_RAW_FRAME_E_PER_A2 if is_eer else None
    return total_dose_e_per_a2 / n_raw_frames


def fm_dose_e_per_a2(*, total_dose_e_per_a2: float | None, n_raw_frames: int, rendered_frame_size: int = 1,
                     is_eer: bool = False) -> float | None:
    """``-FmDose`` (compat §5.5): dose per rendered frame, None when no dose is known (non-EER).

    Non-EER with ``rendered_frame_size == 1``: total / raw frames. EER (and,
    as in [C], any rendered size > 1): dose per raw frame × rendered size.
    """
    raw = raw_dose_per_frame_e_per_a2(total_dose_e_per_a2=total_dose_e_per_a2, n_raw_frames=n_raw_frames,
                                      is_eer=is_eer or rendered_frame_size > 1)
    if raw is None:
        return None
    return raw * rendered_frame_size if (is_eer or rendered_frame_size > 1) else raw


def trunc_frame_count(*, n_total_frames: int, summed_frames: tuple[int, ...]) -> int:
    """``-Trunc``: total frames − last summed frame − 1 (0 for the full range)."""
    if not summed_frames or max(summed_frames) >= n_total_frames or min(summed_frames) < 0:
        raise _bad(f"summed frames {summed_frames[:3]}... do not fit {n_total_frames} frames")
    return n_total_frames - max(summed_frames) - 1


def rot_flip_gain(*, frame_rotate: int | None, frame_flip: int | bool | None, align: bool,
                  force_cpu_flat: bool, frame_aligner_flat: bool = True) -> tuple[int, int]:
    """(``-RotGain``, ``-FlipGain``): CameraEMData values when MotionCor does the flat field, else (0, 0)."""
    if align and frame_aligner_flat and not force_cpu_flat:
        return int(frame_rotate or 0), int(bool(frame_flip))
    return 0, 0
