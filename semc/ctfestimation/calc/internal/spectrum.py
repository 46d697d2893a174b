"""Amplitude spectra for CTF fitting: from a micrograph, from movie frames, and background removal.

Like CTFFIND 4 (``algorithms.md`` §3.2), one FFT of the whole micrograph is taken
(padded with its mean only to FFT-friendly even sizes, not to a square). The spectrum
is then reduced to ``box`` x ``box`` by averaging windows centred on the Fourier grid,
``k`` samples wide along the longest side and ``k * n_short / n_long`` along the other
(window weights are the overlap with each sample, so an odd integer ``k`` is a plain
block and an even one has half weights at its ends); this is CTFFIND's resampling to
a pixel near the target followed by clipping the centre. ``k`` is chosen so that the
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
    "amplitude_spectrum_from_frames",
    "amplitude_spectrum_from_image",
    "spectrum_background_subtract",
    "spectrum_binning_factor",
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


def _overlap_weights(centres: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Window [c - width/2, c + width/2] around each centre, as weights on integer samples.

    Sample r covers [r - 1/2, r + 1/2]; its weight is the overlap with the window
    divided by ``width`` (so the weights of one window sum to 1). An integer odd
    width gives ``width`` equal weights; an even one adds half weights at both ends.

    Returns
    -------
    tuple of numpy.ndarray
        (indices, weights), both (len(centres), L).
    """
    count = math.ceil(width) + 2
    low = centres - 0.5 * width
    first = np.floor(low + 0.5).astype(np.int64)
    indices = first[:, None] + np.arange(count)
    overlap = np.minimum(indices + 0.5, (centres + 0.5 * width)[:, None]) - np.maximum(indices - 0.5, low[:, None])
    return indices, np.clip(overlap, 0.0, None) / width


def _bin_axis(data: np.ndarray, *, axis: int, indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sums of ``data`` along one axis, one output per row of (indices, weights)."""
    out = None
    for column in range(indices.shape[1]):
        shape = [1, 1]
        shape[axis] = -1
        part = np.take(data, indices[:, column], axis=axis) * weights[:, column].reshape(shape)
        out = part if out is None else out + part
    return out


def _binned_half_plane(amplitude: np.ndarray, *, shape: tuple[int, int], box_size: int, step: tuple[float, float]) -> np.ndarray:
    """Bin an rfft2 amplitude (ny, nx//2+1) onto the kx >= 0 half of a centred box: (box+1, box//2+1).

    Output row j is ky = (j - box/2) * step[0] input rows, column i is kx = i * step[1]
    input columns; each output sample averages a step x step window around it.
    """
    ny, nx = shape
    half_box = box_size // 2
    j = np.arange(-half_box, half_box + 1)
    rows_index, rows_weight = _overlap_weights(j * step[0], step[0])
    rows = _bin_axis(amplitude, axis=0, indices=rows_index % ny, weights=rows_weight)  # (box+1, nx//2+1)
    cols_index, cols_weight = _overlap_weights(np.arange(half_box + 1) * step[1], step[1])
    reach = max(0, -int(cols_index.min()), int(cols_index.max()) - nx // 2)
    if reach:
        # kx < 0 and kx > nx/2 come from |F(ky, -kx)| = |F(-ky, kx)| (rows binned around -ky)
        edges = np.concatenate([amplitude[:, 1 : reach + 1], amplitude[:, nx // 2 - reach : nx // 2]], axis=1)
        negative = _bin_axis(edges, axis=0, indices=(-rows_index) % ny, weights=rows_weight)
        left = negative[:, :reach][:, ::-1]
        right = negative[:, reach:][:, ::-1]
        rows = np.concatenate([left, rows, right], axis=1)  # column c is kx = c - reach
    return _bin_axis(rows, axis=1, indices=cols_index + reach, weights=cols_weight)


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
        (ny, nx) micrograph (any aspect ratio; both sides >= box_size).
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
    shape = tuple(scipy.fft.next_fast_len(side, real=True) for side in data.shape)
    shape = tuple(side + side % 2 for side in shape)
    longest = max(shape)
    k = spectrum_binning_factor(
        padded_size=longest, pixel_size_angstrom=pixel_size_angstrom, box_size=box_size,
        target_pixel_size_angstrom=target_pixel_size_angstrom,
    )
    if min(shape) < box_size:
        raise InvalidParameters(f"image {data.shape} is smaller than the spectrum box ({box_size} px)", step=_STEP)
    padded = np.full(shape, mean, dtype=np.float32)
    padded[: data.shape[0], : data.shape[1]] = data
    padded -= mean
    amplitude = np.abs(scipy.fft.rfft2(padded, workers=workers))
    spectrum_pixel = longest * pixel_size_angstrom / (box_size * k)
    step = (k * shape[0] / longest, k * shape[1] / longest)
    return _assemble(amplitude, shape=shape, box_size=box_size, step=step), spectrum_pixel


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


def _assemble(amplitude: np.ndarray, *, shape: tuple[int, int], box_size: int, step: tuple[float, float]) -> np.ndarray:
    """Full centred (box, box) spectrum from the binned kx >= 0 half by Friedel symmetry."""
    half_plane = _binned_half_plane(amplitude, shape=shape, box_size=box_size, step=step)  # (box+1, box/2+1)
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
