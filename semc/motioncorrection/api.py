"""Python API: correct one movie file and write its sums (used by the daemon's task and the CLI).

Movies, references and outputs go through ``semc.base.io`` (MRC, TIFF, EER).
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

from semc.base.errors import CorruptInput, InputMissing, InvalidParameters, OutputError
from semc.base.io import FrameGrouping, open_movie, read_image, write_mrc
from semc.base.parallel import fft_workers
from semc.motioncorrection.calc.internal.correct import CorrectedMovie, correct_frames
from semc.motioncorrection.calc.internal.frames import FramePreparer, integration_ranges
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


def _read_reference(path: str) -> NDArray[np.float32]:
    image, _ = read_image(path)
    return np.asarray(image, dtype=np.float32)


def _movie_grouping(reader, lines, params: MotionCorrectionParams, path: str):
    """FrameGrouping and per-rendered-frame doses from FmIntFile lines (EER default: ~40 fractions)."""
    if lines is None:
        size = max(1, reader.n_frames // 40)
        return FrameGrouping.fixed(reader.n_frames, size), None
    try:
        ranges, doses = integration_ranges(lines, n_raw=reader.n_frames,
                                           fallback_dose_e_per_a2=params.dose_per_frame_e_per_a2)
    except ValueError as exc:
        raise InvalidParameters(str(exc), step=_STEP, path=path) from exc
    starts = [a for a, _ in ranges]
    stops = [0] + [b for _, b in ranges[:-1]]
    if starts != stops:
        raise InvalidParameters("FmIntFile leaves raw frames out in mid-movie; not supported",
                                step=_STEP, path=path)
    return FrameGrouping(sizes=tuple(b - a for a, b in ranges)), doses


def _read_movie(path: str, params: MotionCorrectionParams, lines, eer_upsampling: int):
    """Frames (raw, or group sums: uint16 counts or float32), header pixel size, doses per frame or None, group sizes."""
    with open_movie(path, eer_upsampling=eer_upsampling) as reader:
        if lines is None and reader.format != "eer":
            return reader.read_frames(), reader.pixel_size_angstrom, None, None
        grouping, doses = _movie_grouping(reader, lines, params, path)
        # counts (EER events, counting TIFF) sum exactly into uint16: a quarter of the float32 memory
        frames = reader.read_grouped(grouping, dtype=reader.exact_sum_dtype(grouping) or np.float32)
        return frames, reader.pixel_size_angstrom, doses, grouping.sizes


def _orient(ref: NDArray[np.float32], refs: DetectorReferences) -> NDArray[np.float32]:
    """``-RotGain`` then ``-FlipGain``, in the one convention of :func:`semc.base.io.orient_gain`
    (RotGain r = DigitalMicrograph "Rotate Right" r times = numpy ``rot90(ref, -r)``, compat §3.3)."""
    from semc.base.io import orient_gain

    out = orient_gain(ref, rotate_90=refs.rotation_quarters, flip=refs.flip, convention="motioncor")
    return np.ascontiguousarray(out, dtype=np.float32)


def _defect_mask(refs: DetectorReferences, shape: tuple[int, int]) -> NDArray[np.bool_] | None:
    mask = None
    if refs.defect_file:
        mask = np.zeros(shape, dtype=bool)
        if not os.path.exists(refs.defect_file):
            raise InputMissing("defect file not found", step=_STEP, path=refs.defect_file)
        try:
            rows = np.loadtxt(refs.defect_file, ndmin=2)
        except (OSError, ValueError) as exc:
            raise CorruptInput(f"bad defect file: {exc}", step=_STEP, path=refs.defect_file) from exc
        for x, y, w, h in rows[:, :4].astype(int):
            mask[max(0, y) : y + h, max(0, x) : x + w] = True
    if refs.defect_map:
        dm = _orient(_read_reference(refs.defect_map), refs).astype(np.int64) & 1
        if dm.shape != shape:
            raise InvalidParameters(f"defect map {dm.shape} does not match frames {shape}",
                                    step=_STEP, path=refs.defect_map)
        mask = dm.astype(bool) if mask is None else (mask | dm.astype(bool))
    return mask


def _preparer(refs: DetectorReferences, shape: tuple[int, int], group_sizes=None) -> FramePreparer:
    """Detector correction; for summed groups the dark is scaled by each group's frame count."""
    gain = dark = None
    if refs.gain_path:
        gain = _orient(_read_reference(refs.gain_path), refs)
        if refs.invert_gain:
            gain = np.where(gain != 0, 1.0 / np.where(gain != 0, gain, 1), 0).astype(np.float32)
    if refs.dark_path:
        dark = _orient(_read_reference(refs.dark_path), refs)
        if group_sizes is not None and len(set(group_sizes)) > 1:
            raise InvalidParameters("a dark reference with unequal frame groups is not supported",
                                    step=_STEP, path=refs.dark_path)
        if group_sizes is not None:
            dark = dark * float(group_sizes[0])
    for name, ref, path in (("gain", gain, refs.gain_path), ("dark", dark, refs.dark_path)):
        if ref is not None and ref.shape != shape:
            raise InvalidParameters(f"{name} reference {ref.shape} does not match frames {shape}",
                                    step=_STEP, path=path)
    mask = _defect_mask(refs, shape)
    if gain is not None:
        zero = gain == 0
        mask = zero if mask is None else (mask | zero)
    return FramePreparer.build(gain=gain, dark=dark, defect_mask=mask)


_ALLOCATOR_TUNED = False


def _keep_freed_memory() -> None:
    """Let glibc reuse freed large buffers instead of unmapping them (once per process).

    Every full-size FFT output is a fresh ~100 MB array; by default glibc maps and
    unmaps such blocks, so every frame pays for page faults again (about 5 us per
    4 KiB page on the CI machine, over a second per K3 movie). Raising the mmap
    and trim thresholds keeps the freed blocks in the heap for the next frame.
    The process keeps that memory after the movie (it is reused by the next one).
    No-op where glibc's ``mallopt`` is not available.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, (1 << 31) - 1)


def centre_crop(image: np.ndarray, crop_xy: tuple[int, int], *, path: str = "") -> np.ndarray:
    """The centre ``x`` by ``y`` pixels of an image or a stack (last two axes).

    Raises
    ------
    InvalidParameters
        When the crop is not positive or larger than the image.
    """
    cx, cy = (int(v) for v in crop_xy)
    ny, nx = image.shape[-2:]
    if not (0 < cx <= nx and 0 < cy <= ny):
        raise InvalidParameters(f"-Crop {cx} {cy} does not fit the {nx} x {ny} output", step=_STEP, path=path)
    y0, x0 = (ny - cy) // 2, (nx - cx) // 2
    return np.ascontiguousarray(image[..., y0:y0 + cy, x0:x0 + cx])


def _write(path: str, image: np.ndarray, pixel: float | None, exposure_id: int | None) -> None:
    """Write one output MRC; a folder that is missing or not writable is an `OutputError` naming the file."""
    try:
        write_mrc(path, image, pixel_size_angstrom=pixel)
    except OSError as exc:
        raise OutputError(f"cannot write the output: {exc.strerror or exc}", step=_STEP,
                          exposure_id=exposure_id, path=path) from exc


def run_correction(
    movie_path: str | os.PathLike[str],
    *,
    output_path: str | os.PathLike[str] | None,
    params: MotionCorrectionParams,
    references: DetectorReferences | None = None,
    frame_groups: tuple[tuple[int, int, float | None], ...] | None = None,
    eer_upsampling: int = 1,
    exposure_id: int | None = None,
    crop_xy: tuple[int, int] | None = None,
    reverse_frames: bool = False,
    full_sum_path: str | os.PathLike[str] | None = None,
    given_motion: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[MotionCorrectionResult, CorrectedMovie]:
    """Like `correct_movie_file`, and also return the engine's full `CorrectedMovie`.

    ``crop_xy`` (MotionCor's ``-Crop``): the written images are the centre ``x`` by ``y`` of
    the outputs (alignment still uses the whole frame, which only helps it).
    ``reverse_frames`` (``-TiffOrder -1``): the frames (or EER fractions) are taken last first.
    ``full_sum_path`` (``-FullSum``): written as soon as the whole-frame alignment is done, the
    unweighted sum corrected for whole-frame motion only.
    ``given_motion``: sum along this motion instead of aligning (see `correct_frames`; ``-InAln``).
    """
    t0 = time.perf_counter()
    _keep_freed_memory()
    path = os.fspath(movie_path)
    workers = params.fft_workers or fft_workers()
    frames, header_px, doses, sizes = _read_movie(path, params, frame_groups, eer_upsampling)
    if reverse_frames:
        frames = np.ascontiguousarray(frames[::-1])
        doses = None if doses is None else doses[::-1]
        sizes = None if sizes is None else tuple(sizes[::-1])
    if doses is not None and params.pixel_size_angstrom is not None and any(d > 0 for d in doses):
        params = replace(params, frame_doses_e_per_a2=tuple(doses))
    t_read = time.perf_counter()
    refs = references or DetectorReferences()
    prep = _preparer(refs, frames.shape[1:], sizes)
    on_global_sum = None
    if full_sum_path is not None:
        def on_global_sum(image):
            px = params.pixel_size_angstrom or header_px
            _write(os.fspath(full_sum_path), image, None if px is None else px * params.output_bin, exposure_id)
    try:
        corrected = correct_frames(frames, params=params, prepare=prep, workers=workers,
                                   overwrite_frames=True, on_global_sum=on_global_sum,
                                   given_motion=given_motion)
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
        if crop_xy is not None:
            images = {kind: centre_crop(img, crop_xy, path=path) for kind, img in images.items()}
        written = output_paths_for(output_path, list(images))
        for kind, img in images.items():
            _write(written[kind], img, out_pixel, exposure_id)
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
    eer_upsampling: int = 1,
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
        FmIntFile lines ``(raw frames, raw frames per rendered frame, dose per raw frame)``:
        raw frames are summed into rendered frames, whose doses replace the
        per-frame dose. EER movies without it are grouped into about 40 fractions.
    eer_upsampling
        EER rendering: 1 (4K), 2 (8K) or 4 (16K).
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
                               eer_upsampling=eer_upsampling, exposure_id=exposure_id)
    return result
