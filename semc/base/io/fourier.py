"""Fourier cropping (binning) and padding of real images, shared by the engines.

Both act on the last two axes of a real array (one image or a stack), through
``scipy.fft.rfft2`` / ``irfft2`` with :func:`semc.base.parallel.fft_workers`
workers. The mean pixel value is preserved (a constant image stays the same
constant), so a binned image is in the same units per pixel as its input;
multiply by the area ratio to conserve sums (counts) instead.

Frequencies kept along an axis of new length ``m``: ``-(m // 2) .. (m - 1) // 2``
(numpy's FFT order). The Nyquist row/column of an even-sized input is copied, not
split between +/- Nyquist, so ``fourier_crop(fourier_pad(x, big), x.shape) == x`` holds
for odd sizes and for inputs without energy at Nyquist (every band-limited image).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from semc.base.errors import InvalidParameters
from semc.base.parallel import fft_workers

__all__ = ["fourier_crop", "fourier_pad", "fourier_bin", "fourier_resize"]

logger = logging.getLogger(__name__)


def _yx(image: NDArray) -> tuple[int, int]:
    shape = np.shape(image)
    if len(shape) < 2:
        raise InvalidParameters(f"need an array with >= 2 dimensions, got shape {shape}", step="io")
    return int(shape[-2]), int(shape[-1])


def _rows(n_old: int, n_new: int) -> tuple[slice, slice, slice, slice]:
    """Slices (destination, source) for the non-negative and the negative frequencies along y."""
    m = min(n_old, n_new)
    pos = (m + 1) // 2  # 0 .. (m-1)//2
    neg = m // 2  # -(m//2) .. -1
    return slice(0, pos), slice(0, pos), slice(n_new - neg, n_new), slice(n_old - neg, n_old)


def fourier_resize(image: NDArray, new_shape: tuple[int, int]) -> NDArray[np.float32]:
    """Resample the last two axes to ``new_shape`` by cropping or zero-padding the spectrum.

    Parameters
    ----------
    image
        Real ``(..., ny, nx)`` array.
    new_shape
        ``(ny', nx')``; each axis may grow or shrink.

    Returns
    -------
    numpy.ndarray
        float32 ``(..., ny', nx')`` with the same mean.

    Raises
    ------
    InvalidParameters
        Complex input, fewer than 2 dimensions, or a non-positive size.
    """
    image = np.asarray(image)
    if image.ndim < 2 or np.iscomplexobj(image):
        raise InvalidParameters(f"need a real array with >= 2 dimensions, got {image.dtype} {image.shape}",
                                step="io")
    ny, nx = image.shape[-2:]
    my, mx = (int(s) for s in new_shape)
    if my < 1 or mx < 1:
        raise InvalidParameters(f"new shape must be positive, got {new_shape}", step="io")
    if (my, mx) == (ny, nx):
        return np.asarray(image, dtype=np.float32).copy()
    workers = fft_workers()
    spec = scipy.fft.rfft2(np.asarray(image, dtype=np.float32), workers=workers)
    out = np.zeros(image.shape[:-2] + (my, mx // 2 + 1), dtype=spec.dtype)
    kx = min(nx // 2, mx // 2) + 1
    d0, s0, d1, s1 = _rows(ny, my)
    out[..., d0, :kx] = spec[..., s0, :kx]
    out[..., d1, :kx] = spec[..., s1, :kx]
    result = scipy.fft.irfft2(out, s=(my, mx), workers=workers)
    result *= (my * mx) / (ny * nx)
    return result.astype(np.float32, copy=False)


def fourier_crop(image: NDArray, new_shape: tuple[int, int]) -> NDArray[np.float32]:
    """Fourier-crop (down-sample) the last two axes to ``new_shape`` (each <= the old size)."""
    ny, nx = _yx(image)
    if new_shape[0] > ny or new_shape[1] > nx:
        raise InvalidParameters(f"crop {tuple(new_shape)} is larger than {(ny, nx)}", step="io")
    return fourier_resize(image, new_shape)


def fourier_pad(image: NDArray, new_shape: tuple[int, int]) -> NDArray[np.float32]:
    """Fourier-pad (up-sample) the last two axes to ``new_shape`` (each >= the old size)."""
    ny, nx = _yx(image)
    if new_shape[0] < ny or new_shape[1] < nx:
        raise InvalidParameters(f"pad {tuple(new_shape)} is smaller than {(ny, nx)}", step="io")
    return fourier_resize(image, new_shape)


def fourier_bin(image: NDArray, factor: float) -> NDArray[np.float32]:
    """Bin by ``factor`` (>= 1) in Fourier space: new size = round(size / factor), made even.

    Even output sizes keep FFT-friendly shapes and match MotionCor's ``-FtBin`` outputs.
    """
    if not factor >= 1:
        raise InvalidParameters(f"binning factor must be >= 1, got {factor}", step="io")
    ny, nx = _yx(image)
    if factor == 1:
        return np.asarray(image, dtype=np.float32).copy()
    new = tuple(max(2, int(round(n / factor / 2.0)) * 2) for n in (ny, nx))
    return fourier_crop(image, new)  # type: ignore[arg-type]
