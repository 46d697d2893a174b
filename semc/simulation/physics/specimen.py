"""The specimen: particles placed in an ice layer, projected into z slabs.

Lab frame: x along image columns, y along rows, z towards the electron source,
origin at the image centre pixel (ny // 2, nx // 2) and at the mid-plane of
the ice. A particle's blobs sit at ``r_lab = R @ r_model + centre``.

Projection is along z. Blobs are grouped into slabs of constant z so that each
slab gets its own defocus (a point higher up, nearer the source, is further
from focus: Δf_local = Δf + z). Each slab image is the projected potential in
V·Å, sampled at pixel centres (each 2D Gaussian is evaluated exactly; widths are
floored at 0.6 px so the sampling does not alias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semc.simulation.physics.models import DensityModel, random_rotations

__all__ = ["Placement", "place_particles", "blobs_in_lab", "project_blobs", "slab_projections",
           "ice_texture", "carbon_potential"]

_MIN_SIGMA_PX = 0.6
_CHUNK_VALUES = 4_000_000
#: integrated potential of one water molecule (4.9 V mean inner potential × 30 Å³), V·Å³
_WATER_POTENTIAL_V_A3 = 147.0
#: volume per water molecule in vitreous ice, Å³
_WATER_VOLUME_A3 = 30.0
#: structure factor of the ice texture: S(0) and the wavenumber (1/Å) where it rises
_ICE_S0, _ICE_K1 = 0.05, 0.12
#: mean inner potential of amorphous carbon, V
_CARBON_MIP_V = 8.0


@dataclass(frozen=True, slots=True)
class Placement:
    """Particles in the lab frame: ``model_index`` (n,), ``centres_angstrom`` (n, 3), ``rotations`` (n, 3, 3)."""

    model_names: tuple[str, ...]
    model_index: NDArray[np.int64]
    centres_angstrom: NDArray[np.float64]
    rotations: NDArray[np.float64]


def place_particles(
    rng: np.random.Generator,
    *,
    models: list[DensityModel],
    n_particles: int,
    field_angstrom: tuple[float, float],
    ice_thickness_angstrom: float,
    min_separation_angstrom: float = 0.0,
) -> Placement:
    """Random positions (uniform in the field and in the ice) and uniform random orientations.

    ``field_angstrom`` is (height, width). Particles are kept inside the ice
    (their radius from both surfaces where the ice is thick enough) and, when
    ``min_separation_angstrom`` > 0, apart from each other (up to 50 tries each).
    """
    idx = rng.integers(0, len(models), size=n_particles)
    h, w = field_angstrom
    centres = np.zeros((n_particles, 3))
    for i in range(n_particles):
        radius = models[idx[i]].radius_angstrom
        zmax = max(0.0, ice_thickness_angstrom / 2 - radius)
        for _ in range(50):
            c = np.array([rng.uniform(-w / 2, w / 2), rng.uniform(-h / 2, h / 2), rng.uniform(-zmax, zmax)])
            if min_separation_angstrom <= 0 or i == 0:
                break
            if np.min(np.linalg.norm(centres[:i] - c, axis=1)) >= min_separation_angstrom:
                break
        centres[i] = c
    return Placement(tuple(m.name for m in models), idx.astype(np.int64), centres, random_rotations(rng, n_particles))


def blobs_in_lab(placement: Placement, models: list[DensityModel]) -> tuple[NDArray, NDArray, NDArray]:
    """All blobs in the lab frame: positions (N, 3) Å, weights (N,) V·Å³, sigmas (N,) Å."""
    pos, wts, sig = [], [], []
    for k in range(len(placement.model_index)):
        m = models[placement.model_index[k]]
        pos.append(m.centres_angstrom @ placement.rotations[k].T + placement.centres_angstrom[k])
        wts.append(m.weights_v_a3)
        sig.append(m.sigmas_angstrom)
    if not pos:
        return np.zeros((0, 3)), np.zeros(0), np.zeros(0)
    return np.concatenate(pos), np.concatenate(wts), np.concatenate(sig)


def project_blobs(
    xy_px: NDArray[np.float64],
    weights_v_a3: NDArray[np.float64],
    sigmas_angstrom: NDArray[np.float64],
    *,
    shape: tuple[int, int],
    pixel_size_angstrom: float,
) -> NDArray[np.float64]:
    """Projected potential (V·Å) of 3D Gaussian blobs on a (ny, nx) grid; ``xy_px`` (N, 2) in pixels.

    Each blob of weight w and width σ projects to w / (2π σ²) · exp(−r² / 2σ²);
    the image wraps around periodically (it is used with FFTs).
    """
    ny, nx = shape
    out = np.zeros(ny * nx)
    if len(weights_v_a3) == 0:
        return out.reshape(shape)
    sig_px = np.maximum(sigmas_angstrom / pixel_size_angstrom, _MIN_SIGMA_PX)
    half = int(math.ceil(4.0 * sig_px.max()))
    offs = np.arange(-half, half + 1)
    chunk = max(1, _CHUNK_VALUES // len(offs) ** 2)
    for s in range(0, len(weights_v_a3), chunk):
        x, y = xy_px[s:s + chunk, 0], xy_px[s:s + chunk, 1]
        sp = sig_px[s:s + chunk, None]
        ix = np.floor(x).astype(np.int64)[:, None] + offs
        iy = np.floor(y).astype(np.int64)[:, None] + offs
        gx = np.exp(-0.5 * ((ix - x[:, None]) / sp) ** 2)
        gy = np.exp(-0.5 * ((iy - y[:, None]) / sp) ** 2)
        amp = weights_v_a3[s:s + chunk] / (2 * math.pi * (sp[:, 0] * pixel_size_angstrom) ** 2)
        vals = (amp[:, None, None] * gy[:, :, None]) * gx[:, None, :]
        flat = (np.mod(iy, ny)[:, :, None] * nx + np.mod(ix, nx)[:, None, :]).ravel()
        out += np.bincount(flat, weights=vals.ravel(), minlength=ny * nx)
    return out.reshape(shape)


def slab_projections(
    positions_angstrom: NDArray[np.float64],
    weights_v_a3: NDArray[np.float64],
    sigmas_angstrom: NDArray[np.float64],
    *,
    shape: tuple[int, int],
    pixel_size_angstrom: float,
    slab_thickness_angstrom: float,
) -> list[tuple[float, NDArray[np.float64]]]:
    """Project lab-frame blobs slab by slab: a list of (slab centre z in Å, projected potential (ny, nx))."""
    ny, nx = shape
    if len(weights_v_a3) == 0:
        return []
    xy_px = positions_angstrom[:, :2] / pixel_size_angstrom + np.array([nx // 2, ny // 2])
    slab = np.floor(positions_angstrom[:, 2] / slab_thickness_angstrom + 0.5).astype(np.int64)
    result = []
    for k in np.unique(slab):
        sel = slab == k
        img = project_blobs(xy_px[sel], weights_v_a3[sel], sigmas_angstrom[sel],
                            shape=shape, pixel_size_angstrom=pixel_size_angstrom)
        result.append((float(k * slab_thickness_angstrom), img))
    return result


def ice_texture(
    rng: np.random.Generator, *, shape: tuple[int, int], pixel_size_angstrom: float,
    thickness_angstrom: float, strength: float,
) -> NDArray[np.float64]:
    """A Gaussian random field (V·Å) for the density fluctuations of vitreous ice.

    Independent molecules would give a white projected potential of RMS
    v_m · sqrt(t / (V_m · a²)) per pixel (v_m = 147 V·Å³ per water molecule,
    i.e. 4.9 V × V_m, V_m = 30 Å³, t the thickness, a the pixel size). The
    liquid's structure factor suppresses long wavelengths; we use
    S(k) = s₀ + (1 − s₀)(1 − exp(−(k / k₁)²)) with s₀ = 0.05, k₁ = 0.12 Å⁻¹,
    and a molecular form factor exp(−2π² σ² k²), σ = 1.5 Å. A phenomenological
    model that gives Thon rings at realistic strength; ``strength`` scales it.
    """
    if strength <= 0 or thickness_angstrom <= 0:
        return np.zeros(shape)
    import scipy.fft as sfft

    from semc.base.parallel import fft_workers

    rms = _WATER_POTENTIAL_V_A3 * math.sqrt(thickness_angstrom / (_WATER_VOLUME_A3 * pixel_size_angstrom**2))
    noise = rng.standard_normal(shape) * (strength * rms)
    ky = np.fft.fftfreq(shape[0], d=pixel_size_angstrom)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_size_angstrom)[None, :]
    k2 = kx * kx + ky * ky
    s_k = _ICE_S0 + (1 - _ICE_S0) * (1 - np.exp(-k2 / _ICE_K1**2))
    filt = np.sqrt(s_k) * np.exp(-2 * (math.pi * 1.5) ** 2 * k2)
    return sfft.irfft2(sfft.rfft2(noise, workers=fft_workers()) * filt, s=shape, workers=fft_workers())


def carbon_potential(
    rng: np.random.Generator, *, shape: tuple[int, int], pixel_size_angstrom: float,
    thickness_angstrom: float, edge_fraction: float,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Carbon support along the right edge of the field, with a wavy boundary.

    Returns the projected potential (V·Å; 8 V mean inner potential × thickness,
    plus 10 % texture) and the boolean carbon mask.
    """
    ny, nx = shape
    if thickness_angstrom <= 0 or edge_fraction <= 0:
        return np.zeros(shape), np.zeros(shape, dtype=bool)
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None, :]
    phase = rng.uniform(0, 2 * math.pi)
    edge = nx * (1 - edge_fraction) + 0.03 * nx * np.sin(2 * math.pi * y / ny + phase)
    mask = x >= edge
    tex = ice_texture(rng, shape=shape, pixel_size_angstrom=pixel_size_angstrom,
                      thickness_angstrom=thickness_angstrom, strength=1.0)
    pot = np.where(mask, _CARBON_MIP_V * thickness_angstrom + 0.1 * tex, 0.0)
    return pot, mask
