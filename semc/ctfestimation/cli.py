"""Console entry points of the CTF step.

``semc-ctffind`` (:func:`ctffind_main`) is a CTFFIND 4.1-compatible program: the
same interactive prompts (see :mod:`semc.ctfestimation.ctffind_protocol`), the
same output files (:mod:`semc.ctfestimation.ctffind_files`), and CTFFIND's
command-line flags where CTFFIND has them.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import TextIO

from semc.base.errors import ProcessingError
from semc.ctfestimation.ctffind_files import (
    CTFFIND_VERSION,
    ctffind_files_write,
    ctffind_output_paths,
)
from semc.ctfestimation.ctffind_protocol import (
    CtffindAnswers,
    PromptReader,
    ProtocolError,
    ctffind_answers_read,
    ctffind_old_school_read,
)
from semc.ctfestimation.types import CtfResult, CtfSearchParameters

__all__ = ["ctffind_main"]

_USAGE = """Usage: semc-ctffind [options]   (answers are read from standard input, one per line)

A CTFFIND 4.1-compatible CTF estimator (SEMC built-in engine).

Options:
  --old-school-input                   read CTFFIND 3's input lines instead of answering prompts:
                                         input file / diagnostic file /
                                         CS[mm], HT[kV], AmpCnst, XMAG, DStep[um] /
                                         Box, ResMin[A], ResMax[A], dFMin[A], dFMax[A], FStep[A], dAst[A]
  --old-school-input-ctffind4          the same, then two more lines:
                                         is_movie, frames_to_average /
                                         find_phase_shift, min_phase_shift, max_phase_shift, step (rad)
  --amplitude-spectrum-input           the input image is an amplitude spectrum (origin at the centre)
  --filtered-amplitude-spectrum-input  same, already background-subtracted (treated as an amplitude spectrum)
  --omp-num-threads N, -j N            number of threads
  --ctffind5                           also ask CTFFIND 5's prompts (tilt, thickness, expert extras)
  --fast                               accepted and ignored (the search is always fast)
  --version                            print the version and exit
  -h, --help                           print this help and exit
"""


def _flags(argv: list[str]) -> dict:
    flags = {"spectrum": False, "threads": None, "ctffind5": os.environ.get("SEMC_CTFFIND_PROMPTS", "") == "5", "old_school": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--amplitude-spectrum-input", "--filtered-amplitude-spectrum-input"):
            flags["spectrum"] = True
        elif arg in ("--omp-num-threads", "-j"):
            if i + 1 >= len(argv) or not argv[i + 1].isdigit() or int(argv[i + 1]) < 1:
                raise ProtocolError(f"Error: {arg} needs a positive integer")
            flags["threads"] = int(argv[i + 1])
            i += 1
        elif arg == "--ctffind5":
            flags["ctffind5"] = True
        elif arg == "--fast":
            pass
        elif arg in ("--old-school-input", "--old-school-input-ctffind4"):
            if flags["old_school"] not in (None, arg):
                raise ProtocolError("Error: give only one of --old-school-input and --old-school-input-ctffind4")
            flags["old_school"] = arg
        elif arg in ("-h", "--help", "--version"):
            flags[arg.lstrip("-")] = True
        else:
            raise ProtocolError(f"Error: unknown option {arg}\n{_USAGE}")
        i += 1
    return flags


def _count_sections(path: str) -> int:
    from semc.base.io import open_movie

    try:
        with open_movie(path) as movie:
            return int(movie.n_frames)
    except ProcessingError:
        return 1


def _parameters(answers: CtffindAnswers, *, box_size: int) -> CtfSearchParameters:
    return CtfSearchParameters(
        pixel_size_angstrom=answers.pixel_size_angstrom, voltage_kv=answers.voltage_kv,
        spherical_aberration_mm=answers.spherical_aberration_mm, amplitude_contrast=answers.amplitude_contrast,
        box_size=box_size, min_resolution_angstrom=answers.min_resolution_angstrom,
        max_resolution_angstrom=answers.max_resolution_angstrom, min_defocus_angstrom=answers.min_defocus_angstrom,
        max_defocus_angstrom=answers.max_defocus_angstrom, defocus_step_angstrom=answers.defocus_step_angstrom,
        known_astigmatism_angstrom=answers.known_astigmatism_angstrom,
        known_astigmatism_azimuth_degree=answers.known_astigmatism_azimuth_degree,
        exhaustive_search=answers.exhaustive_search, astigmatism_restraint_angstrom=answers.astigmatism_restraint_angstrom,
        find_phase_shift=answers.find_phase_shift, min_phase_shift_radian=answers.min_phase_shift_radian,
        max_phase_shift_radian=answers.max_phase_shift_radian, phase_shift_step_radian=answers.phase_shift_step_radian,
        resample=answers.resample, target_pixel_size_angstrom=answers.target_pixel_size_angstrom,
        determine_tilt=answers.determine_tilt,
    )


def _estimate(answers: CtffindAnswers, *, spectrum_input: bool, workers: int) -> tuple[list[CtfResult], CtfSearchParameters]:
    import numpy as np

    from semc.base.io import open_movie
    from semc.ctfestimation.calc.internal.estimate import (
        ctf_estimate_from_frames,
        ctf_estimate_from_image,
        ctf_estimate_from_spectrum,
    )

    with open_movie(answers.input_path) as movie:
        sections = np.asarray(movie.read_frames(), dtype=np.float32)
    if spectrum_input:
        if answers.determine_tilt:
            raise ProtocolError("Error: the sample tilt cannot be determined from an amplitude spectrum input")
        params = _parameters(answers, box_size=sections.shape[-1] - sections.shape[-1] % 2)
        results = [ctf_estimate_from_spectrum(s[: params.box_size, : params.box_size].astype(np.float64), params=params,
                                              spectrum_pixel_size_angstrom=answers.pixel_size_angstrom) for s in sections]
        return results, params
    params = _parameters(answers, box_size=answers.box_size)
    if answers.input_is_movie:
        return [ctf_estimate_from_frames(sections, params=params, frames_to_average=answers.frames_to_average, workers=workers)], params
    return [ctf_estimate_from_image(s, params=params, workers=workers) for s in sections], params


def _dfmid_row(defocus_1: float, defocus_2: float, azimuth: float, score: float) -> str:
    return f"{defocus_1:12.2f}{defocus_2:12.2f}{azimuth:12.2f}{score:12.5f}"


def _old_school_header(answers: CtffindAnswers, line3: tuple[float, float], out: TextIO) -> None:
    """CTFFIND's echo of line 3 (RELION's CTFFIND 3 reader looks for it)."""
    magnification, detector_step = line3
    out.write(f"\n CS[mm], HT[kV], AmpCnst, XMAG, DStep[um]\n{answers.spherical_aberration_mm:5.1f}{answers.voltage_kv:9.1f}"
              f"{answers.amplitude_contrast:8.2f}{magnification:10.1f}{detector_step:9.3f}\n\n")


def _old_school_report(results: list[CtfResult], *, ctffind3: bool, phase_searched: bool, out: TextIO) -> None:
    """CTFFIND's DFMID1/DFMID2/ANGAST/CC tables; with ``--old-school-input`` the "Final Values" line
    that CTFFIND 3 clients (RELION's ``relion_run_ctffind`` without ``--is_ctffind4``) parse."""
    header = "      DFMID1      DFMID2      ANGAST          CC\n"
    for r in results:
        if ctffind3:
            out.write("\nSEARCHING CTF PARAMETERS...\n")
        if r.search_start is not None:
            out.write(header + _dfmid_row(*r.search_start) + "\n")
        if ctffind3:
            out.write("\nREFINING CTF PARAMETERS...\n" + header)
            out.write(_dfmid_row(r.defocus_1_angstrom, r.defocus_2_angstrom, r.astigmatism_azimuth_degree, r.cross_correlation)
                      + "   Final Values\n")
            if phase_searched:
                out.write(f"Final phase shift = {r.phase_shift_radian:0.3f} radians\n")


def _report(results: list[CtfResult], diagnostic_path: str, out: TextIO) -> None:
    for number, r in enumerate(results, start=1):
        resolution = "inf" if math.isinf(r.fit_resolution_angstrom) else f"{r.fit_resolution_angstrom:.1f}"
        out.write(
            f"\nProcessing micrograph {number} of {len(results)}\n"
            f"Estimated defocus values        : {r.defocus_1_angstrom:.2f} , {r.defocus_2_angstrom:.2f} Angstroms\n"
            f"Estimated azimuth of astigmatism: {r.astigmatism_azimuth_degree:.2f} degrees\n"
            f"Additional phase shift          : {math.degrees(r.phase_shift_radian):.3f} degrees "
            f"({r.phase_shift_radian:.3f} radians) ({r.phase_shift_radian / math.pi:.3f} PIs)\n"
            + (f"Tilt_axis, tilt angle           : {r.tilt_axis_degree:.2f} , {r.tilt_angle_degree:.2f} degrees\n"
               if r.tilt_axis_degree is not None else "")
            + f"Score                           : {r.cross_correlation:.5f}\n"
            f"Pixel size for fitting          : {r.spectrum_pixel_size_angstrom:.3f} Angstroms\n"
            f"Thon rings with good fit up to  : {resolution} Angstroms\n"
        )
    diagnostic, text, avrot = ctffind_output_paths(diagnostic_path)
    out.write(
        f"\nSummary of results                          : {text}\n"
        f"Diagnostic images                           : {diagnostic}\n"
        f"Detailed results, including 1D fit profiles : {avrot}\n"
    )


def ctffind_main(argv: list[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run ``semc-ctffind``; returns the exit status (0 on success, 1 on any error, with a message)."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    try:
        flags = _flags(list(sys.argv[1:] if argv is None else argv))
        if flags.get("h") or flags.get("help"):
            stdout.write(_USAGE)
            return 0
        if flags.get("version"):
            stdout.write(f"semc-ctffind, CTFFIND {CTFFIND_VERSION}\n")
            return 0
        count_sections = (lambda p: 1) if flags["spectrum"] else _count_sections
        if flags["old_school"]:
            answers, line3 = ctffind_old_school_read(stdin, ctffind4=flags["old_school"] == "--old-school-input-ctffind4",
                                                     count_sections=count_sections)
            _old_school_header(answers, line3, stdout)
        else:
            stdout.write(f"\n        **   Welcome to Ctffind   **\n\n            Version : {CTFFIND_VERSION}\n\n")
            answers = ctffind_answers_read(PromptReader(stdin, stdout), count_sections=count_sections, ctffind5=flags["ctffind5"])
        start = time.perf_counter()
        results, params = _estimate(answers, spectrum_input=flags["spectrum"], workers=flags["threads"] or answers.threads)
        ctffind_files_write(results, diagnostic_path=answers.diagnostic_path, params=params, input_name=answers.input_path)
        if flags["old_school"]:
            _old_school_report(results, ctffind3=flags["old_school"] == "--old-school-input",
                               phase_searched=answers.find_phase_shift, out=stdout)
        _report(results, answers.diagnostic_path, stdout)
        stdout.write(f"\nTotal execution time : {time.perf_counter() - start:.2f} seconds\n")
        stdout.flush()
        return 0
    except ProtocolError as error:
        stdout.write(f"\n{error}\n")
        stdout.flush()
        return 1
    except ProcessingError as error:
        stdout.write(f"\nError: {error}\n")
        stdout.flush()
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        stdout.write(f"\nError: {error}\n")
        stdout.flush()
        return 1
    except Exception as error:  # noqa: BLE001 - the program's boundary: CTFFIND's clients read a message, not a traceback
        stdout.write(f"\nError: internal error ({type(error).__name__}: {error}); please report it\n")
        stdout.flush()
        return 2
