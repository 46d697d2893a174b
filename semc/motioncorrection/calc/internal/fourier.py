"""Fourier-space helpers: frequency grids, spectrum cropping, phase ramps, binning.

Conventions: images are (y, x); half spectra come from ``scipy.fft.rfft2`` and
have shape (ny, nx // 2 + 1). Moving image content by +s (pixels) multiplies
its spectrum by exp(-2 pi i (kx sx / nx + ky sy / ny)).
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal._jit import NJIT_PARALLEL_OPTIONS

__all__ = [
    "frequency_axes",
    "radial_frequency",
    "crop_half_spectrum",
    "phase_ramp_axes",
    "stack_ramp_axes",
    "bin_image_sum",
]


def frequency_axes(ny: int, nx: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Frequencies (cycles/pixel) of the rows and columns of a half spectrum of (ny, nx)."""
    fy = np.fft.fftfreq(ny)
    fx = np.arange(nx // 2 + 1, dtype=np.float64) / nx
    return fy, fx


def radial_frequency(ny: int, nx: int) -> NDArray[np.float64]:
    """|f| in cycles/pixel over the half spectrum of an (ny, nx) image, shape (ny, nx//2+1)."""
    fy, fx = frequency_axes(ny, nx)
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def crop_half_spectrum(
    spectrum: NDArray[np.complexfloating], out_shape: tuple[int, int]
) -> NDArray[np.complexfloating]:
    """Keep the low frequencies of a half spectrum (Fourier cropping).

    Parameters
    ----------
    spectrum
        Shape (..., ny, nx//2+1) from ``rfft2`` of (ny, nx) images.
    out_shape
        (my, mx) of the cropped real images; my <= ny, mx <= nx, both even.

    Returns
    -------
    ndarray
        Shape (..., my, mx//2+1), a new array. Values are not rescaled.

    Raises
    ------
    ValueError
        If the output is larger than the input or odd-sized.
    """
    my, mx = out_shape
    ny = spectrum.shape[-2]
    if my > ny or mx // 2 + 1 > spectrum.shape[-1] or my % 2 or mx % 2:
        raise ValueError(f"cannot crop a spectrum of {spectrum.shape} to even image shape {out_shape}")
    out = np.empty(spectrum.shape[:-2] + (my, mx // 2 + 1), dtype=spectrum.dtype)
    h = my // 2
    out[..., :h, :] = spectrum[..., :h, : mx // 2 + 1]
    out[..., h:, :] = spectrum[..., ny - h :, : mx // 2 + 1]
    return out


def phase_ramp_axes(
    ny: int, nx: int, shift_x: float, shift_y: float
) -> tuple[NDArray[np.complex64], NDArray[np.complex64]]:
    """Separable phase ramps that move image content by (+shift_x, +shift_y) pixels.

    Returns
    -------
    (ramp_y, ramp_x)
        Shapes (ny,) and (nx//2+1,); the product ramp_y[:, None] * ramp_x[None, :]
        multiplies an ``rfft2`` half spectrum.
    """
    fy, fx = frequency_axes(ny, nx)
    ry = np.exp(-2j * np.pi * fy * shift_y).astype(np.complex64)
    rx = np.exp(-2j * np.pi * fx * shift_x).astype(np.complex64)
    return ry, rx


def stack_ramp_axes(
    fy: NDArray[np.floating], fx: NDArray[np.floating], motion_px: NDArray[np.floating]
) -> tuple[NDArray[np.complex64], NDArray[np.complex64]]:
    """Per-image separable factors exp(2 pi i f m): (n, cy) and (n, cxh), for motions (n, 2) (x, y).

    Multiplying image i's half spectrum by them moves its content by ``-motion_px[i]``;
    ``fy``, ``fx`` are the frequencies of the grid in cycles per pixel.
    """
    m = np.asarray(motion_px, dtype=np.float64)
    ry = np.exp(2j * np.pi * np.asarray(fy)[None, :] * m[:, 1:2]).astype(np.complex64)
    rx = np.exp(2j * np.pi * np.asarray(fx)[None, :] * m[:, 0:1]).astype(np.complex64)
    return np.ascontiguousarray(ry), np.ascontiguousarray(rx)


@numba.njit(**NJIT_PARALLEL_OPTIONS)
def _bin_image_sum(image, factor, out):  # pragma: no cover - jitted
    my, mx = out.shape
    for oy in numba.prange(my):
        for ox in range(mx):
            acc = 0.0
            for dy in range(factor):
                row = oy * factor + dy
                for dx in range(factor):
                    acc += image[row, ox * factor + dx]
            out[oy, ox] = acc


def bin_image_sum(image: NDArray[np.generic], factor: int) -> NDArray[np.float32]:
    """Sum ``factor`` x ``factor`` blocks (edges that do not fill a block are dropped).

    Parameters
    ----------
    image
        Shape (ny, nx), any real dtype, C-contiguous.
    factor
        Integer binning >= 1.

    Returns
    -------
    ndarray
        float32, shape (ny // factor, nx // factor).

    Raises
    ------
    ValueError
        If the image is not 2-D or the factor is not a positive integer.
    """
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    if int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    factor = int(factor)
    out = np.empty((image.shape[0] // factor, image.shape[1] // factor), dtype=np.float32)
    if factor == 1:
        out[...] = image
        return out
    _bin_image_sum(np.ascontiguousarray(image), factor, out)
    return out
