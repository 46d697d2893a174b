"""Shared helpers for the simulation tests: an independent sub-pixel shift estimator."""

from __future__ import annotations

import numpy as np


def _upsampled_dft(data, region, upsample, offset):
    """Matrix-multiply DFT of ``data`` (full complex spectrum) on a fine grid around ``offset``.

    Guizar-Sicairos, Thurman & Fienup (2008), Opt. Lett. 33:156, written from the paper.
    """
    ny, nx = data.shape
    ky = np.fft.ifftshift(np.arange(ny) - ny // 2)
    kx = np.fft.ifftshift(np.arange(nx) - nx // 2)
    ry = (np.arange(region) - region // 2) / upsample + offset[0]
    rx = (np.arange(region) - region // 2) / upsample + offset[1]
    ey = np.exp(2j * np.pi * np.outer(ry, ky) / ny)
    ex = np.exp(2j * np.pi * np.outer(kx, rx) / nx)
    return ey @ data @ ex, ry, rx


def estimate_shift(reference, moved, upsample=500):
    """(x, y) displacement of ``moved`` relative to ``reference`` by upsampled cross-correlation."""
    a = np.fft.fft2(reference - reference.mean())
    b = np.fft.fft2(moved - moved.mean())
    cross = b * np.conj(a)
    cc = np.fft.ifft2(cross).real
    iy, ix = np.unravel_index(np.argmax(cc), cc.shape)
    ny, nx = cc.shape
    iy = iy - ny if iy > ny // 2 else iy
    ix = ix - nx if ix > nx // 2 else ix
    region = int(3 * upsample)
    fine, ry, rx = _upsampled_dft(cross, region, upsample, (iy, ix))
    fy, fx = np.unravel_index(np.argmax(fine.real), fine.shape)
    y, x = ry[fy], rx[fx]
    # parabolic refinement on the fine grid
    f = fine.real
    if 0 < fy < region - 1:
        d = f[fy - 1, fx] - 2 * f[fy, fx] + f[fy + 1, fx]
        y += 0.5 * (f[fy - 1, fx] - f[fy + 1, fx]) / d / upsample if d else 0.0
    if 0 < fx < region - 1:
        d = f[fy, fx - 1] - 2 * f[fy, fx] + f[fy, fx + 1]
        x += 0.5 * (f[fy, fx - 1] - f[fy, fx + 1]) / d / upsample if d else 0.0
    return np.array([x, y])
