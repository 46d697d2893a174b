"""One tilt series: the phantom an assembler builds, projected tilt by tilt with the built-in projector.

Per tilt (in acquisition order k, angle θ): the blobs are rotated into the beam
frame (schemes.py), projected slab by slab with the local defocus Δf + z'
(so the defocus varies across the tilted field), damaged by the dose
accumulated before and during the tilt, moved by the tilt's own beam-induced
motion, and counted by the series' camera. Outputs (in ``<root>/<name>_<i>/``):

- ``<name>_<i>.mrc``: the tilt stack, sorted by angle; each image is the sum
  of the tilt's noisy frames, gain-corrected and shifted back by the true
  motion (an ideal motion correction onto the rest position);
- ``<name>_<i>_nonoise.mrc``: the noise-free twin (expected electrons, no motion);
- ``<name>_<i>.rawtlt`` and ``<name>_<i>.mrc.mdoc``: *given* angles and defocus
  (perturbed when ``given_errors`` asks for it);
- ``frames/<name>_<i>_<zz>_<angle>.frames.<ext>``: per-tilt movies;
- ``<name>_<i>.truth.json``: true geometry, doses, defoci, trajectories,
  particle positions and orientations (and their projections per tilt), with
  the given values kept apart under ``"given"``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import scipy.fft as sfft

from semc.base.io import write_tiff_movie
from semc.base.parallel import fft_workers
from semc.simulation.movie import FrameRenderer, scene_spectrum
from semc.simulation.physics.detector import counts_sample, detector_generate
from semc.simulation.physics.models import DensityModel, model_library
from semc.simulation.physics.motion import local_field_generate, shift_filter, trajectory_generate
from semc.simulation.tiltseries.config import TiltSeriesConfig
from semc.simulation.tiltseries.mdoc import MdocSection, mdoc_text, rawtlt_text
from semc.simulation.tiltseries.schemes import tilt_angles, tilted_positions
from semc.simulation.truth import euler_zyz_degree_from_matrix, json_write
from semc.simulation.writers import mrc_write_reproducible
from semc.simulation.types import MovieSpec, SpecimenSpec

logger = logging.getLogger(__name__)

__all__ = ["TiltSeriesSimulation"]

GEOMETRY = (
    "tilt axis = image y axis; tilt by theta rotates the specimen about y: x' = x cos(theta) + z sin(theta), "
    "y' = y, z' = -x sin(theta) + z cos(theta); x,y,z in Angstrom in the specimen frame (x along columns, "
    "y along rows, z towards the source, origin at the field centre); a point projects to column "
    "nx//2 + x'/pixel, row ny//2 + y'/pixel, with local defocus = defocus + z' (positive = underfocus)"
)


class TiltSeriesSimulation:
    """The state of one series: models, particles placed by the assembler, random streams."""

    def __init__(self, config: TiltSeriesConfig, index: int) -> None:
        self.config, self.index = config, index
        self.name = f"{config.name}_{index}"
        seeds = np.random.SeedSequence(config.seed).spawn(config.n_series)[index].spawn(3)
        self.rng = np.random.default_rng(seeds[0])  # for the assembler
        self._camera_rng = np.random.default_rng(seeds[1])
        self._tilt_seed = seeds[2]
        self.models: dict[str, DensityModel] = model_library()
        self.particles: list[tuple[str, np.ndarray, np.ndarray]] = []

    @property
    def field_angstrom(self) -> tuple[float, float]:
        """(height, width) of the untilted field of view, Å."""
        ny, nx = self.config.shape
        return ny * self.config.pixel_size_angstrom, nx * self.config.pixel_size_angstrom

    def add_model(self, model: DensityModel) -> None:
        """Make a model available by its name."""
        self.models[model.name] = model

    def add_particle(self, model: str, centre_angstrom, rotation) -> None:
        """Place one particle: ``r = rotation @ r_model + centre`` in the specimen frame (Å)."""
        rot = np.asarray(rotation, dtype=float).reshape(3, 3)
        self.particles.append((model, np.asarray(centre_angstrom, dtype=float).reshape(3), rot))

    def _blobs(self):
        pos, w, s = [], [], []
        for model, centre, rot in self.particles:
            m = self.models[model]
            pos.append(m.centres_angstrom @ rot.T + centre)
            w.append(m.weights_v_a3)
            s.append(m.sigmas_angstrom)
        if not pos:
            return np.zeros((0, 3)), np.zeros(0), np.zeros(0)
        return np.concatenate(pos), np.concatenate(w), np.concatenate(s)

    def _tilt_spec(self, theta: float, k: int) -> MovieSpec:
        c = self.config
        cos_t = max(math.cos(math.radians(theta)), 0.05)
        return MovieSpec(
            shape=c.shape, n_frames=c.frames_per_tilt, pixel_size_angstrom=c.pixel_size_angstrom,
            dose_per_frame_e_per_a2=c.dose_per_tilt_e_per_a2 / c.frames_per_tilt,
            pre_exposure_e_per_a2=k * c.dose_per_tilt_e_per_a2, optics=c.optics_spec(self.index),
            specimen=SpecimenSpec(n_particles=0, ice_thickness_angstrom=c.ice_thickness_angstrom / cos_t,
                                  ice_texture=c.ice_texture,
                                  slab_thickness_angstrom=c.slab_thickness_angstrom,
                                  zero_loss_mean_free_path_angstrom=c.zero_loss_mean_free_path_angstrom),
            motion=c.motion_spec(), detector=c.detector_spec())

    def render(self, out_dir: Path) -> dict:
        """Project every tilt, write the outputs, return the series record (also in the truth file)."""
        c = self.config
        out_dir.mkdir(parents=True, exist_ok=True)
        angles = tilt_angles(c.scheme, tilt_min_degree=c.tilt_min_degree, tilt_max_degree=c.tilt_max_degree,
                             step_degree=c.tilt_step_degree, group_size=c.group_size, start_degree=c.start_degree)
        camera = detector_generate(self._camera_rng, spec=c.detector_spec(), shape=c.shape)
        blobs = self._blobs()
        stack_order = sorted(range(len(angles)), key=lambda k: angles[k])
        z_of = {k: z for z, k in enumerate(stack_order)}
        tilt_seeds = self._tilt_seed.spawn(len(angles))
        noisy, clean, tilts = {}, {}, {}
        for k, theta in enumerate(angles):
            rng = np.random.default_rng(tilt_seeds[k])
            noisy[k], clean[k], tilts[k] = self._render_tilt(k, theta, z_of[k], blobs, camera, rng, out_dir)
            logger.info("series=%s tilt=%d/%d angle=%.1f", self.name, k + 1, len(angles), theta)
        mrc_write_reproducible(out_dir / f"{self.name}.mrc", np.stack([noisy[k] for k in stack_order]),
                               pixel_size_angstrom=c.pixel_size_angstrom, label=f"semc.simulation {self.name}")
        mrc_write_reproducible(out_dir / f"{self.name}_nonoise.mrc", np.stack([clean[k] for k in stack_order]),
                               pixel_size_angstrom=c.pixel_size_angstrom,
                               label=f"semc.simulation {self.name} noise-free")
        return self._write_metadata(out_dir, angles, stack_order, [tilts[k] for k in stack_order])

    def _render_tilt(self, k, theta, z_value, blobs, camera, rng, out_dir):
        c = self.config
        spec = self._tilt_spec(theta, k)
        rotated = (tilted_positions(blobs[0], theta), blobs[1], blobs[2])
        scene = scene_spectrum(spec, rng=rng, blobs=rotated)
        traj = trajectory_generate(rng, spec=spec.motion, n_frames=spec.n_frames)
        local = local_field_generate(rng, spec=spec.motion, shape=spec.shape, n_frames=spec.n_frames)
        mfp = c.zero_loss_mean_free_path_angstrom
        att = math.exp(-spec.specimen.ice_thickness_angstrom / mfp) if mfp > 0 else 1.0
        renderer = FrameRenderer(spec, scene, traj, local, att)
        gain = camera.gain_reference
        total = np.zeros((spec.shape[0], spec.shape[1] // 2 + 1), dtype=np.complex64)
        frames = []
        for i in range(spec.n_frames):
            counts = counts_sample(rng, renderer.expected(i), state=camera, spec=spec.detector)
            frames.append(counts)
            back = shift_filter(spec.shape, start_px=-traj.frame_mean_px[i], stop_px=-traj.frame_mean_px[i],
                                blur=False).astype(np.complex64)
            total += sfft.rfft2(counts.astype(np.float32) * gain, workers=fft_workers()) * back
        image = sfft.irfft2(total, s=spec.shape, workers=fft_workers()).astype(np.float32)
        movie = None
        if c.write_movies and spec.n_frames > 1:
            movie = self._write_movie(out_dir, z_value, theta, frames)
        record = {
            "z_value": z_value, "acquisition_index": k, "tilt_angle_degree": theta,
            "defocus_at_tilt_axis_angstrom": 0.5 * (spec.optics.defocus1_angstrom + spec.optics.defocus2_angstrom),
            "defocus_gradient_angstrom_per_angstrom_x": -math.sin(math.radians(theta)),
            "prior_dose_e_per_a2": spec.pre_exposure_e_per_a2, "dose_e_per_a2": c.dose_per_tilt_e_per_a2,
            "zero_loss_fraction": att, "movie": movie,
            "shift_x_px": traj.shifts_px[:, 0].tolist(), "shift_y_px": traj.shifts_px[:, 1].tolist(),
            "frame_mean_x_px": traj.frame_mean_px[:, 0].tolist(),
            "frame_mean_y_px": traj.frame_mean_px[:, 1].tolist(),
            "local_motion": None if local is None else local.to_dict(),
        }
        return image, renderer.clean_sum(), record

    def _write_movie(self, out_dir: Path, z_value: int, theta: float, frames) -> str:
        c = self.config
        stem = f"{self.name}_{z_value:03d}_{theta:.1f}"
        rel = f"frames/{stem}.frames.{'tif' if c.movie_format == 'tiff' else 'mrc'}"
        (out_dir / "frames").mkdir(exist_ok=True)
        if c.movie_format == "tiff":
            write_tiff_movie(out_dir / rel, [np.minimum(f, 255).astype(np.uint8) for f in frames],
                             compression="lzw", pixel_size_angstrom=c.pixel_size_angstrom)
        else:
            mrc_write_reproducible(out_dir / rel, np.stack(frames), pixel_size_angstrom=c.pixel_size_angstrom,
                                   label=f"semc.simulation {stem}")
        return rel

    def _given(self, angles_sorted, tilts):
        errs = self.config.given_errors
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, self.index, 7]))
        a = np.array(angles_sorted) + rng.normal(scale=errs.get("tilt_angle_degree", 0.0), size=len(tilts))
        d = np.array([t["defocus_at_tilt_axis_angstrom"] for t in tilts])
        d = d + rng.normal(scale=errs.get("defocus_angstrom", 0.0), size=len(tilts))
        pos = np.array([p[1] for p in self.particles]).reshape(-1, 3)
        pos = pos + rng.normal(scale=errs.get("position_angstrom", 0.0), size=pos.shape)
        return a, d, pos

    def _write_metadata(self, out_dir: Path, angles, stack_order, tilts) -> dict:
        c = self.config
        angles_sorted = [angles[k] for k in stack_order]
        given_a, given_d, given_pos = self._given(angles_sorted, tilts)
        (out_dir / f"{self.name}.rawtlt").write_text(rawtlt_text(list(given_a)))
        sections = [MdocSection(z_value=t["z_value"], tilt_angle_degree=float(given_a[z]),
                                defocus_um=-float(given_d[z]) / 1e4, exposure_dose_e_per_a2=t["dose_e_per_a2"],
                                prior_record_dose_e_per_a2=t["prior_dose_e_per_a2"],
                                acquisition_index=t["acquisition_index"], n_sub_frames=c.frames_per_tilt,
                                sub_frame_path=t["movie"]) for z, t in enumerate(tilts)]
        optics = c.optics_spec(self.index)
        (out_dir / f"{self.name}.mrc.mdoc").write_text(mdoc_text(
            image_file=f"{self.name}.mrc", image_size=(c.shape[1], c.shape[0]),
            pixel_size_angstrom=c.pixel_size_angstrom, voltage_kv=optics.voltage_kv, sections=sections))
        record = {
            "format": "semc-simulation-tiltseries-truth/1", "name": self.name, "series_index": self.index,
            "seed": c.seed, "geometry": GEOMETRY, "pixel_size_angstrom": c.pixel_size_angstrom,
            "shape_yx": list(c.shape), "scheme": c.scheme, "tilt_angles_acquisition_order": angles,
            "stack": f"{self.name}.mrc", "noise_free_stack": f"{self.name}_nonoise.mrc",
            "stack_content": "per tilt: sum of noisy frames x gain, shifted by -frame_mean (ideal motion "
                             "correction onto the rest position); noise-free stack: expected electrons, no motion",
            "optics": {"voltage_kv": optics.voltage_kv, "cs_mm": optics.cs_mm,
                       "amplitude_contrast": optics.amplitude_contrast,
                       "defocus1_angstrom": optics.defocus1_angstrom, "defocus2_angstrom": optics.defocus2_angstrom,
                       "astigmatism_azimuth_degree": optics.astigmatism_azimuth_degree},
            "tilts": tilts,
            "particles": [self._particle_record(m, centre, rot, angles_sorted) for m, centre, rot in self.particles],
            "given": {"note": "values as an imperfect instrument or picker reports them; do not use as truth",
                      "errors_sigma": dict(c.given_errors), "tilt_angle_degree": given_a.tolist(),
                      "defocus_angstrom": given_d.tolist(), "particle_centre_angstrom": given_pos.tolist()},
        }
        json_write(out_dir / f"{self.name}.truth.json", record)
        return record

    def _particle_record(self, model, centre, rot, angles_sorted) -> dict:
        ny, nx = self.config.shape
        pix = self.config.pixel_size_angstrom
        proj = []
        for theta in angles_sorted:
            xp, yp, zp = tilted_positions(centre[None, :], theta)[0]
            proj.append([nx // 2 + xp / pix, ny // 2 + yp / pix, zp])
        return {"model": model, "centre_angstrom_xyz": centre.tolist(), "rotation_matrix": rot.tolist(),
                "euler_zyz_degree": list(euler_zyz_degree_from_matrix(rot)),
                "projection_per_z_value": "[column_px, row_px, z_prime_angstrom] for each image of the stack",
                "projection": proj}
