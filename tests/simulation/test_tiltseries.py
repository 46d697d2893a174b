"""Tilt series: schemes, geometry of projections, defocus across the tilted field, the parallel driver."""

from __future__ import annotations

import json
import math

import mrcfile
import numpy as np
import pytest

from semc.base.errors import ConfigurationError
from semc.simulation.tiltseries import (
    TiltSeriesConfig,
    TiltSeriesSimulation,
    tilt_angles,
    tiltseries_config_from_dict,
    tiltseries_run,
)


def test_dose_symmetric_scheme_starts_at_zero_and_alternates_groups():
    order = tilt_angles("dose-symmetric", tilt_min_degree=-9, tilt_max_degree=9, step_degree=3, group_size=2)
    assert order == [0, 3, 6, -3, -6, 9, -9]


def test_bidirectional_and_continuous_schemes_cover_the_range_once():
    bi = tilt_angles("bidirectional", tilt_min_degree=-6, tilt_max_degree=6, step_degree=3, start_degree=-3)
    assert bi == [-3, 0, 3, 6, -6]
    cont = tilt_angles("continuous", tilt_min_degree=-60, tilt_max_degree=60, step_degree=3)
    assert cont == sorted(cont) and len(cont) == 41 and cont[0] == -60


def _pure_projection_config(tmp_path, **over):
    base = dict(root=tmp_path, shape=(128, 128), pixel_size_angstrom=2.0, frames_per_tilt=1, write_movies=False,
                defocus_values_angstrom=(0.0,), optics={"cs_mm": 0.0, "amplitude_contrast": 1.0},
                ice_texture=0.0, detector={"mtf": False, "gain_sigma": 0.0}, tilt_step_degree=15.0,
                tilt_min_degree=-60, tilt_max_degree=60)
    base.update(over)
    return TiltSeriesConfig(**base)


def _centroid(image, around, half=6):
    col, row = (int(round(v)) for v in around)
    win = image[row - half:row + half + 1, col - half:col + half + 1]
    w = win.max() - win  # the particle is dark (CTF = -1)
    ys, xs = np.mgrid[row - half:row + half + 1, col - half:col + half + 1]
    return (w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()


def test_projections_of_a_point_particle_land_where_geometry_says(tmp_path):
    config = _pure_projection_config(tmp_path)
    sim = TiltSeriesSimulation(config, 0)
    x, y, z = 23.0, -17.0, 61.0  # Å
    sim.add_particle("point", (x, y, z), np.eye(3))
    record = sim.render(tmp_path / "s")
    with mrcfile.open(tmp_path / "s" / record["noise_free_stack"]) as m:
        stack = m.data.copy()
    angles = sorted(record["tilt_angles_acquisition_order"])
    for img, theta in zip(stack, angles):
        t = math.radians(theta)
        col = 64 + (x * math.cos(t) + z * math.sin(t)) / 2.0
        row = 64 + y / 2.0
        assert _centroid(img, (col, row)) == pytest.approx((col, row), abs=0.02), theta


def _defocus_of_patch(patch, pix, candidates):
    """Best defocus for a point blob's image by correlation with textbook weak-phase images."""
    n = patch.shape[0]
    ky = np.fft.fftfreq(n, d=pix)[:, None]
    kx = np.fft.fftfreq(n, d=pix)[None, :]
    g2 = kx**2 + ky**2
    lam = 12.2639 / math.sqrt(300e3 + 0.97845e-6 * 300e3**2)
    obs = patch - patch.mean()
    scores = []
    for d in candidates:
        chi = math.pi * lam * d * g2 + math.atan(0.07 / math.sqrt(1 - 0.07**2))
        model = np.fft.ifft2(-np.sin(chi) * np.exp(-2 * math.pi**2 * 4.0 * g2)).real
        model = np.fft.fftshift(model)
        scores.append((obs * model).sum() / np.linalg.norm(model))
    return candidates[int(np.argmax(scores))]


def test_defocus_varies_across_the_tilted_field_as_geometry_says(tmp_path):
    config = _pure_projection_config(tmp_path, shape=(256, 256), defocus_values_angstrom=(8000.0,),
                                     optics={"cs_mm": 0.0, "amplitude_contrast": 0.07},
                                     tilt_min_degree=0, tilt_max_degree=60, tilt_step_degree=60)
    sim = TiltSeriesSimulation(config, 0)
    for x in (-150.0, 150.0):
        sim.add_particle("point", (x, 0.0, 0.0), np.eye(3))
    record = sim.render(tmp_path / "s")
    with mrcfile.open(tmp_path / "s" / record["noise_free_stack"]) as m:
        img = m.data[1].astype(np.float64)  # +60°
    candidates = np.arange(7000.0, 9000.0, 25.0)
    for x in (-150.0, 150.0):
        col = 128 + x * math.cos(math.radians(60)) / 2.0
        c = int(round(col))
        patch = img[128 - 32:128 + 32, c - 32:c + 32]
        expected = 8000.0 - x * math.sin(math.radians(60))
        assert _defocus_of_patch(patch, 2.0, candidates) == pytest.approx(expected, abs=75.0), x


def test_driver_writes_every_output_with_one_log_and_truth_kept_apart_from_given(tmp_path):
    config = tiltseries_config_from_dict(
        {"root": str(tmp_path / "run"), "n_series": 2, "processes": 2, "shape": [64, 64],
         "pixel_size_angstrom": 5.0, "tilt_step_degree": 30, "frames_per_tilt": 3,
         "assembler_options": {"n_particles": 3, "models": ["small"], "margin_angstrom": 20},
         "given_errors": {"tilt_angle_degree": 0.5}})
    tiltseries_run(config)
    root = tmp_path / "run"
    log = (root / "simulation.log").read_text()
    assert "sim-worker-0" in log and "sim-worker-1" in log
    assert not (root / "tmp").exists()  # assemblers cleaned their temporary folders
    for i in range(2):
        d = root / f"ts_{i}"
        truth = json.loads((d / f"ts_{i}.truth.json").read_text())
        given = [float(v) for v in (d / f"ts_{i}.rawtlt").read_text().split()]
        true = sorted(truth["tilt_angles_acquisition_order"])
        assert given == pytest.approx(truth["given"]["tilt_angle_degree"], abs=0.006)
        assert given != pytest.approx(true, abs=0.01) and given == pytest.approx(true, abs=3.0)
        assert "[ZValue = 4]" in (d / f"ts_{i}.mrc.mdoc").read_text()
        with mrcfile.open(d / f"ts_{i}.mrc") as m:
            assert m.data.shape == (5, 64, 64)
        for tilt in truth["tilts"]:
            assert (d / tilt["movie"]).exists()
        doses = [t["prior_dose_e_per_a2"] for t in sorted(truth["tilts"], key=lambda t: t["acquisition_index"])]
        assert doses == pytest.approx([3.0 * k for k in range(5)])
    with pytest.raises(ConfigurationError):
        tiltseries_run(config)


def test_same_seed_same_series_bytes_whatever_the_number_of_processes(tmp_path):
    outs = []
    for name, procs in (("a", 1), ("b", 2)):
        config = tiltseries_config_from_dict(
            {"root": str(tmp_path / name), "n_series": 2, "processes": procs, "shape": [64, 64], "seed": 5,
             "pixel_size_angstrom": 5.0, "tilt_step_degree": 60, "frames_per_tilt": 2,
             "assembler_options": {"n_particles": 2, "models": ["small"], "margin_angstrom": 20}})
        tiltseries_run(config)
        outs.append(tmp_path / name / "ts_1")
    for f in ("ts_1.truth.json", "ts_1.rawtlt", "ts_1.mrc.mdoc", "ts_1.mrc", "ts_1_nonoise.mrc"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f


def test_unknown_configuration_keys_are_refused(tmp_path):
    with pytest.raises(ConfigurationError):
        tiltseries_config_from_dict({"root": str(tmp_path), "tilt_stepp": 3})
