"""Python API: correct one movie file and write its sums (used by the daemon's task and the CLI).

Movie, gain and output I/O go through ``semc.base.io`` when it provides what is
needed; until then the private ``_fallback_*`` helpers below read MRC/TIFF
with mrcfile/tifffile directly (marked for removal once the I/O layer lands).
"""

from __future__ import annotations

import logging
import os
import resource
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from semc.base.errors import CorruptInput, InputMissing, InvalidParameters
from semc.base.parallel import fft_workers, io_threads
from semc.motioncorrection.calc.internal.correct import CorrectedMovie, correct_frames
from semc.motioncorrection.calc.internal.frames import FramePreparer, defect_sources, integration_ranges
from semc.motioncorrection.types import GlobalMotion, MotionCorrectionParams, MotionCorrectionResult

logger = logging.getLogger(__name__)

__all__ = ["DetectorReferences", "output_paths_for", "correct_movie_file", "run_correction"]

_STEP = "motioncorrection"
_SUFFIXES = {"sum": "", "dose_weighted": "_DW", "dose_selected": "_DWS", "odd": "_ODD",
             "even": "_EVN", "stack": "_Stk"}


@dataclass(frozen=True, slots=True)
class DetectorReferences:
    """Gain/dark/defect files and the gain geometry (MotionCor flags).

    Attributes
    ----------
    gain_path, dark_path
        ``-Gain`` (multiplicative) and ``-Dark`` (subtracted) references.
    defect_file
        ``-DefectFile``: text lines ``x y w h``.
    defect_map
        ``-DefectMap``: image, odd values (``& 1``) are bad pixels.
    rotation_quarters, flip
        ``-RotGain`` (counter-clockwise quarter turns) then ``-FlipGain`` (1 upside-down, 2 left-right).
    invert_gain
        ``-InvGain``: use 1/gain.
    """

    gain_path: str | None = None
    dark_path: str | None = None
    defect_file: str | None = None
    defect_map: str | None = None
    rotation_quarters: int = 0
    flip: int = 0
    invert_gain: bool = False

    def __post_init__(self) -> None:
        if self.rotation_quarters not in (0, 1, 2, 3):
            raise InvalidParameters(f"RotGain must be 0..3, got {self.rotation_quarters}", step=_STEP)
        if self.flip not in (0, 1, 2):
            raise InvalidParameters(f"FlipGain must be 0, 1 or 2, got {self.flip}", step=_STEP)


def output_paths_for(output_path: str | os.PathLike[str], kinds: list[str]) -> dict[str, str]:
    """MotionCor output names: ``X.mrc`` -> ``X_DW.mrc``, ``X_DWS.mrc``, ``X_ODD.mrc``, ..."""
    p = Path(output_path)
    stem = str(p.with_suffix("")) if p.suffix else str(p)
    return {k: f"{stem}{_SUFFIXES[k]}.mrc" for k in kinds}


def _fallback_read_image(path: str) -> NDArray[np.float32]:
    """Read a 2-D reference (MRC or TIFF); to be replaced by ``semc.base.io.read_image``."""
    import mrcfile
    import tifffile

    if not os.path.exists(path):
        raise InputMissing("reference file not found", step=_STEP, path=path)
    try:
        if path.lower().endswith((".tif", ".tiff", ".gain")):
            data = tifffile.imread(path)
        else:
            with mrcfile.open(path, permissive=True) as mrc:
                data = np.asarray(mrc.data)
    except Exception as exc:  # noqa: BLE001 - any reader failure means a corrupt file
        raise CorruptInput(f"cannot read reference: {exc}", step=_STEP, path=path) from exc
    data = np.asarray(data, dtype=np.float32)
    return data[0] if data.ndim == 3 else data


def _fallback_read_movie(path: str, threads: int) -> tuple[NDArray, float | None]:
    """Decode a whole MRC/TIFF movie; to be replaced by ``semc.base.io.open_movie``."""
    import mrcfile
    import tifffile

    lower = path.lower()
    try:
        if lower.endswith((".tif", ".tiff")):
            with tifffile.TiffFile(path) as tif:
                frames = tif.asarray(key=range(len(tif.pages)), maxworkers=threads)
            if frames.ndim == 2:
                frames = frames[None]
            return frames, None
        if lower.endswith(".eer"):
            raise InvalidParameters("EER needs semc.base.io's EER reader", step=_STEP, path=path)
        with mrcfile.open(path, permissive=True) as mrc:
            frames = np.array(mrc.data)
            voxel = float(mrc.voxel_size.x)
        if frames.ndim == 2:
            frames = frames[None]
        return frames, (voxel if voxel > 0 else None)
    except (InvalidParameters, InputMissing):
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt movie
        raise CorruptInput(f"cannot decode movie: {exc}", step=_STEP, path=path) from exc


def _read_movie(path: str, threads: int) -> tuple[NDArray, float | None]:
    if not os.path.exists(path):
        raise InputMissing("movie not found", step=_STEP, path=path)
    try:
        from semc.base.io import open_movie  # type: ignore[attr-defined]
    except ImportError:
        return _fallback_read_movie(path, threads)
    reader = open_movie(path)
    return reader.read_frames(), reader.pixel_size_angstrom


def _orient(ref: NDArray[np.float32], refs: DetectorReferences) -> NDArray[np.float32]:
    """Rotate (counter-clockwise quarter turns) then flip, as MotionCor does."""
    out = np.rot90(ref, refs.rotation_quarters)
    if refs.flip == 1:
        out = out[::-1, :]
    elif refs.flip == 2:
        out = out[:, ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


def _defect_mask(refs: DetectorReferences, shape: tuple[int, int]) -> NDArray[np.bool_] | None:
    mask = None
    if refs.defect_file:
        mask = np.zeros(shape, dtype=bool)
        try:
            rows = np.loadtxt(refs.defect_file, ndmin=2)
        except (OSError, ValueError) as exc:
            raise CorruptInput(f"bad defect file: {exc}", step=_STEP, path=refs.defect_file) from exc
        for x, y, w, h in rows[:, :4].astype(int):
            mask[max(0, y) : y + h, max(0, x) : x + w] = True
    if refs.defect_map:
        dm = _orient(_fallback_read_image(refs.defect_map), refs).astype(np.int64) & 1
        if dm.shape != shape:
            raise InvalidParameters(f"defect map {dm.shape} does not match frames {shape}",
                                    step=_STEP, path=refs.defect_map)
        mask = dm.astype(bool) if mask is None else (mask | dm.astype(bool))
    return mask


def _preparer(refs: DetectorReferences, shape: tuple[int, int]) -> FramePreparer:
    gain = dark = None
    if refs.gain_path:
        gain = _orient(_fallback_read_image(refs.gain_path), refs)
        if refs.invert_gain:
            gain = np.where(gain != 0, 1.0 / np.where(gain != 0, gain, 1), 0).astype(np.float32)
    if refs.dark_path:
        dark = _orient(_fallback_read_image(refs.dark_path), refs)
    for name, ref, path in (("gain", gain, refs.gain_path), ("dark", dark, refs.dark_path)):
        if ref is not None and ref.shape != shape:
            raise InvalidParameters(f"{name} reference {ref.shape} does not match frames {shape}",
                                    step=_STEP, path=path)
    mask = _defect_mask(refs, shape)
    if gain is not None:
        zero = gain == 0
        mask = zero if mask is None else (mask | zero)
    targets = sources = None
    if mask is not None and mask.any():
        targets, sources = defect_sources(mask)
    return FramePreparer(gain=gain, dark=dark, defect_targets=targets, defect_sources=sources)


def _integrate(frames, lines, params, prep, path):
    """Sum raw frames into rendered frames (detector-corrected first) and set their doses."""
    try:
        ranges, doses = integration_ranges(lines, n_raw=frames.shape[0],
                                           fallback_dose_e_per_a2=params.dose_per_frame_e_per_a2)
    except ValueError as exc:
        raise InvalidParameters(str(exc), step=_STEP, path=path) from exc
    out = np.zeros((len(ranges),) + frames.shape[1:], dtype=np.float32)
    for j, (a, b) in enumerate(ranges):
        for i in range(a, b):
            out[j] += prep(frames[i])
    dosed = params.pixel_size_angstrom is not None and any(d > 0 for d in doses)
    new = replace(params, frame_doses_e_per_a2=tuple(doses) if dosed else None)
    return out, new


def _write_mrc(path: str, data: NDArray[np.float32], pixel_size_angstrom: float | None) -> None:
    import mrcfile

    tmp = f"{path}.tmp-{os.getpid()}"
    with mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        if pixel_size_angstrom:
            mrc.voxel_size = pixel_size_angstrom
    os.replace(tmp, path)


def run_correction(
    movie_path: str | os.PathLike[str],
    *,
    output_path: str | os.PathLike[str] | None,
    params: MotionCorrectionParams,
    references: DetectorReferences | None = None,
    frame_groups: tuple[tuple[int, int, float | None], ...] | None = None,
    exposure_id: int | None = None,
) -> tuple[MotionCorrectionResult, CorrectedMovie]:
    """Like `correct_movie_file`, and also return the engine's full `CorrectedMovie`.

    ``frame_groups`` are FmIntFile lines (see ``integration_ranges``): raw frames
    are summed into rendered frames and the per-frame doses come from them.
    """
    t0 = time.perf_counter()
    path = os.fspath(movie_path)
    workers = params.fft_workers or fft_workers()
    frames, header_px = _read_movie(path, io_threads())
    refs = references or DetectorReferences()
    prep = _preparer(refs, frames.shape[1:])
    if frame_groups is not None:
        frames, params = _integrate(frames, frame_groups, params, prep, path)
        prep = FramePreparer()
    t_read = time.perf_counter()
    try:
        corrected = correct_frames(frames, params=params, prepare=prep, workers=workers)
    except ValueError as exc:
        raise InvalidParameters(str(exc), step=_STEP, exposure_id=exposure_id, path=path) from exc
    del frames
    t_corr = time.perf_counter()
    pixel = params.pixel_size_angstrom or header_px
    out_pixel = None if pixel is None else pixel * params.output_bin
    written: dict[str, str] = {}
    if output_path is not None:
        images = dict(corrected.sums)
        if corrected.stack is not None:
            images["stack"] = corrected.stack
        written = output_paths_for(output_path, list(images))
        for kind, img in images.items():
            _write_mrc(written[kind], img, out_pixel)
    t_end = time.perf_counter()
    shifts = tuple((float(-x), float(-y)) for x, y in corrected.motion_px)
    result = MotionCorrectionResult(
        movie_path=path,
        motion=GlobalMotion(shifts_px=shifts, first_frame=corrected.first_frame,
                            reference_frame=corrected.reference_frame),
        local_model=corrected.local_model,
        output_paths=written,
        timings_s={"read": t_read - t0, **corrected.timings_s, "write": t_end - t_corr,
                   "total": t_end - t0},
        peak_memory_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        pixel_size_angstrom=out_pixel,
        n_frames=corrected.first_frame + corrected.motion_px.shape[0] + params.truncate_frames,
    )
    logger.info("exposure=%s step=%s corrected %s in %.1f s", exposure_id, _STEP, path, t_end - t0)
    return result, corrected


def correct_movie_file(
    movie_path: str | os.PathLike[str],
    *,
    output_path: str | os.PathLike[str] | None,
    params: MotionCorrectionParams,
    references: DetectorReferences | None = None,
    frame_groups: tuple[tuple[int, int, float | None], ...] | None = None,
    exposure_id: int | None = None,
) -> MotionCorrectionResult:
    """Correct one movie and write its sums.

    Parameters
    ----------
    movie_path
        MRC or TIFF movie (EER once ``semc.base.io`` reads it).
    output_path
        The plain sum ``X.mrc``; the others follow MotionCor's names
        (``X_DW.mrc``, ``X_DWS.mrc``, ``X_ODD.mrc``, ``X_EVN.mrc``, ``X_Stk.mrc``).
        None: compute only.
    params
        `MotionCorrectionParams`.
    references
        Gain, dark and defects (`DetectorReferences`).
    frame_groups
        FmIntFile lines ``(raw frames, raw frames per rendered frame, dose per raw frame)``.
    exposure_id
        For error messages and logs.

    Returns
    -------
    MotionCorrectionResult

    Raises
    ------
    InputMissing
        The movie or a reference file does not exist.
    CorruptInput
        A file cannot be decoded.
    InvalidParameters
        Parameters do not fit the movie (too few frames, reference shapes).
    """
    result, _ = run_correction(movie_path, output_path=output_path, params=params,
                               references=references, frame_groups=frame_groups,
                               exposure_id=exposure_id)
    return result
