"""Synthetic movies with known motion (until semc.simulation lands).

The specimen is low-pass filtered Gaussian noise with a given contrast; each
frame is the specimen moved by a known sub-pixel trajectory (Fourier phase
shift, so the motion is exact), optionally deformed by a smooth local field
(bicubic interpolation), optionally damaged by dose (the Grant & Grigorieff
attenuation exp(-D/2N_e) of the signal), then Poisson-sampled at the given
dose per pixel. The clean (noise-free, undamaged, unmoved) specimen is kept as
the reference the corrected sums are judged against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.fft
import scipy.ndimage


@dataclass(frozen=True)
class SyntheticMovie:
    frames: np.ndarray  # (n, ny, nx) float32 counts
    motion_px: np.ndarray  # (n, 2) true content motion (x, y) of each frame
    clean: np.ndarray  # (ny, nx) expected counts per frame, unmoved, undamaged
    dose_per_pixel: float
    local_amplitude_px: float


def specimen(shape, *, contrast=0.15, sigma_cycles=0.06, seed=0):
    """Low-pass Gaussian noise scaled to a relative contrast (mean 1)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    filt = np.exp(-(fx**2 + fy**2) / (2 * sigma_cycles**2))
    img = scipy.fft.irfft2(scipy.fft.rfft2(noise) * filt, s=shape)
    img /= img.std()
    return 1.0 + contrast * img


def trajectory(n, *, scale=1.0):
    """The algorithms.md §9 K3 trajectory (a 12.9 px path over 40 frames at scale 1)."""
    t = np.arange(n, dtype=np.float64)
    x = 6 * (1 - np.exp(-t / 4)) + 0.15 * t
    y = -4 * (1 - np.exp(-t / 5)) + 0.10 * t
    return scale * np.stack([x, y], axis=1)


def shift_fourier(img, sx, sy):
    ny, nx = img.shape
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.rfftfreq(nx)[None, :]
    ramp = np.exp(-2j * np.pi * (fx * sx + fy * sy))
    return scipy.fft.irfft2(scipy.fft.rfft2(img) * ramp, s=img.shape)


def local_field(shape, t_norm, amplitude):
    """Smooth content motion (x, y) at each pixel growing linearly in time."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    u, v = x / nx - 0.5, y / ny - 0.5
    mx = amplitude * t_norm * (np.sin(np.pi * v) + 2 * u * v)
    my = amplitude * t_norm * (np.cos(np.pi * u) - 1 + u * u)
    return mx, my


def make_movie(
    *, shape=(1024, 1024), n_frames=20, dose_per_pixel=1.0, motion_scale=1.0, local_amplitude=0.0,
    damage_pixel_size_angstrom=None, dose_per_frame_e_per_a2=None, contrast=0.15, seed=0,
):
    rng = np.random.default_rng(seed + 1)
    clean = specimen(shape, contrast=contrast, seed=seed)
    motion = trajectory(n_frames, scale=motion_scale)
    motion -= motion[n_frames // 2]
    frames = np.empty((n_frames,) + tuple(shape), np.float32)
    for i in range(n_frames):
        img = clean
        if damage_pixel_size_angstrom is not None:
            from semc.motioncorrection.calc.internal.dose import critical_exposure_e_per_a2

            k = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :])
            ne = critical_exposure_e_per_a2(k / damage_pixel_size_angstrom, 300.0)
            att = np.exp(-(i + 1) * dose_per_frame_e_per_a2 / (2 * ne))
            img = 1.0 + scipy.fft.irfft2(scipy.fft.rfft2(clean - 1.0) * att, s=shape)
        img = shift_fourier(img, motion[i, 0], motion[i, 1])
        if local_amplitude:
            mx, my = local_field(shape, (i - n_frames // 2) / n_frames, local_amplitude)
            yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
            img = scipy.ndimage.map_coordinates(img, [yy - my, xx - mx], order=3, mode="wrap")
        frames[i] = rng.poisson(np.clip(img, 0, None) * dose_per_pixel)
    return SyntheticMovie(frames, motion, clean * dose_per_pixel, dose_per_pixel, local_amplitude)


def frc(a, b, n_bins=50):
    """Fourier ring correlation of two images, (bin centres in cycles/px, frc)."""
    fa, fb = scipy.fft.rfft2(a - a.mean()), scipy.fft.rfft2(b - b.mean())
    k = np.hypot(np.fft.fftfreq(a.shape[0])[:, None], np.fft.rfftfreq(a.shape[1])[None, :])
    edges = np.linspace(0, 0.5, n_bins + 1)
    idx = np.digitize(k, edges) - 1
    out = np.zeros(n_bins)
    for i in range(n_bins):
        m = idx == i
        num = np.real(np.sum(fa[m] * np.conj(fb[m])))
        den = np.sqrt(np.sum(np.abs(fa[m]) ** 2) * np.sum(np.abs(fb[m]) ** 2))
        out[i] = num / den if den > 0 else 0.0
    return (edges[:-1] + edges[1:]) / 2, out


@pytest.fixture(scope="session")
def moving_movie():
    return make_movie(shape=(1024, 1024), n_frames=20, dose_per_pixel=1.0)
