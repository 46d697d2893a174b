"""Amplitude spectra for CTF fitting: from a micrograph, from movie frames, and background removal.

Like CTFFIND 4 (``algorithms.md`` §3.2), one FFT of the whole (mean-padded, square)
micrograph is taken. The spectrum is then reduced to ``box`` x ``box`` by averaging
``k`` x ``k`` blocks centred on the Fourier grid (odd ``k``: plain blocks; even ``k``:
``k + 1`` samples with half weights at both ends), which is CTFFIND's resampling to a
pixel near the target followed by clipping the centre. ``k`` is chosen so that the
fitted pixel is at most the target pixel size.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import scipy.fft
import scipy.ndimage

from semc.base.errors import InvalidParameters

__all__ = [
    "spectrum_binning_factor",
    "amplitude_spectrum_from_image",
    "amplitude_spectrum_from_frames",
    "spectrum_background_subtract",
]

logger = logging.getLogger(__name__)
_STEP = "ctfestimation"


def spectrum_binning_factor(
    *, padded_size: int, pixel_size_angstrom: float, box_size: int, target_pixel_size_angstrom: float | None
) -> int:
    """Block size k (>= 1) that turns a padded_size^2 spectrum into box_size^2 at a pixel <= target.

    The fitted pixel is ``padded_size * pixel_size / (box_size * k)``; ``k`` never
    exceeds ``padded_size // box_size`` (the box must fit in the spectrum).
    """
    if padded_size < box_size:
        raise InvalidParameters(
            f"image ({padded_size} px) is smaller than the spectrum box ({box_size} px)", step=_STEP
        )
    k_max = padded_size // box_size
    if target_pixel_size_angstrom is None or pixel_size_angstrom >= target_pixel_size_angstrom:
        return 1
    wanted = math.ceil(padded_size * pixel_size_angstrom / (box_size * target_pixel_size_angstrom) - 1e-9)
    return max(1, min(k_max, wanted))


def _block_weights(k: int) -> np.ndarray:
    """Weights of one centred block: k ones (odd k) or [1/2, 1, ..., 1, 1/2] over k + 1 samples."""
    if k % 2:
        return np.ones(k) / k
    weights = np.ones(k + 1)
    weights[0] = weights[-1] = 0.5
    return weights / k


def _bin_axis(data: np.ndarray, *, axis: int, centres: np.ndarray, k: int, period: int) -> np.ndarray:
    """Weighted sum over centred blocks along one axis (indices wrap with ``period``)."""
    weights = _block_weights(k)
    half = (len(weights) - 1) // 2
    out = None
    for offset, weight in zip(range(-half, half + 1), weights, strict=True):
        part = np.take(data, (centres + offset) % period, axis=axis)
        out = part * weight if out is None else out + part * weight
    return out


def _binned_half_plane(amplitude: np.ndarray, *, n: int, box_size: int, k: int) -> np.ndarray:
    """Bin an rfft2 amplitude (n, n//2+1) into the kx >= 0 half of a centred box: (box+1, box//2+1), ky = -box/2..box/2."""
    half_box = box_size // 2
    j = np.arange(-half_box, half_box + 1)
    rows = _bin_axis(amplitude, axis=0, centres=(j * k) % n, k=k, period=n)  # (box, n//2+1), kx = 0..n/2
    reach = (len(_block_weights(k)) - 1) // 2
    if reach:
        # blocks around kx = 0 need kx < 0: |F(ky, -kx)| = |F(-ky, kx)|
        negative = _bin_axis(amplitude[:, 1 : reach + 1], axis=0, centres=(-j * k) % n, k=k, period=n)
        # and blocks around kx = n/2 need kx > n/2, i.e. -(n - kx) (n is even)
        beyond = _bin_axis(amplitude[:, n // 2 - reach : n // 2], axis=0, centres=(-j * k) % n, k=k, period=n)
        rows = np.concatenate([negative[:, ::-1], rows, beyond[:, ::-1]], axis=1)  # column c is kx = c - reach
    kx_index = np.arange(half_box + 1) * k + reach
    return _bin_axis(rows, axis=1, centres=kx_index, k=k, period=rows.shape[1])


def amplitude_spectrum_from_image(
    image: np.ndarray,
    *,
    pixel_size_angstrom: float,
    box_size: int,
    target_pixel_size_angstrom: float | None = 1.4,
    workers: int = 1,
) -> tuple[np.ndarray, float]:
    """Centred amplitude spectrum of a micrograph, reduced to box_size^2.

    Parameters
    ----------
    image
        (ny, nx) micrograph; padded with its mean to a square of its largest side.
    pixel_size_angstrom
        Pixel size of the image (Å).
    box_size
        Side of the returned spectrum (px, even).
    target_pixel_size_angstrom
        Resample so that the fitted pixel is at most this (Å); ``None`` keeps the image pixel.
    workers
        Threads for ``scipy.fft``.

    Returns
    -------
    spectrum : numpy.ndarray
        (box_size, box_size) float64 amplitude spectrum, origin at (box/2, box/2), rows = ky.
    spectrum_pixel_size_angstrom : float
        Pixel size (Å) the spectrum corresponds to (1 / (box * that) is its frequency step).

    Raises
    ------
    InvalidParameters
        If the image is not 2D, not finite, or smaller than the box.
    """
    if image.ndim != 2:
        raise InvalidParameters(f"micrograph must be 2D, got shape {image.shape}", step=_STEP)
    data = np.asarray(image, dtype=np.float32)
    mean = float(data.mean(dtype=np.float64))
    if not math.isfinite(mean):
        raise InvalidParameters("micrograph contains NaN or infinite values", step=_STEP)
    n = scipy.fft.next_fast_len(max(data.shape), real=True)
    n += n % 2
    k = spectrum_binning_factor(
        padded_size=n, pixel_size_angstrom=pixel_size_angstrom, box_size=box_size,
        target_pixel_size_angstrom=target_pixel_size_angstrom,
    )
    padded = np.full((n, n), mean, dtype=np.float32)
    padded[: data.shape[0], : data.shape[1]] = data
    padded -= mean
    amplitude = np.abs(scipy.fft.rfft2(padded, workers=workers))
    return _assemble(amplitude, n=n, box_size=box_size, k=k), n * pixel_size_angstrom / (box_size * k)


def amplitude_spectrum_from_frames(
    frames: np.ndarray,
    *,
    pixel_size_angstrom: float,
    box_size: int,
    frames_to_average: int = 1,
    target_pixel_size_angstrom: float | None = 1.4,
    workers: int = 1,
) -> tuple[np.ndarray, float]:
    """As CTFFIND's movie mode: average groups of frames in real space, sum their amplitude spectra.

    Parameters
    ----------
    frames
        (n_frames, ny, nx) movie.
    frames_to_average
        Frames summed per group (a last, shorter group is used too).

    Returns and Raises as :func:`amplitude_spectrum_from_image`.
    """
    if frames.ndim != 3 or frames.shape[0] < 1:
        raise InvalidParameters(f"movie must be (n, ny, nx), got shape {frames.shape}", step=_STEP)
    if frames_to_average < 1:
        raise InvalidParameters(f"frames to average must be >= 1, got {frames_to_average}", step=_STEP)
    total = None
    pixel = pixel_size_angstrom
    for start in range(0, frames.shape[0], frames_to_average):
        group = frames[start : start + frames_to_average].mean(axis=0, dtype=np.float32)
        spectrum, pixel = amplitude_spectrum_from_image(
            group, pixel_size_angstrom=pixel_size_angstrom, box_size=box_size,
            target_pixel_size_angstrom=target_pixel_size_angstrom, workers=workers,
        )
        total = spectrum if total is None else total + spectrum
    return total, pixel


def _assemble(amplitude: np.ndarray, *, n: int, box_size: int, k: int) -> np.ndarray:
    """Full centred (box, box) spectrum from the binned kx >= 0 half by Friedel symmetry."""
    half_plane = _binned_half_plane(amplitude, n=n, box_size=box_size, k=k)  # (box+1, box/2+1)
    half_box = box_size // 2
    spectrum = np.empty((box_size, box_size), dtype=np.float64)
    spectrum[:, half_box:] = half_plane[:box_size, :half_box]
    # S(ky, -kx) = S(-ky, kx); row r <-> ky = r - half_box, so -ky is half-plane row box - r
    mirror_rows = box_size - np.arange(box_size)
    spectrum[:, :half_box] = half_plane[mirror_rows, 1 : half_box + 1][:, ::-1]
    return spectrum


def spectrum_background_subtract(
    spectrum: np.ndarray, *, pixel_size_angstrom: float, min_resolution_angstrom: float
) -> np.ndarray:
    """Background-subtracted spectrum, as CTFFIND's ``ComputeFilteredAmplitudeSpectrumFull2D``.

    A box average of side box*pixel/min_res*sqrt(2) (odd, >= 3) is subtracted; the
    central cross (|kx| or |ky| <= 1 px) is replaced by its neighbours' average;
    the result is scaled to unit standard deviation and clipped at +4 sigma.

    Returns
    -------
    numpy.ndarray
        (box, box) float64, same centring as the input.
    """
    box = spectrum.shape[0]
    data = np.array(spectrum, dtype=np.float64)
    c = box // 2
    data[c - 1 : c + 2, :] = 0.5 * (data[c - 2, :] + data[c + 2, :])
    data[:, c - 1 : c + 2] = 0.5 * (data[:, c - 2 : c - 1] + data[:, c + 2 : c + 3])
    size = int(box * pixel_size_angstrom / min_resolution_angstrom * math.sqrt(2.0))
    size = max(3, size + (1 - size % 2))
    filtered = data - scipy.ndimage.uniform_filter(data, size=size, mode="reflect")
    radius = np.hypot(*np.meshgrid(np.arange(box) - c, np.arange(box) - c, indexing="ij"))
    ring = (radius > box * pixel_size_angstrom / min_resolution_angstrom) & (radius < c)
    sigma = float(filtered[ring].std()) if ring.any() else float(filtered.std())
    filtered /= sigma if sigma > 0 else 1.0
    mean = float(filtered[ring].mean()) if ring.any() else 0.0
    np.minimum(filtered, mean + 4.0, out=filtered)
    return filtered
