"""Slow numpy twins of the numba kernels (independent, loop-free or plain-loop code)."""

from __future__ import annotations

import numpy as np
import scipy.ndimage


def bin_image_sum(image, factor):
    ny, nx = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    v = image[:ny, :nx].astype(np.float64)
    return v.reshape(ny // factor, factor, nx // factor, factor).sum(axis=(1, 3))


def accumulate_shifted(spectrum, ramp_y, ramp_x, acc, table=None, ridx=None, acc_w=None):
    v = spectrum.astype(np.complex128) * ramp_y[:, None] * ramp_x[None, :]
    acc = acc + v
    if table is not None:
        acc_w = acc_w + v * table[np.minimum(ridx, len(table) - 1)]
    return acc, acc_w


def warp_polynomial(image, cx, cy):
    ny, nx = image.shape
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    u, v = x / nx - 0.5, y / ny - 0.5
    terms = np.stack([np.ones_like(u), u, u * u, v, v * v, u * v])
    sx = np.tensordot(cx, terms, 1)
    sy = np.tensordot(cy, terms, 1)
    px = np.clip(x + sx, 0, nx - 1)
    py = np.clip(y + sy, 0, ny - 1)
    return scipy.ndimage.map_coordinates(image.astype(np.float64), [py, px], order=1, mode="nearest")


def correct_frame(raw, gain=None, dark=None):
    v = raw.astype(np.float64)
    if dark is not None:
        v = v - dark
    if gain is not None:
        v = v * gain
    return v


def group_cross_spectra(spectra, ramp_y, ramp_x, group_of, n_groups, filt, phase_only):
    aligned = spectra.astype(np.complex128) * ramp_y[:, :, None] * ramp_x[:, None, :]
    total = aligned.sum(axis=0)
    out = []
    for g in range(n_groups):
        gs = aligned[group_of == g].sum(axis=0)
        p = gs * np.conj(total - gs)
        if phase_only:
            p = np.where(np.abs(p) > 1e-30, p / np.maximum(np.abs(p), 1e-300), 0)
        out.append(p * filt)
    return np.stack(out)


def warp_accumulate(frames, index, coef, weights, gain=None, dark=None):
    out = np.zeros((weights.shape[1],) + frames.shape[1:])
    for j, f in enumerate(index):
        warped = warp_polynomial(correct_frame(frames[f], gain, dark), coef[j, 0], coef[j, 1])
        out += weights[j][:, None, None] * warped[None]
    return out
