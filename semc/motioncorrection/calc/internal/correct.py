"""Motion correction of one movie held in memory: align, then sum (pure arrays).

Pass 1 bins every corrected frame to about ``alignment_size_px`` on the short
side (the MotionCor "xcf buffer", here by block summation), keeps the binned
stack for patch alignment and the Fourier-cropped spectra for the global
alignment. Pass 2 goes over the full-size frames once. With a local model
(the usual case) every frame is resampled by its total motion (global shift
plus the smooth local model, bilinear) in one fused real-space pass that
accumulates a few weighted sums: the plain sum (or odd/even sums) and a
low-rank frame basis of the dose weights, from which the dose-weighted sums
are formed in Fourier space (a handful of full-size FFTs per movie instead of
one per frame). With whole-frame motion only, or when the aligned stack is
asked for, each frame is instead transformed once and shifted exactly by a
Fourier phase ramp while the plain and weighted sums accumulate in Fourier
space. Defect pixels are repaired once per movie before both passes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal.accumulate import (
    RADIAL_OVERSAMPLING,
    accumulate_shifted,
    radial_bin_index,
)
from semc.motioncorrection.calc.internal.align import align_stack, correlation_box
from semc.motioncorrection.calc.internal.dose import (
    accumulated_dose_e_per_a2,
    dose_weights,
    low_rank_frame_basis,
)
from semc.motioncorrection.calc.internal.fourier import crop_half_spectrum, phase_ramp_axes
from semc.motioncorrection.calc.internal.frames import FramePreparer
from semc.motioncorrection.calc.internal.local_model import N_SPATIAL, N_TIME, LocalMotionModel, fit_local_model
from semc.motioncorrection.calc.internal.output import finish_sums
from semc.motioncorrection.calc.internal.prepare_kernels import correct_and_bin
from semc.motioncorrection.calc.internal.patches import align_patches, taper_window
from semc.motioncorrection.calc.internal.trajectory import smooth_trajectory
from semc.motioncorrection.calc.internal.warp_sum import warp_accumulate
from semc.motioncorrection.types import MotionCorrectionParams

logger = logging.getLogger(__name__)

__all__ = ["CorrectedMovie", "alignment_bin", "global_bin", "correct_frames"]

_WARP_THRESHOLD_PX = 0.01


@dataclass(frozen=True, slots=True)
class CorrectedMovie:
    """Sums and motion of one corrected movie.

    Attributes
    ----------
    sums
        Images by kind (``sum``, ``dose_weighted``, ``dose_selected``, ``odd``,
        ``even``), float32, Fourier-binned by ``output_bin``.
    stack
        Aligned frames (n, ny, nx) float32 when asked for, else None.
    motion_px
        Shape (n, 2): content motion of each processed frame, input pixels, zero at the reference.
    reference_frame
        Index of the reference frame among the processed frames.
    first_frame
        Index in the movie of the first processed frame.
    local_model
        `LocalMotionModel` or None.
    patch_centres_px, patch_residual_px
        Shapes (p, 2) and (p, n, 2): patch centres and measured residual motion (input pixels).
    global_errors_px, patch_errors_px
        Iteration errors (input pixels) of the global and of each patch alignment.
    alignment_bin
        Binning of the alignment stack.
    timings_s
        Seconds per stage: ``prepare``, ``align_global``, ``align_local``, ``sum``.
    """

    sums: dict[str, NDArray[np.float32]]
    stack: NDArray[np.float32] | None
    motion_px: NDArray[np.float64]
    reference_frame: int
    first_frame: int
    local_model: LocalMotionModel | None
    patch_centres_px: NDArray[np.float64]
    patch_residual_px: NDArray[np.float64]
    global_errors_px: tuple[float, ...]
    patch_errors_px: tuple[tuple[float, ...], ...]
    alignment_bin: int
    timings_s: dict[str, float]


def alignment_bin(shape: tuple[int, int], alignment_size_px: int) -> int:
    """Integer binning that brings the short side closest to ``alignment_size_px`` (>= 1)."""
    return max(1, int(round(min(shape) / alignment_size_px)))


def _reference_index(n: int, requested: int) -> int:
    return n // 2 if requested < 0 else min(requested, n - 1)


def global_bin(shape: tuple[int, int], bfactor_px2: float, min_side_px: int = 1000) -> int:
    """Extra binning of the alignment stack for the whole-frame alignment.

    The whole-frame correlation keeps only frequencies where exp(-B f^2/2) >= 1e-4,
    f_max = sqrt(2 ln(1e4) / B) cycles per pixel; when f_max * g <= 0.45 the stack
    can be summed over g x g blocks first (one FFT of 1/g^2 the size per frame),
    as long as the short side stays >= ``min_side_px``.
    """
    if bfactor_px2 <= 0:
        return 1
    fmax = float(np.sqrt(-2.0 * np.log(1e-4) / bfactor_px2))
    g = max(1, int(0.45 / fmax))
    while g > 1 and min(shape) // g < min_side_px:
        g -= 1
    return g


def _pass_one(frames, idx, prep, b, g, box, workers):
    """Binned stack (for patches) and cropped, tapered spectra (for global alignment)."""
    ny, nx = frames.shape[1] // b, frames.shape[2] // b
    binned = np.empty((len(idx), ny, nx), dtype=np.float32)
    gshape = (ny // g, nx // g)
    spectra = np.empty((len(idx), box[0], box[1] // 2 + 1), dtype=np.complex64)
    taper = taper_window(gshape, 0.05)
    small = np.empty(gshape, dtype=np.float32)
    for j, i in enumerate(idx):
        prep.binned(frames[i], b, out=binned[j])
        if g > 1:
            correct_and_bin(binned[j], gain=None, dark=None, factor=g, out=small)
        else:
            small[...] = binned[j]
        small -= small.mean()
        small *= taper
        spectra[j] = crop_half_spectrum(scipy.fft.rfft2(small, workers=workers), box)
    return binned, spectra


def _local(binned, motion_binned, ref, b, params, workers, full_shape):
    meas = align_patches(
        binned,
        global_motion_px=motion_binned,
        patches_xy=params.patches_xy,
        overlap_percent=params.patch_overlap_percent,
        bfactor_px2=params.bfactor_local_px2,
        iterations=params.iterations,
        tolerance_px=params.tolerance_px / b,
        group_size=params.group_local,
        phase_only=params.phase_only,
        weighting=params.correlation_weighting,
        workers=workers,
    )
    pm = meas.motion_px - meas.motion_px[:, ref : ref + 1]
    residual = (pm - (motion_binned - motion_binned[ref])[None]) * b
    centres = meas.centres_px * b
    errs = tuple(tuple(e * b for e in pe) for pe in meas.iteration_errors_px)
    return _model_of(centres, residual, ref, full_shape), centres, residual, errs


def _model_of(centres, residual, ref, full_shape):
    """The smooth local model fitted to patch residuals (p, n, 2) at centres (p, 2), input pixels."""
    p, n = residual.shape[:2]
    return fit_local_model(
        x_px=np.repeat(centres[:, 0], n),
        y_px=np.repeat(centres[:, 1], n),
        frame=np.tile(np.arange(n), p),
        residual_motion_px=residual.reshape(-1, 2),
        image_shape=full_shape,
        reference_frame=ref,
        n_frames=n,
    )


def _weight_tables(params, n_doses, first, shape, selected=None):
    doses = np.asarray(n_doses, dtype=np.float64)
    acc = accumulated_dose_e_per_a2(doses, params.initial_dose_e_per_a2)
    if first:
        acc = acc[first:]
    length = int(np.ceil(RADIAL_OVERSAMPLING * max(shape) * np.sqrt(0.5))) + 2
    f = np.arange(length) / (RADIAL_OVERSAMPLING * max(shape))
    k = f / params.pixel_size_angstrom
    if selected is None:
        return dose_weights(accumulated_dose_e_per_a2=acc, spatial_frequency_per_a=k,
                            voltage_kv=params.voltage_kv).astype(np.float32), acc
    w = np.zeros((acc.size, length), dtype=np.float32)
    if selected.any():
        w[selected] = dose_weights(accumulated_dose_e_per_a2=acc[selected],
                                   spatial_frequency_per_a=k, voltage_kv=params.voltage_kv)
    return w, acc


def correct_frames(
    frames: NDArray[np.generic],
    *,
    params: MotionCorrectionParams,
    prepare: FramePreparer | None = None,
    workers: int = 1,
    overwrite_frames: bool = False,
    on_global_sum=None,
    given_motion: tuple[NDArray, NDArray, NDArray] | None = None,
) -> CorrectedMovie:
    """Align and sum a movie (see the module docstring).

    Parameters
    ----------
    frames
        Shape (n, ny, nx): raw frames (any real dtype; indexing one frame must give (ny, nx)).
    params
        `MotionCorrectionParams`.
    prepare
        Dark/gain/defect correction applied to each raw frame.
    workers
        Threads for ``scipy.fft``.
    overwrite_frames
        Defect pixels may be repaired in ``frames`` itself (else in a copy, made
        only when there are defects).
    on_global_sum
        Called, as soon as the whole-frame alignment is done and before the patch
        alignment, with the unweighted sum corrected for whole-frame motion only
        (MotionCor's ``-FullSum``: quick feedback for CTF estimation).
    given_motion
        (motion (n, 2), patch centres (p, 2), patch residual motion (p, n, 2)), content
        motion in input pixels, from an earlier run (``-InAln``): no alignment is done, the
        frames are summed along it (p may be 0: whole-frame motion only).

    Returns
    -------
    CorrectedMovie

    Raises
    ------
    ValueError
        If fewer than two frames remain after Throw/Trunc, or the frame doses do not match.
    """
    prep = prepare or FramePreparer.build()
    n_all, ny, nx = frames.shape
    idx = np.arange(params.throw_frames, n_all - params.truncate_frames)
    if idx.size < 2:
        raise ValueError(f"{idx.size} frame(s) left after Throw/Trunc; need at least 2")
    frames, prep = prep.repair_stack(frames, idx, in_place=overwrite_frames)
    n, ref = idx.size, _reference_index(idx.size, params.reference_frame)
    b = alignment_bin((ny, nx), params.alignment_size_px)
    g = global_bin((ny // b, nx // b), params.bfactor_global_px2)
    gshape = (ny // b // g, nx // b // g)
    bfactor_g = params.bfactor_global_px2 / (g * g)
    t0 = time.perf_counter()
    if not params.align:
        return _sum_unaligned(frames, idx, prep, ref, b, params, workers)
    if given_motion is not None:
        return _sum_along(frames, idx, prep, ref, b, params, workers, given_motion)
    box = correlation_box(gshape, bfactor_g)
    binned, spectra = _pass_one(frames, idx, prep, b, g, box, workers)
    t1 = time.perf_counter()
    trace = align_stack(spectra, image_shape=gshape, bfactor_px2=bfactor_g,
                        iterations=params.iterations, tolerance_px=params.tolerance_px / (b * g),
                        group_size=params.group_global, phase_only=params.phase_only,
                        weighting=params.correlation_weighting, workers=workers)
    del spectra
    raw_g = smooth_trajectory(trace.motion_px) if params.smooth_trajectory else trace.motion_px
    motion_b = (raw_g - raw_g[ref]) * g
    if on_global_sum is not None:
        coef = np.zeros((n, 2, 6))
        coef[:, :, 0] = motion_b * b
        plain = warp_accumulate(np.ascontiguousarray(frames), frame_index=idx, coefficients=coef,
                                weights=np.ones((n, 1)), gain=prep.gain, dark=prep.dark)[0]
        on_global_sum(finish_sums({"sum": plain}, (ny, nx), params, workers)["sum"])
        del plain
    t2 = time.perf_counter()
    model, centres, residual, perr = None, np.zeros((0, 2)), np.zeros((0, n, 2)), ()
    if params.local and n > 2:
        model, centres, residual, perr = _local(binned, motion_b, ref, b, params, workers, (ny, nx))
    del binned
    t3 = time.perf_counter()
    sums, stack = _pass_two(frames, idx, prep, motion_b * b, model, params, workers)
    t4 = time.perf_counter()
    return CorrectedMovie(
        sums=sums, stack=stack, motion_px=motion_b * b, reference_frame=ref,
        first_frame=int(idx[0]), local_model=model, patch_centres_px=centres,
        patch_residual_px=residual,
        global_errors_px=tuple(e * b * g for e in trace.iteration_errors_px),
        patch_errors_px=perr, alignment_bin=b,
        timings_s={"prepare": t1 - t0, "align_global": t2 - t1, "align_local": t3 - t2,
                   "sum": t4 - t3},
    )


def _sum_unaligned(frames, idx, prep, ref, b, params, workers) -> CorrectedMovie:
    """``-Align 0``: the sums of the frames as they are."""
    n = idx.size
    t0 = time.perf_counter()
    sums, stack = _pass_two(frames, idx, prep, np.zeros((n, 2)), None, params, workers)
    return CorrectedMovie(
        sums=sums, stack=stack, motion_px=np.zeros((n, 2)), reference_frame=ref, first_frame=int(idx[0]),
        local_model=None, patch_centres_px=np.zeros((0, 2)), patch_residual_px=np.zeros((0, n, 2)),
        global_errors_px=(), patch_errors_px=(), alignment_bin=b,
        timings_s={"prepare": 0.0, "align_global": 0.0, "align_local": 0.0, "sum": time.perf_counter() - t0},
    )


def _sum_along(frames, idx, prep, ref, b, params, workers, given) -> CorrectedMovie:
    """Sums along a motion measured earlier (``-InAln``): no alignment."""
    n, (ny, nx) = idx.size, frames.shape[1:]
    motion, centres, residual = (np.asarray(a, dtype=np.float64) for a in given)
    if motion.shape != (n, 2) or residual.shape != (centres.shape[0], n, 2):
        raise ValueError(f"the given motion is for {motion.shape[0]} frames, the movie has {n} to sum")
    motion = motion - motion[ref]
    residual = residual - residual[:, ref : ref + 1]
    model = None
    if centres.shape[0] and n > 2 and centres.shape[0] * n > N_SPATIAL * N_TIME:   # fit_local_model's need
        model = _model_of(centres, residual, ref, (ny, nx))
    t0 = time.perf_counter()
    sums, stack = _pass_two(frames, idx, prep, motion, model, params, workers)
    return CorrectedMovie(
        sums=sums, stack=stack, motion_px=motion, reference_frame=ref, first_frame=int(idx[0]),
        local_model=model, patch_centres_px=centres, patch_residual_px=residual,
        global_errors_px=(), patch_errors_px=(), alignment_bin=b,
        timings_s={"prepare": 0.0, "align_global": 0.0, "align_local": 0.0, "sum": time.perf_counter() - t0},
    )


def _frame_doses(params: MotionCorrectionParams, n_all: int) -> Sequence[float]:
    if params.frame_doses_e_per_a2 is not None:
        if len(params.frame_doses_e_per_a2) != n_all:
            raise ValueError(f"{len(params.frame_doses_e_per_a2)} frame doses for {n_all} frames")
        return params.frame_doses_e_per_a2
    return [params.dose_per_frame_e_per_a2] * n_all


def _pass_two(frames, idx, prep, motion, model, params, workers):
    """The sums (and the aligned stack when asked for).

    With a local model (or no motion at all) every frame is resampled anyway, so the
    fused real-space pass is used; whole-frame motion alone is applied exactly, as a
    Fourier phase ramp per frame, as is the aligned stack."""
    if not params.output_stack and not params.in_frame_motion and (model is not None or not np.any(motion)):
        return _pass_two_fused(frames, idx, prep, motion, model, params, workers), None
    return _pass_two_fourier(frames, idx, prep, motion, model, params, workers)


def _dose_tables(params, idx, n_all, shape):
    """Radial weight tables (n, L) of the dose-weighted and dose-selected sums (None when not asked)."""
    if not params.dose_weighting:
        return None, None
    doses = _frame_doses(params, n_all)
    tables, acc_dose = _weight_tables(params, doses[: idx[-1] + 1], idx[0], shape)
    sel_tables = None
    if params.dose_range_sum_e_per_a2 is not None:
        lo, hi = params.dose_range_sum_e_per_a2
        sel = (acc_dose >= lo) & (acc_dose <= hi)
        sel_tables, _ = _weight_tables(params, doses[: idx[-1] + 1], idx[0], shape, sel)
    return tables, sel_tables


def _pass_two_fused(frames, idx, prep, motion, model, params, workers):
    """One real-space pass: warp every frame by its total motion and accumulate a few
    weighted sums (plain, odd/even, and a low-rank frame basis of the dose weights);
    the dose-weighted sums are then formed in Fourier space from those few sums."""
    n_all, ny, nx = frames.shape
    n = idx.size
    coef = np.zeros((n, 2, 6))
    for j in range(n):
        if model is not None:
            coef[j, 0], coef[j, 1] = model.frame_coefficients(j)
        coef[j, 0, 0] += motion[j, 0]
        coef[j, 1, 0] += motion[j, 1]
    if params.split_sum:
        plain = np.stack([np.arange(n) % 2 == 0, np.arange(n) % 2 == 1], axis=1).astype(np.float64)
        names = {"odd": 0, "even": 1}
    else:
        plain, names = np.ones((n, 1)), {"sum": 0}
    basis = plain
    expansions = {}
    tables, sel_tables = _dose_tables(params, idx, n_all, (ny, nx))
    for kind, table in (("dose_weighted", tables), ("dose_selected", sel_tables)):
        if table is not None:
            basis, _ = low_rank_frame_basis(table, basis)
            expansions[kind] = table
    for kind, table in expansions.items():
        expansions[kind] = np.linalg.lstsq(basis, table.astype(np.float64), rcond=None)[0].astype(np.float32)
    sums = warp_accumulate(np.ascontiguousarray(frames), frame_index=idx, coefficients=coef, weights=basis,
                           gain=prep.gain, dark=prep.dark)
    accs: dict[str, NDArray] = {kind: sums[i] for kind, i in names.items()}
    if expansions:
        ridx = radial_bin_index(ny, nx)
        nxh = nx // 2 + 1
        ones_y, ones_x = np.ones(ny, np.complex64), np.ones(nxh, np.complex64)
        weighted = {kind: np.zeros((ny, nxh), np.complex64) for kind in expansions}
        for i in range(basis.shape[1]):
            spec = scipy.fft.rfft2(sums[i], workers=workers)
            for kind, coefficients in expansions.items():
                accumulate_shifted(spec, ramp_y=ones_y, ramp_x=ones_x, acc=None,
                                   weighted=(weighted[kind], np.ascontiguousarray(coefficients[i]), ridx))
        accs.update(weighted)
    return finish_sums(accs, (ny, nx), params, workers)


def _pass_two_fourier(frames, idx, prep, motion, model, params, workers):
    n_all, ny, nx = frames.shape
    nxh = nx // 2 + 1
    split = params.split_sum
    accs = {k: np.zeros((ny, nxh), np.complex64) for k in (("odd", "even") if split else ("sum",))}
    tables, sel_tables = _dose_tables(params, idx, n_all, (ny, nx))
    ridx = None if tables is None else radial_bin_index(ny, nx)
    for kind, table in (("dose_weighted", tables), ("dose_selected", sel_tables)):
        if table is not None:
            accs[kind] = np.zeros((ny, nxh), np.complex64)
    stack = np.empty((idx.size, ny, nx), np.float32) if params.output_stack else None
    frame = np.empty((ny, nx), np.float32)
    blur = _in_frame_motion_filters(motion, ny, nx) if params.in_frame_motion else None
    for j, i in enumerate(idx):
        cx = cy = None
        if model is not None:
            cx, cy = model.frame_coefficients(j)
        if cx is not None and np.abs(cx).sum() + np.abs(cy).sum() > _WARP_THRESHOLD_PX:
            prep.warped(frames[i], coefficients_x=cx, coefficients_y=cy, out=frame)
        else:
            prep(frames[i], out=frame)
        spec = scipy.fft.rfft2(frame, workers=workers)
        if blur is not None:
            filt = blur(j)
            if filt is not None:
                spec *= filt
        ry, rx = phase_ramp_axes(ny, nx, -motion[j, 0], -motion[j, 1])
        plain = accs["sum"] if not split else accs["odd" if j % 2 == 0 else "even"]
        weighted = None if tables is None else (accs["dose_weighted"], tables[j], ridx)
        accumulate_shifted(spec, ramp_y=ry, ramp_x=rx, acc=plain, weighted=weighted)
        if sel_tables is not None and sel_tables[j].any():
            accumulate_shifted(spec, ramp_y=ry, ramp_x=rx, acc=None,
                               weighted=(accs["dose_selected"], sel_tables[j], ridx))
        if stack is not None:
            spec *= ry[:, None] * rx[None, :]
            stack[j] = scipy.fft.irfft2(spec, s=(ny, nx), workers=workers)
    return finish_sums(accs, (ny, nx), params, workers), stack


def _in_frame_motion_filters(motion, ny, nx):
    """``-InFmMotion``: per frame, the transfer function of its own motion blur (or None if < 0.1 px).

    The motion during frame j is ``motion[j + 1] - motion[j]`` (the last frame takes the step
    before it); a blur along m multiplies the spectrum by sinc(|m| (k . m/|m|)), and weighting
    the frame by it (zero beyond the first zero, as MotionCor3 does) leaves the frequencies it
    smeared to the other frames.
    """
    fy, fx = np.fft.fftfreq(ny)[:, None], np.fft.rfftfreq(nx)[None, :]
    n = motion.shape[0]

    def filt(j: int):
        if n < 2:
            return None
        a, b = (j, j + 1) if j + 1 < n else (j - 1, j)
        step = motion[b] - motion[a]
        length = float(np.hypot(*step))
        if length < 0.1:
            return None
        along = np.abs(fx * step[0] + fy * step[1])   # |k . m| = |m| (k . m/|m|)
        out = np.sinc(along)
        out[along >= 1.0] = 0.0
        return out.astype(np.float32)

    return filt
