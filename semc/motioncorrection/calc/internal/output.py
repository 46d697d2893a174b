"""From Fourier accumulators to output images: Fourier binning and anisotropy correction."""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.ndimage
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal.fourier import crop_half_spectrum
from semc.motioncorrection.types import MotionCorrectionParams

__all__ = ["binned_shape", "correct_mag_anisotropy", "finish_sums", "interpolation_transfer"]


def binned_shape(shape: tuple[int, int], output_bin: float) -> tuple[int, int]:
    """Even output shape after Fourier binning by ``output_bin`` (MotionCor ``-FtBin``)."""
    if output_bin <= 1:
        return shape
    return tuple(max(2, int(round(s / output_bin)) // 2 * 2) for s in shape)  # type: ignore[return-value]


def correct_mag_anisotropy(
    image: NDArray[np.float32], *, major: float, minor: float, angle_deg: float
) -> NDArray[np.float32]:
    """Undo an anisotropic magnification (``-Mag major minor angle``) by bilinear resampling.

    The distortion scales the image by ``major`` along the direction at
    ``angle_deg`` (counter-clockwise from +x) and by ``minor`` across it, about
    the centre; the corrected image samples the distorted one at M (x - c) + c.
    """
    if major == 1.0 and minor == 1.0:
        return image
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m_xy = rot @ np.diag([major, minor]) @ rot.T
    m_yx = m_xy[::-1, ::-1]  # ndimage works in (row, col)
    centre = (np.array(image.shape) - 1) / 2.0
    offset = centre - m_yx @ centre
    return scipy.ndimage.affine_transform(image, m_yx, offset=offset, order=1, mode="nearest").astype(
        np.float32
    )


def interpolation_transfer(shape: tuple[int, int]) -> NDArray[np.float32]:
    """MotionCor3's model of the attenuation by bilinear resampling on an rfft2 grid:
    sinc(pi |k|)^(1/8), |k| in cycles per pixel, 1 at k = 0."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return (np.sinc(np.sqrt(fy**2 + fx**2)) ** 0.125).astype(np.float32)


def finish_sums(
    accumulators: dict[str, NDArray[np.complex64] | NDArray[np.float32]],
    shape: tuple[int, int],
    params: MotionCorrectionParams,
    workers: int,
) -> dict[str, NDArray[np.float32]]:
    """Output images from the sums: Fourier half spectra (complex) are inverse-transformed,
    real-space sums (float32, shape ``shape``) kept; both Fourier-cropped for ``output_bin``.
    Adds ``sum`` from odd + even."""
    accs = dict(accumulators)
    if "odd" in accs and "sum" not in accs:
        accs["sum"] = accs["odd"] + accs["even"]
    out_shape = binned_shape(shape, params.output_bin)
    major, minor, angle = params.mag_anisotropy
    out = {}
    for kind, acc in accs.items():
        if params.correct_interpolation:
            acc = scipy.fft.rfft2(acc, workers=workers) if not np.iscomplexobj(acc) else acc.copy()
            acc /= interpolation_transfer(shape)
        if not np.iscomplexobj(acc):
            if out_shape == shape:
                out[kind] = correct_mag_anisotropy(np.asarray(acc, np.float32), major=major, minor=minor,
                                                   angle_deg=angle)
                continue
            acc = scipy.fft.rfft2(acc, workers=workers)
        spec = acc if out_shape == shape else crop_half_spectrum(acc, out_shape)
        img = scipy.fft.irfft2(spec, s=out_shape, workers=workers).astype(np.float32)
        if out_shape != shape:
            img *= (out_shape[0] * out_shape[1]) / (shape[0] * shape[1])
        out[kind] = correct_mag_anisotropy(img, major=major, minor=minor, angle_deg=angle)
    return out
