"""Python API of the built-in CTF engine, for the daemon's task and for ``semc-ctffind``.

Inputs are a micrograph (array or MRC/TIFF path), a movie path (CTFFIND's movie
mode), or an amplitude spectrum (array or path, as RELION passes it with
``--amplitude-spectrum-input``); outputs are a :class:`CtfResult` and, when a
diagnostic path is given, CTFFIND 4.1's three files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from semc.base.errors import InvalidParameters
from semc.base.io import open_movie, read_image
from semc.base.parallel import fft_workers
from semc.ctfestimation.calc.internal.estimate import (
    ctf_estimate_from_frames,
    ctf_estimate_from_image,
    ctf_estimate_from_spectrum,
)
from semc.ctfestimation.ctffind_files import ctffind_files_write
from semc.ctfestimation.types import CtfResult, CtfSearchParameters

__all__ = ["estimate_ctf", "estimate_ctf_from_movie", "estimate_ctf_from_amplitude_spectrum"]

logger = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def _finish(result: CtfResult, *, params: CtfSearchParameters, diagnostic_path: PathLike | None, input_name: str) -> CtfResult:
    logger.info(
        "CTF of %s: %.1f / %.1f Å, %.1f°, phase %.3f rad, CC %.4f, fit to %.2f Å",
        input_name, result.defocus_1_angstrom, result.defocus_2_angstrom, result.astigmatism_azimuth_degree,
        result.phase_shift_radian, result.cross_correlation, result.fit_resolution_angstrom,
    )
    if diagnostic_path is not None:
        ctffind_files_write([result], diagnostic_path=diagnostic_path, params=params, input_name=input_name)
    return result


def estimate_ctf(
    micrograph: np.ndarray | PathLike,
    *,
    params: CtfSearchParameters,
    diagnostic_path: PathLike | None = None,
    workers: int | None = None,
) -> CtfResult:
    """Estimate the CTF of one micrograph.

    Parameters
    ----------
    micrograph
        (ny, nx) array, or the path of a 2D MRC/TIFF file.
    params
        Search settings; ``params.pixel_size_angstrom`` is the micrograph's pixel.
    diagnostic_path
        When given, CTFFIND's diagnostic MRC is written there, with ``<stem>.txt``
        and ``<stem>_avrot.txt`` beside it.
    workers
        FFT threads (default :func:`semc.base.parallel.fft_workers`).

    Raises
    ------
    InputMissing, CorruptInput
        When the file is missing or unreadable.
    InvalidParameters
        When the image is not 2D, not finite, or smaller than the box.
    """
    name = "<array>"
    if not isinstance(micrograph, np.ndarray):
        name = str(micrograph)
        micrograph, _ = read_image(micrograph)
    result = ctf_estimate_from_image(micrograph, params=params, workers=workers or fft_workers())
    return _finish(result, params=params, diagnostic_path=diagnostic_path, input_name=name)


def estimate_ctf_from_movie(
    movie_path: PathLike,
    *,
    params: CtfSearchParameters,
    frames_to_average: int = 1,
    diagnostic_path: PathLike | None = None,
    workers: int | None = None,
) -> CtfResult:
    """CTFFIND's movie mode: average ``frames_to_average`` frames in real space, sum their spectra, fit.

    Raises
    ------
    InputMissing, CorruptInput, InvalidParameters
        As :func:`estimate_ctf`, and for a bad ``frames_to_average``.
    """
    with open_movie(movie_path) as movie:
        frames = movie.read_frames()
    result = ctf_estimate_from_frames(
        np.asarray(frames, dtype=np.float32), params=params, frames_to_average=frames_to_average,
        workers=workers or fft_workers(),
    )
    return _finish(result, params=params, diagnostic_path=diagnostic_path, input_name=str(movie_path))


def estimate_ctf_from_amplitude_spectrum(
    spectrum: np.ndarray | PathLike,
    *,
    params: CtfSearchParameters,
    diagnostic_path: PathLike | None = None,
) -> CtfResult:
    """Fit a given amplitude spectrum (square, origin at the centre, e.g. RELION's ``_PS.mrc``).

    ``params.pixel_size_angstrom`` is the spectrum's pixel size (as RELION passes it).

    Raises
    ------
    InputMissing, CorruptInput
        When the file is missing or unreadable.
    InvalidParameters
        When the spectrum is not square and even-sized.
    """
    name = "<array>"
    if not isinstance(spectrum, np.ndarray):
        name = str(Path(spectrum))
        spectrum, _ = read_image(spectrum)
    if params.determine_tilt:
        raise InvalidParameters(f"the sample tilt cannot be determined from an amplitude spectrum ({name})", step="ctfestimation")
    data = np.asarray(spectrum, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] != data.shape[1] or data.shape[0] % 2:
        raise InvalidParameters(f"amplitude spectrum must be square with an even side, got {data.shape}", step="ctfestimation")
    result = ctf_estimate_from_spectrum(data, params=params, spectrum_pixel_size_angstrom=params.pixel_size_angstrom)
    return _finish(result, params=params, diagnostic_path=diagnostic_path, input_name=name)
