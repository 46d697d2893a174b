"""One call from a spectrum or a micrograph to a :class:`CtfResult` (pure: arrays in, dataclass out)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from semc.ctfestimation.calc.internal.diagnostics import diagnostics_compute
from semc.ctfestimation.calc.internal.fit import fit_spectrum
from semc.ctfestimation.calc.internal.model import CtfOptics, defoci_from_xy, xy_from_defoci
from semc.ctfestimation.calc.internal.spectrum import (
    amplitude_spectrum_from_frames,
    amplitude_spectrum_from_image,
    spectrum_background_subtract,
)
from semc.ctfestimation.calc.internal.tilt import sample_tilt_estimate
from semc.ctfestimation.types import CtfResult, CtfSearchParameters

__all__ = ["ctf_estimate_from_frames", "ctf_estimate_from_image", "ctf_estimate_from_spectrum"]


def ctf_estimate_from_spectrum(
    spectrum: np.ndarray, *, params: CtfSearchParameters, spectrum_pixel_size_angstrom: float, spectrum_seconds: float = 0.0
) -> CtfResult:
    """Fit a centred (box, box) amplitude spectrum (origin at box/2, rows = ky).

    Parameters
    ----------
    spectrum
        Amplitude (not power) spectrum, e.g. RELION's ``_PS.mrc`` or :func:`amplitude_spectrum_from_image`.
    params
        Search settings; ``params.pixel_size_angstrom`` is not used here.
    spectrum_pixel_size_angstrom
        Pixel size (Å) the spectrum corresponds to.
    spectrum_seconds
        Time already spent computing the spectrum (reported in ``timings_s``).
    """
    start = time.perf_counter()
    filtered = spectrum_background_subtract(
        spectrum, pixel_size_angstrom=spectrum_pixel_size_angstrom, min_resolution_angstrom=params.min_resolution_angstrom
    )
    fit = fit_spectrum(filtered, params=params, spectrum_pixel_size_angstrom=spectrum_pixel_size_angstrom)
    searched = time.perf_counter()
    optics = CtfOptics(params.voltage_kv, params.spherical_aberration_mm, params.amplitude_contrast)
    diagnostics, resolution = diagnostics_compute(
        filtered, pixel_size_angstrom=spectrum_pixel_size_angstrom, optics=optics, mean_angstrom=fit.mean_angstrom,
        x_angstrom=fit.x_angstrom, y_angstrom=fit.y_angstrom, phase_shift_radian=fit.phase_shift_radian,
        min_resolution_angstrom=params.min_resolution_angstrom,
    )
    defocus_1, defocus_2, azimuth = defoci_from_xy(fit.mean_angstrom, fit.x_angstrom, fit.y_angstrom)
    search_start = None
    if fit.initial is not None:
        search_start = (*defoci_from_xy(*fit.initial[:3]), fit.initial[4])
    return CtfResult(
        defocus_1_angstrom=defocus_1,
        defocus_2_angstrom=defocus_2,
        astigmatism_azimuth_degree=azimuth,
        phase_shift_radian=fit.phase_shift_radian,
        cross_correlation=fit.score,
        fit_resolution_angstrom=resolution,
        spectrum_pixel_size_angstrom=spectrum_pixel_size_angstrom,
        diagnostics=diagnostics,
        timings_s={"spectrum": spectrum_seconds, "search": searched - start, "diagnostics": time.perf_counter() - searched},
        search_start=search_start,
    )


def ctf_estimate_from_image(image: np.ndarray, *, params: CtfSearchParameters, workers: int = 1) -> CtfResult:
    """Spectrum of a (ny, nx) micrograph (one FFT, resampled, see :mod:`spectrum`), then fit it."""
    start = time.perf_counter()
    spectrum, pixel = amplitude_spectrum_from_image(
        image, pixel_size_angstrom=params.pixel_size_angstrom, box_size=params.box_size,
        target_pixel_size_angstrom=params.target_pixel_size_angstrom if params.resample else None, workers=workers,
    )
    result = ctf_estimate_from_spectrum(
        spectrum, params=params, spectrum_pixel_size_angstrom=pixel, spectrum_seconds=time.perf_counter() - start
    )
    return _with_tilt(result, image, params=params, workers=workers)


def _with_tilt(result: CtfResult, image: np.ndarray, *, params: CtfSearchParameters, workers: int) -> CtfResult:
    """Add the specimen tilt (:mod:`tilt`) when ``params.determine_tilt``; timed as "tilt"."""
    if not params.determine_tilt:
        return result
    start = time.perf_counter()
    _, x, y = xy_from_defoci(result.defocus_1_angstrom, result.defocus_2_angstrom, result.astigmatism_azimuth_degree)
    tilt = sample_tilt_estimate(image, params=params, x_angstrom=x, y_angstrom=y, phase_shift_radian=result.phase_shift_radian,
                                workers=workers)
    return dataclasses.replace(result, tilt_axis_degree=tilt.axis_degree, tilt_angle_degree=tilt.angle_degree,
                               timings_s={**result.timings_s, "tilt": time.perf_counter() - start})


def ctf_estimate_from_frames(
    frames: np.ndarray, *, params: CtfSearchParameters, frames_to_average: int = 1, workers: int = 1
) -> CtfResult:
    """CTFFIND's movie mode on a (n, ny, nx) stack: spectra of groups of averaged frames, summed, then fit."""
    start = time.perf_counter()
    spectrum, pixel = amplitude_spectrum_from_frames(
        frames, pixel_size_angstrom=params.pixel_size_angstrom, box_size=params.box_size,
        frames_to_average=frames_to_average,
        target_pixel_size_angstrom=params.target_pixel_size_angstrom if params.resample else None, workers=workers,
    )
    result = ctf_estimate_from_spectrum(
        spectrum, params=params, spectrum_pixel_size_angstrom=pixel, spectrum_seconds=time.perf_counter() - start
    )
    if not params.determine_tilt:
        return result
    return _with_tilt(result, frames.mean(axis=0, dtype=np.float32), params=params, workers=workers)
