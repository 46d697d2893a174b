"""Slow numpy twins of the engine's numba kernels and fast paths (test reference)."""

from __future__ import annotations

import numpy as np


def score_sums_naive(g2, g2c, g2s, base, data, coefficients):
    """(m, 3): sums of |sin chi|, |sin chi|^2, |sin chi|*data, one candidate at a time."""
    out = np.zeros((len(coefficients), 3))
    for j, (cm, cx, cy, phase) in enumerate(coefficients):
        model = np.abs(np.sin(cm * g2 + cx * g2c + cy * g2s + base + phase))
        out[j] = model.sum(), (model**2).sum(), (model * data).sum()
    return out


def centred_block_binning_naive(image: np.ndarray, *, box: int, k: int) -> np.ndarray:
    """Full-plane |FFT| of ``image``, fftshifted, then k x k blocks centred on multiples of k
    (odd k: k samples; even k: k + 1 samples with half weights at the ends), pixel by pixel."""
    n = image.shape[0]
    full = np.fft.fftshift(np.abs(np.fft.fft2(image)))
    weights = np.ones(k) / k if k % 2 else np.r_[0.5, np.ones(k - 1), 0.5] / k
    half = (len(weights) - 1) // 2
    c = n // 2
    out = np.zeros((box, box))
    for r in range(box):
        for q in range(box):
            cy, cx = c + (r - box // 2) * k, c + (q - box // 2) * k
            for a, wa in zip(range(-half, half + 1), weights):
                for b, wb in zip(range(-half, half + 1), weights):
                    out[r, q] += wa * wb * full[(cy + a) % n, (cx + b) % n]
    return out


def centred_window_binning_naive(image: np.ndarray, *, box: int, step: tuple[float, float]) -> np.ndarray:
    """Full-plane |FFT| of a (ny, nx) image, then for each output sample (ky, kx) = (j*step_y, i*step_x)
    the average over the window of step_y x step_x samples around it, each input sample weighted by
    its overlap with the window (scalar loops)."""
    ny, nx = image.shape
    full = np.abs(np.fft.fft2(image))
    out = np.zeros((box, box))
    for r in range(box):
        for q in range(box):
            cy, cx = (r - box // 2) * step[0], (q - box // 2) * step[1]
            total = 0.0
            for y in range(int(np.floor(cy - step[0])) - 1, int(np.ceil(cy + step[0])) + 2):
                wy = max(0.0, min(y + 0.5, cy + step[0] / 2) - max(y - 0.5, cy - step[0] / 2)) / step[0]
                if wy == 0.0:
                    continue
                for x in range(int(np.floor(cx - step[1])) - 1, int(np.ceil(cx + step[1])) + 2):
                    wx = max(0.0, min(x + 0.5, cx + step[1] / 2) - max(x - 0.5, cx - step[1] / 2)) / step[1]
                    total += wy * wx * full[y % ny, x % nx]
            out[r, q] = total
    return out


def grid_sums_naive(g2, g2c, g2s, base, data, coefficient, mean_first, mean_step, n_means, x, y, first, stop):
    """(m, n_means, 3) sums of the exhaustive grid, each candidate's |sin chi| computed directly."""
    out = np.zeros((len(x), n_means, 3))
    for k in range(len(x)):
        for j in range(first[k], stop[k]):
            mean = mean_first + j * mean_step
            model = np.abs(np.sin(coefficient * (mean * g2 + x[k] * g2c + y[k] * g2s) + base))
            out[k, j] = model.sum(), (model**2).sum(), (model * data).sum()
    return out
