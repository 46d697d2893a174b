"""CTFFIND 4.1's output files: the results ``.txt``, the ``_avrot.txt`` curves and the diagnostic MRC.

Formats (``appion-compat.md`` §5.6): ``#`` header lines, then one row of seven
numbers per micrograph (number, defocus 1, defocus 2, azimuth, phase shift,
cross correlation, fit resolution), and CTFFIND 5's tilt axis, tilt angle and
thickness when the tilt was estimated; ``_avrot.txt`` holds six lines per micrograph.
RELION 3.1 reads the ``acceleration voltage:`` header line (words 8, 13 and 18)
and the row after ``# Columns:``.
"""

from __future__ import annotations

import datetime
import math
import os
from pathlib import Path

import numpy as np

from semc.base.io import write_mrc
from semc.ctfestimation.types import CtfResult, CtfSearchParameters

__all__ = ["CTFFIND_VERSION", "ctffind_output_paths", "ctffind_files_write"]

#: version string written in headers (the CTFFIND protocol version we speak, and ours)
CTFFIND_VERSION = "4.1.14 (SEMC built-in engine)"


def ctffind_output_paths(diagnostic_path: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """(diagnostic MRC, results .txt, _avrot.txt) as CTFFIND names them from the diagnostic file name."""
    diagnostic = Path(diagnostic_path)
    stem = diagnostic.with_suffix("") if diagnostic.suffix else diagnostic
    return diagnostic, stem.with_name(stem.name + ".txt"), stem.with_name(stem.name + "_avrot.txt")


def _header(input_name: str, params: CtfSearchParameters, n_micrographs: int) -> list[str]:
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return [
        f"# Output from CTFFind version {CTFFIND_VERSION}, run on {now}",
        f"# Input file: {input_name} ; Number of micrographs: {n_micrographs}",
        f"# Pixel size: {params.pixel_size_angstrom:.3f} Angstroms ; acceleration voltage: {params.voltage_kv:.1f} keV ; "
        f"spherical aberration: {params.spherical_aberration_mm:.2f} mm ; amplitude contrast: {params.amplitude_contrast:.2f}",
        f"# Box size: {params.box_size} pixels ; min. res.: {params.min_resolution_angstrom:.1f} Angstroms ; "
        f"max. res.: {params.max_resolution_angstrom:.1f} Angstroms ; min. def.: {params.min_defocus_angstrom:.1f} um; "
        f"max. def. {params.max_defocus_angstrom:.1f} um",
    ]


def _number(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.6f}"


def _write_text(path: Path, lines: list[str]) -> None:
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temporary.write_text("\n".join(lines) + "\n")
    os.replace(temporary, path)


def ctffind_files_write(
    results: list[CtfResult], *, diagnostic_path: str | os.PathLike[str], params: CtfSearchParameters, input_name: str
) -> tuple[Path, Path, Path]:
    """Write the three CTFFIND files for one or more micrographs (atomically each).

    Returns
    -------
    tuple of Path
        (diagnostic MRC, results .txt, _avrot.txt).
    """
    diagnostic, text, avrot = ctffind_output_paths(diagnostic_path)
    header = _header(input_name, params, len(results))
    tilted = any(r.tilt_axis_degree is not None for r in results)
    rows = [
        " ".join(
            [f"{i:.6f}", f"{r.defocus_1_angstrom:.6f}", f"{r.defocus_2_angstrom:.6f}", f"{r.astigmatism_azimuth_degree:.6f}",
             f"{r.phase_shift_radian:.6f}", f"{r.cross_correlation:.6f}", _number(r.fit_resolution_angstrom)]
            + ([f"{r.tilt_axis_degree or 0.0:.6f}", f"{r.tilt_angle_degree or 0.0:.6f}", f"{0.0:.6f}"] if tilted else [])
        )
        for i, r in enumerate(results, start=1)
    ]
    columns = (
        "# Columns: #1 - micrograph number; #2 - defocus 1 [Angstroms]; #3 - defocus 2; #4 - azimuth of astigmatism; "
        "#5 - additional phase shift [radians]; #6 - cross correlation; #7 - spacing (in Angstroms) up to which CTF rings "
        "were fit successfully"
    )
    if tilted:  # CTFFIND 5's three more columns (the thickness is not estimated: 0)
        columns += "; #8 - Estimated tilt axis angle; #9 - Estimated tilt angle ; #10 Estimated sample thickness (in Angstroms)"
    _write_text(text, [*header, columns, *rows])
    avrot_lines = [
        *header,
        "# 6 lines per micrograph: #1 - spatial frequency (1/Angstroms); #2 - 1D rotational average of spectrum "
        "(assuming no astigmatism); #3 - 1D rotational average of spectrum; #4 - CTF fit; #5 - cross-correlation "
        "between spectrum and CTF fit; #6 - 2sigma of expected cross correlation of noise",
    ]
    for r in results:
        d = r.diagnostics
        for curve in (d.spatial_frequency_per_angstrom, d.rotational_average, d.equiphase_average, d.ctf_fit,
                      d.fit_correlation, d.noise_correlation_2sigma):
            avrot_lines.append(" ".join(f"{v:.6f}" for v in curve))
    _write_text(avrot, avrot_lines)
    stack = np.stack([r.diagnostics.diagnostic_image for r in results]).astype(np.float32)
    write_mrc(diagnostic, stack[0] if len(results) == 1 else stack, pixel_size_angstrom=results[0].spectrum_pixel_size_angstrom)
    return diagnostic, text, avrot
