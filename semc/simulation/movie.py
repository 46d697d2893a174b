"""Dose-fractionated movies and single micrographs with their ground truth, in memory.

The fast path for test fixtures: :func:`simulate_movie` and
:func:`simulate_micrograph` touch no disk. :func:`movie_stream` yields frames
one at a time for large movies (the writers use it).

Image formation (weak-phase approximation, per frame i)::

    expected_i(r) = c_i · a · [1 + 2 · F⁻¹{ MTF · D_i · S_i · Σ_slabs CTF(Δf + z_s) · σ F{V_s} }](r − d_i(r))

with c_i the electrons per pixel of frame i, a the zero-loss attenuation,
V_s the projected potential of slab s (V·Å), σ the interaction constant,
CTF = −sin χ times its envelopes (CTFFIND conventions), D_i the radiation
damage of the dose accumulated at mid-frame, S_i the exact shift-and-blur
filter of the global motion, and d_i the local deformation. Raw counts are
Poisson(expected_i · sensitivity) plus defects (physics/detector.py).

Random streams: the seed feeds one ``numpy.random.SeedSequence`` whose
children drive the specimen, the motion, the detector and the shot noise
separately; the same seed gives the same arrays (and files) byte for byte.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from semc.base.parallel import fft_workers
from semc.simulation.physics import ctf as ctfmod
from semc.simulation.physics.detector import DetectorState, counts_sample, defect_mask, detector_generate
from semc.simulation.physics.models import DensityModel, model_library
from semc.simulation.physics.motion import (
    LocalField,
    Trajectory,
    apply_local_deformation,
    local_field_generate,
    shift_filter,
    trajectory_generate,
)
from semc.simulation.physics.specimen import (
    Placement,
    blobs_in_lab,
    carbon_potential,
    ice_texture,
    place_particles,
    slab_projections,
)
from semc.simulation.types import MotionSpec, MovieSpec

logger = logging.getLogger(__name__)

__all__ = ["MovieTruth", "SimulatedMovie", "SimulatedMicrograph", "simulate_movie", "simulate_micrograph",
           "movie_stream", "scene_spectrum"]

SHIFT_CONVENTION = (
    "shift_x_px[i], shift_y_px[i] = mean displacement of the specimen during frame i minus that during "
    "frame 0, in pixels of the movie; +x = towards increasing column index, +y = towards increasing row "
    "index (row 0 is the first row of the array as written); a motion corrector must apply -shift[i] to frame i "
    "to align it onto frame 0"
)


@dataclass(frozen=True, slots=True)
class MovieTruth:
    """Everything that went into one exposure (see :meth:`to_json_dict` for the file form)."""

    spec: MovieSpec
    seed: int
    trajectory: Trajectory
    local_field: LocalField | None
    placement: Placement
    detector: DetectorState
    frame_dose_e_per_a2: NDArray[np.float64]
    accumulated_dose_mid_e_per_a2: NDArray[np.float64]
    zero_loss_fraction: float

    @property
    def shifts_px(self) -> NDArray[np.float64]:
        """(n_frames, 2) shifts (x, y) relative to frame 0; see ``SHIFT_CONVENTION``."""
        return self.trajectory.shifts_px

    def to_json_dict(self, **paths: str | None) -> dict:
        """A JSON-ready dict: all parameters, the trajectory with its sign convention, local model, detector.

        ``paths`` (e.g. ``movie=``, ``clean_reference_sum=``, ``gain_reference=``,
        ``defect_map=``) are recorded as given.
        """
        from semc.simulation.truth import movie_truth_dict

        return movie_truth_dict(self, paths)


@dataclass(frozen=True, slots=True)
class SimulatedMovie:
    """Frames (n, ny, nx) uint16 counts (float32 when not counting), the clean reference sum (float32), truth."""

    frames: NDArray
    clean_sum: NDArray[np.float32]
    truth: MovieTruth

    @property
    def gain_reference(self) -> NDArray[np.float32]:
        """Multiplicative gain reference (corrected = raw × gain)."""
        return self.truth.detector.gain_reference

    @property
    def defect_map(self) -> NDArray[np.uint8]:
        """1 on hot pixels and dead columns."""
        return defect_mask(self.truth.detector, self.truth.spec.shape)


@dataclass(frozen=True, slots=True)
class SimulatedMicrograph:
    """One integrated exposure: ``image`` (counts or expected counts), ``clean`` (noise-free, float32), truth."""

    image: NDArray
    clean: NDArray[np.float32]
    truth: MovieTruth


def random_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for the specimen, the motion, the detector and the shot noise of one seed."""
    names = ("specimen", "motion", "detector", "noise")
    children = np.random.SeedSequence(int(seed)).spawn(len(names))
    return {n: np.random.default_rng(c) for n, c in zip(names, children)}


def _models_for(spec: MovieSpec, extra: dict[str, DensityModel] | None) -> list[DensityModel]:
    lib = model_library(spec.specimen.particle_contrast_v)
    lib.update(extra or {})
    missing = [m for m in spec.specimen.models if m not in lib]
    if missing:
        from semc.base.errors import InvalidParameters

        raise InvalidParameters(f"unknown particle model(s) {missing}; known: {sorted(lib)}", step="simulation")
    return [lib[m] for m in spec.specimen.models]


def scene_spectrum(
    spec: MovieSpec,
    *,
    rng: np.random.Generator,
    blobs: tuple[NDArray, NDArray, NDArray],
) -> NDArray[np.complex64]:
    """Σ_slabs CTF(Δf + z) · σ F{V_slab} · MTF on the rfft2 grid (Nyquist row/column zeroed).

    ``blobs`` are lab-frame (positions Å, weights V·Å³, sigmas Å). Ice texture
    sits at z = 0 and carbon under the ice.
    """
    sp, opt = spec.specimen, spec.optics
    shape, pix = spec.shape, spec.pixel_size_angstrom
    sigma_e = ctfmod.interaction_constant_rad_per_v_a(opt.voltage_kv)
    slabs = slab_projections(*blobs, shape=shape, pixel_size_angstrom=pix,
                             slab_thickness_angstrom=sp.slab_thickness_angstrom)
    extra = ice_texture(rng, shape=shape, pixel_size_angstrom=pix,
                        thickness_angstrom=sp.ice_thickness_angstrom, strength=sp.ice_texture)
    carbon, _ = carbon_potential(rng, shape=shape, pixel_size_angstrom=pix,
                                 thickness_angstrom=sp.carbon_thickness_angstrom,
                                 edge_fraction=sp.carbon_edge_fraction)
    layers = [(z, v) for z, v in slabs]
    layers.append((0.0, extra))
    if sp.carbon_thickness_angstrom > 0:
        layers.append((-(sp.ice_thickness_angstrom + sp.carbon_thickness_angstrom) / 2, carbon))
    total = np.zeros((shape[0], shape[1] // 2 + 1), dtype=np.complex128)
    for z, pot in layers:
        if not np.any(pot):
            continue
        f = sfft.rfft2(pot * sigma_e, workers=fft_workers())
        total += f * ctfmod.ctf_2d(shape, pix, optics=opt, defocus_offset_angstrom=z)
    if spec.detector.mtf:
        total *= ctfmod.detector_mtf(shape, rolloff=spec.detector.mtf_rolloff)
    if shape[0] % 2 == 0:
        total[shape[0] // 2, :] = 0
    if shape[1] % 2 == 0:
        total[:, -1] = 0
    return total.astype(np.complex64)


class FrameRenderer:
    """Per-frame expected images of one scene (shared by movies, EER events and tilt series).

    ``scene`` is the output of :func:`scene_spectrum`; ``attenuation`` the
    zero-loss fraction that scales every frame.
    """

    def __init__(self, spec: MovieSpec, scene: NDArray[np.complex64], trajectory: Trajectory,
                 local: LocalField | None, attenuation: float) -> None:
        self.spec, self.scene, self.trajectory, self.local = spec, scene, trajectory, local
        self.attenuation = attenuation
        ky, kx = ctfmod.frequency_grid(spec.shape, spec.pixel_size_angstrom)
        k = np.sqrt(kx * kx + ky * ky)
        self.inv_2ne = (0.5 / ctfmod.critical_exposure_e_per_a2(k, spec.optics.voltage_kv)).astype(np.float32)
        self.inv_2ne[0, 0] = 0.0
        n = spec.n_frames
        self.frame_dose = np.full(n, spec.dose_per_frame_e_per_a2)
        self.mid_dose = spec.pre_exposure_e_per_a2 + (np.arange(n) + 0.5) * spec.dose_per_frame_e_per_a2

    def _damage(self, dose: float) -> NDArray[np.float32]:
        if not self.spec.radiation_damage:
            return np.float32(1.0)
        return np.exp(-np.float32(dose) * self.inv_2ne)

    def expected(self, i: int) -> NDArray[np.float32]:
        """Expected electrons per pixel of frame i (before the detector's sensitivity)."""
        return self.expected_span(i, i + 1)

    def expected_span(self, i0: int, i1: int) -> NDArray[np.float32]:
        """Mean expected electrons per pixel per frame over frames i0 .. i1 − 1.

        The motion inside the span is the straight segment from knot i0 to knot
        i1 (exact for one frame; for EER fractions a uniform blur along the
        chord), the damage that of the dose at the middle of the span, and the
        local field that of the middle frame.
        """
        spec = self.spec
        k = self.trajectory.knots_px
        filt = shift_filter(spec.shape, start_px=k[i0], stop_px=k[i1],
                            blur=spec.motion.intra_frame_blur).astype(np.complex64)
        dose = 0.5 * (self.mid_dose[i0] + self.mid_dose[i1 - 1])
        contrast = sfft.irfft2(self.scene * self._damage(dose) * filt, s=spec.shape, workers=fft_workers())
        img = 1.0 + 2.0 * contrast
        if self.local is not None:
            img = apply_local_deformation(img.astype(np.float64), self.local, (i0 + i1 - 1) // 2)
            img = img.astype(np.float32)
        scale = np.float32(self.frame_dose[i0:i1].mean() * spec.pixel_size_angstrom**2 * self.attenuation)
        return np.maximum(img, 0.0) * scale

    def clean_sum(self) -> NDArray[np.float32]:
        """Σ_i expected_i without motion (no shift, no blur, no local field): the ideal aligned sum."""
        spec = self.spec
        c = self.frame_dose * spec.pixel_size_angstrom**2 * self.attenuation
        weight = sum(np.float32(ci) * self._damage(di) for ci, di in zip(c, self.mid_dose))
        contrast = sfft.irfft2(self.scene * weight, s=spec.shape, workers=fft_workers())
        return (np.float32(c.sum()) + 2.0 * contrast).astype(np.float32)


def exposure_prepare(
    spec: MovieSpec, seed: int, models: dict[str, DensityModel] | None, camera_seed: int | None = None
) -> tuple[dict[str, np.random.Generator], "FrameRenderer", MovieTruth]:
    """Draw everything of one exposure except the shot noise: streams, renderer, truth."""
    rngs = random_streams(seed)
    if camera_seed is not None:  # one camera shared by many exposures (a session)
        rngs["detector"] = random_streams(camera_seed)["detector"]
    lib = _models_for(spec, models)
    h, w = (spec.shape[0] * spec.pixel_size_angstrom, spec.shape[1] * spec.pixel_size_angstrom)
    placement = place_particles(rngs["specimen"], models=lib, n_particles=spec.specimen.n_particles,
                                field_angstrom=(h, w), ice_thickness_angstrom=spec.specimen.ice_thickness_angstrom,
                                min_separation_angstrom=spec.specimen.min_separation_angstrom)
    scene = scene_spectrum(spec, rng=rngs["specimen"], blobs=blobs_in_lab(placement, lib))
    traj = trajectory_generate(rngs["motion"], spec=spec.motion, n_frames=spec.n_frames)
    local = local_field_generate(rngs["motion"], spec=spec.motion, shape=spec.shape, n_frames=spec.n_frames)
    det = detector_generate(rngs["detector"], spec=spec.detector, shape=spec.shape)
    mfp = spec.specimen.zero_loss_mean_free_path_angstrom
    att = float(np.exp(-spec.specimen.ice_thickness_angstrom / mfp)) if mfp > 0 else 1.0
    renderer = FrameRenderer(spec, scene, traj, local, att)
    truth = MovieTruth(spec, int(seed), traj, local, placement, det, renderer.frame_dose,
                       renderer.mid_dose, att)
    return rngs, renderer, truth


def movie_stream(
    spec: MovieSpec, seed: int, *, noise: bool = True, models: dict[str, DensityModel] | None = None,
    camera_seed: int | None = None,
) -> tuple[MovieTruth, NDArray[np.float32], Iterator[NDArray]]:
    """The truth, the clean reference sum, and an iterator over the frames (one array each).

    With ``noise=False`` the frames are the expected electrons per pixel
    (float32, before the detector's sensitivity and defects). ``camera_seed``
    draws the detector (gain, defects) from its own seed, so that every
    exposure of a session shares one camera.
    """
    rngs, renderer, truth = exposure_prepare(spec, seed, models, camera_seed)

    def frames() -> Iterator[NDArray]:
        for i in range(spec.n_frames):
            expected = renderer.expected(i)
            if not noise:
                yield expected
            else:
                yield counts_sample(rngs["noise"], expected, state=truth.detector, spec=spec.detector)

    return truth, renderer.clean_sum(), frames()


def simulate_movie(
    spec: MovieSpec, seed: int, *, noise: bool = True, models: dict[str, DensityModel] | None = None,
    camera_seed: int | None = None,
) -> SimulatedMovie:
    """Simulate one movie in memory (no disk); see the module docstring for the physics.

    Parameters
    ----------
    spec
        What to simulate.
    seed
        Any non-negative integer; the same seed gives the same arrays.
    noise
        ``False`` returns the expected electrons per pixel (float32) instead of counts.
    models
        Extra particle models by name (e.g. read from PDB files), added to the library.
    camera_seed
        Seed of the detector alone (shared gain and defects); default: from ``seed``.

    Returns
    -------
    SimulatedMovie
        ``frames`` (n_frames, ny, nx), ``clean_sum`` (ny, nx) float32, ``truth``.

    Raises
    ------
    InvalidParameters
        On an unknown model name (and from the spec's own checks).
    """
    truth, clean, it = movie_stream(spec, seed, noise=noise, models=models, camera_seed=camera_seed)
    frames = np.stack(list(it))
    logger.debug("simulated movie seed=%s shape=%s frames=%d", seed, spec.shape, spec.n_frames)
    return SimulatedMovie(frames, clean, truth)


def simulate_micrograph(
    spec: MovieSpec, seed: int, *, noise: bool = True, models: dict[str, DensityModel] | None = None
) -> SimulatedMicrograph:
    """One integrated exposure with the CTF of ``spec.optics`` and no motion.

    The total dose is ``spec.n_frames × spec.dose_per_frame_e_per_a2``, in a single frame.
    ``clean`` is the noise-free expected image (electrons per pixel).
    """
    total = spec.n_frames * spec.dose_per_frame_e_per_a2
    single = replace(spec, n_frames=1, dose_per_frame_e_per_a2=total, motion=MotionSpec.still())
    truth, clean, it = movie_stream(single, seed, noise=noise, models=models)
    return SimulatedMicrograph(next(it), clean, truth)
