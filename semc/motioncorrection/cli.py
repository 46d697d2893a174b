"""Command-line programs of the motion-correction step.

``semc-motioncor2`` (`motioncor2_main`) is a drop-in for MotionCor2 1.6.x /
MotionCor3 on the CPU engine: same flags, same output files, same stdout log.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import numpy as np

from semc.base.errors import InvalidParameters, ProcessingError
from semc.base.io import open_movie, write_mrc
from semc.motioncorrection.aln import AlignmentFile, aln_path, aln_read, aln_write
from semc.motioncorrection.api import DetectorReferences, run_correction
from semc.motioncorrection.motioncor2_args import (
    MotionCor2Args,
    format_parameter_echo,
    parse_motioncor2_argv,
)
from semc.motioncorrection.motioncor2_log import (
    format_full_log,
    format_global_shifts,
    format_iterations,
    format_patch_frame_log,
    format_patch_patch_log,
    format_patch_progress,
)
from semc.motioncorrection.motioncor2_params import fmintfile_groups, params_from_args

logger = logging.getLogger(__name__)

__all__ = ["motioncor2_main"]

VERSION_LINE = "MotionCor2 version 1.6.4"
_NO_EFFECT = ("Tilt", "TmpFile", "StackZ", "UseGpus", "GpuMemUsage")


def _ctf_estimate(args: MotionCor2Args, movie: str, output: str, corrected, pixel_size: float | None,
                  out: TextIO) -> None:
    """MotionCor3's CTF module (``-Cs`` > 0): the CTF of the sum, by SEMC's built-in CTF engine.

    As MotionCor3 names them, in the output's folder after the *input* movie: ``<movie>_Ctf.mrc``
    (the spectrum with the fitted CTF, CTFFIND's diagnostic image) and ``<movie>_Ctf.txt`` (one
    header line with CTFFIND 4's column names, then micrograph number, defocus 1 and 2 in Å,
    azimuth in degrees, extra phase shift in radians, score, and the resolution of the fit — where
    MotionCor3 writes a placeholder 10.0, the real one). ``-ExtPhase p`` > 0 searches the extra
    phase shift in [0, min(2 p, 180)] degrees, i.e. centred on p (MotionCor3's range). Without
    a pixel size the estimate is skipped with MotionCor3's message. (MotionCor3's code default
    is Cs 2.7, so it estimates whenever a pixel size is given; semc-motioncor2 presents itself as
    MotionCor2 1.6.4, which has no CTF module, and keeps Cs 0 = off unless ``-Cs`` is given.)
    """
    from semc.ctfestimation.api import estimate_ctf
    from semc.ctfestimation.types import CtfSearchParameters

    if pixel_size is None:   # MotionCor3 skips the estimate (and goes on) without a pixel size
        out.write(f"Skip CTF estimation. Need the following parameters.\nHigh tension: {args.first('kV')}\n"
                  f"Cs value:     {float(args.first('Cs')):f}\nPixel size:   0.000000\n\n")
        return
    phase = float(args.first("ExtPhase"))
    phase_search = {}
    if phase > 0:
        top = np.deg2rad(min(2.0 * phase, 180.0))
        phase_search = dict(find_phase_shift=True, min_phase_shift_radian=0.0, max_phase_shift_radian=top,
                            phase_shift_step_radian=min(np.deg2rad(10.0), top / 4))
    params = CtfSearchParameters(pixel_size_angstrom=pixel_size, voltage_kv=float(args.first("kV")),
                                 spherical_aberration_mm=float(args.first("Cs")),
                                 amplitude_contrast=float(args.first("AmpCont")), **phase_search)
    image = corrected.sums.get("dose_weighted", corrected.sums["sum"])
    stem = os.path.join(os.path.dirname(output), os.path.splitext(os.path.basename(movie))[0])
    r = estimate_ctf(image, params=params)
    write_mrc(stem + "_Ctf.mrc", r.diagnostics.diagnostic_image.astype(np.float32),
              pixel_size_angstrom=r.spectrum_pixel_size_angstrom)
    with open(stem + "_Ctf.txt", "w") as fh:
        fh.write("# Columns: #1 micrograph number; #2 - defocus 1 [A]; #3 - defocus 2; #4 - azimuth of "
                 "astigmatism; #5 - additional phase shift [radian]; #6 - cross correlation; #7 - spacing "
                 "(in Angstroms) up to which CTF rings were fit successfully\n")
        fh.write(f"{1:4d}   {r.defocus_1_angstrom:6.2f}  {r.defocus_2_angstrom:8.2f}  "
                 f"{r.astigmatism_azimuth_degree:8.2f}  {r.phase_shift_radian:8.2f}  {r.cross_correlation:7.2f}  "
                 f"{r.fit_resolution_angstrom:8.4f}\n")
    out.write(f"CTF estimation: defocus {r.defocus_1_angstrom:.1f} / {r.defocus_2_angstrom:.1f} A, "
              f"azimuth {r.astigmatism_azimuth_degree:.1f} deg, fit to {r.fit_resolution_angstrom:.2f} A\n"
              f"CTF results have been saved in:\n   {stem}_Ctf.txt\n\n")


def _input_movies(args: MotionCor2Args) -> list[str]:
    key = next(k for k in ("InMrc", "InTiff", "InEer") if args[k])
    path = args[key]
    if not args.first("Serial"):
        return [path]
    suffix = args["InSuffix"] or {"InMrc": ".mrc", "InTiff": ".tif", "InEer": ".eer"}[key]
    pattern = os.path.join(path, "*" + suffix) if os.path.isdir(path) else path + "*" + suffix
    movies = sorted(glob.glob(pattern))
    skips = [word for word in str(args["InSkips"] or "").split() if word]
    movies = [m for m in movies if not any(word in os.path.basename(m) for word in skips)]
    if not movies:
        raise InvalidParameters(f"-Serial 1 found no movie matching {pattern}", step="motioncorrection")
    return movies


def _output_for(args: MotionCor2Args, movie: str) -> str:
    out = args["OutMrc"]
    if not args.first("Serial"):
        return out
    stem = os.path.splitext(os.path.basename(movie))[0]
    return os.path.join(out, stem + ".mrc") if os.path.isdir(out) or out.endswith("/") else out + stem + ".mrc"


def _log_format(args: MotionCor2Args) -> str:
    if args["LogFormat"]:
        if args["LogFormat"] not in ("1.6.4", "1.5.0"):
            raise InvalidParameters(f"-LogFormat must be 1.6.4 or 1.5.0, got {args['LogFormat']}",
                                    step="motioncorrection")
        return args["LogFormat"]
    return "1.5.0" if args["LogFile"] else "1.6.4"


def _write_logs(args: MotionCor2Args, movie: str, corrected, shifts: np.ndarray) -> None:
    if args["LogDir"]:
        os.makedirs(args["LogDir"], exist_ok=True)
        prefix = os.path.join(args["LogDir"], os.path.splitext(os.path.basename(movie))[0])
    elif args["LogFile"]:
        prefix = args["LogFile"] + "0"
    else:
        return
    full = format_full_log(shifts, first_frame=corrected.first_frame)
    with open(prefix + "-Full.log", "w") as fh:
        fh.write(full)
    model = corrected.local_model
    if model is None:
        return
    n = shifts.shape[0]
    centres = corrected.patch_centres_px
    fitted = -model.motion_px(x_px=centres[:, 0:1], y_px=centres[:, 1:2], frame=np.arange(n)[None, :])
    files = {
        "-Patch-Full.log": full,
        "-Patch-Patch.log": format_patch_patch_log(centres_px=centres, measured_px=-corrected.patch_residual_px,
                                                   fitted_px=fitted),
        "-Patch-Frame.log": format_patch_frame_log(global_shifts_px=shifts, fitted_px=fitted,
                                                   first_frame=corrected.first_frame),
    }
    for suffix, text in files.items():
        with open(prefix + suffix, "w") as fh:
            fh.write(text)


def _process(args: MotionCor2Args, movie: str, out: TextIO) -> None:
    t0 = time.perf_counter()
    params = params_from_args(args, movie)
    refs = DetectorReferences(
        gain_path=args["Gain"] or None, dark_path=args["Dark"] or None,
        defect_file=args["DefectFile"] or None, defect_map=args["DefectMap"] or None,
        rotation_quarters=args.first("RotGain"), flip=args.first("FlipGain"),
        invert_gain=bool(args.first("InvGain")),
    )
    out.write(f"Load movie: {movie}\n")
    if args["Gain"]:
        out.write(f"Load gain refereince from\n   {args['Gain']}\nGain reference has been loaded.\n\n")
    groups = fmintfile_groups(args, movie) if args["FmIntFile"] else None
    upsampling = {1: 1, 2: 2, 3: 4}.get(args.first("EerSampling"))
    if upsampling is None:
        raise InvalidParameters(f"-EerSampling must be 1, 2 or 3, got {args.first('EerSampling')}",
                                step="motioncorrection")
    crop = None
    if any(args["Crop"]):
        if len(args["Crop"]) != 2 or min(args["Crop"]) <= 0:
            raise InvalidParameters(f"-Crop needs two positive sizes, got {args['Crop']}", step="motioncorrection")
        crop = tuple(max(1, round(v / params.output_bin)) for v in args["Crop"])
    output = _output_for(args, movie)
    given = None
    if args["InAln"] and not args["OutAln"]:   # MotionCor3: -OutAln wins over -InAln
        aln = aln_read(aln_path(args["InAln"], movie))
        out.write(f"Alignment loaded from {aln_path(args['InAln'], movie)}: alignment is bypassed.\n")
        given = (-aln.global_shifts_px, aln.patch_centres_px, -aln.patch_shifts_px)
    result, corrected = run_correction(movie, output_path=output, params=params, references=refs,
                                       frame_groups=groups, eer_upsampling=upsampling, crop_xy=crop,
                                       reverse_frames=args.first("TiffOrder") < 0,
                                       full_sum_path=args["FullSum"] or None, given_motion=given)
    shifts = -corrected.motion_px
    out.write("Full-frame alignment has been started.\n")
    out.write(format_iterations(corrected.global_errors_px))
    out.write(format_global_shifts(shifts, reference_frame=corrected.reference_frame, version=_log_format(args)))
    out.write(f"\nGlobal shifts are corrected: {result.timings_s['align_global']:f} sec\n")
    if corrected.local_model is not None:
        out.write(format_patch_progress(corrected.patch_errors_px))
        out.write(f"Patch alignment time: {result.timings_s['align_local']:.2f}(sec)\n\n")
        m = corrected.local_model
        out.write(f"Polynomial fit RMSD: {m.fit_rmsd_px:.3f} px, rejected {m.n_rejected}\n\n")
    compute = sum(result.timings_s[k] for k in ("prepare", "align_global", "align_local", "sum"))
    out.write(f"Computation time: {compute:f} sec\n\nSaving motion corrected images ......\n")
    for path in result.output_paths.values():
        out.write(f"Corrected sum has been saved in:\n   {path}\n\n")
    out.write("Motion corrected images saved.\n\n")
    _write_logs(args, movie, corrected, shifts)
    movie_shape = None   # (frames, ny, nx) of the input, read from its header once if an output needs it
    if args["OutAln"] or args.first("OutStar"):
        with open_movie(movie, eer_upsampling=upsampling) as header:
            movie_shape = (header.n_frames,) + tuple(header.frame_shape)
    if args["OutAln"]:
        os.makedirs(args["OutAln"], exist_ok=True)
        ny, nx = movie_shape[1:]
        patches = list(args["Patch"]) + [0, 0, 0]
        aln_write(aln_path(args["OutAln"], movie), AlignmentFile(
            stack_size=(nx, ny, shifts.shape[0]), patches=tuple(int(v) for v in patches[:3]),
            throw=(args.first("Throw"), args.first("Trunc")), global_shifts_px=shifts,
            patch_centres_px=corrected.patch_centres_px, patch_shifts_px=-corrected.patch_residual_px))
    if args.first("Cs") > 0 and output:
        _ctf_estimate(args, movie, output, corrected, result.pixel_size_angstrom, out)
    if args.first("OutStar"):
        from semc.motioncorrection.polishing_star import polishing_star_write  # pandas: only when asked

        star = os.path.splitext(output)[0] + ".star"
        polishing_star_write(star, movie=movie, gain=args["Gain"] or None, shifts_px=shifts,
                             first_frame=corrected.first_frame, movie_shape_nyx=movie_shape, params=params)
        out.write(f"Star file has been saved in:\n   {star}\n\n")
    if args["ArcDir"]:
        os.makedirs(args["ArcDir"], exist_ok=True)
        shutil.move(movie, os.path.join(args["ArcDir"], os.path.basename(movie)))
    out.write(f"Total time: {time.perf_counter() - t0:f} sec\n")
    out.flush()


def motioncor2_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``semc-motioncor2``; returns the exit status.

    0 on success, 1 when a movie fails, 2 on a bad command line.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["--version"], ["-version"], ["--Version"]):
        print(f"semc-motioncor2 (SEMC CPU engine)\n{VERSION_LINE}")
        return 0
    try:
        args = parse_motioncor2_argv(argv)
        _log_format(args)
    except InvalidParameters as exc:
        print(f"semc-motioncor2: error: {exc}", file=sys.stderr)
        return 2
    if "Gpu" in args.given:
        print("semc-motioncor2: warning: no GPU engine available, -Gpu ignored (running on CPU)",
              file=sys.stderr)
    for name in sorted(args.given & set(_NO_EFFECT)):
        print(f"semc-motioncor2: warning: -{name} is accepted but has no effect in this engine",
              file=sys.stderr)
    sys.stdout.write(format_parameter_echo(args) + "\n\n")
    status = 0
    try:
        movies = _input_movies(args)
    except ProcessingError as exc:
        print(f"semc-motioncor2: error: {exc}", file=sys.stderr)
        return 1
    for movie in movies:
        if args.first("Serial"):
            sys.stdout.write(f"added: {movie}\n")
        try:
            _process(args, movie, sys.stdout)
        except ProcessingError as exc:
            print(f"semc-motioncor2: error: {exc}", file=sys.stderr)
            status = 1
        except OSError as exc:   # a log, .aln, STAR or CTF file that cannot be written
            print(f"semc-motioncor2: error: {movie}: cannot write {exc.filename or 'an output'}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            status = 1
    return status
