"""Contract: engine ``ctffind4``/``ctffind5`` pointed at SEMC's own ``semc-ctffind`` (a real process that
asks CTFFIND's questions on its terminal and writes CTFFIND's files) through the one runner's prompt mode
and the version-pinned parsers, on a synthetic micrograph whose CTF is known.

Only a missing executable skips (explicitly); a program that is installed but broken fails.
"""

from __future__ import annotations

import math
import shutil

import mrcfile
import numpy as np
import pytest
import scipy.fft

from semc.base.engines import engine_resolve, version_cache_clear
from semc.base.external import run, run_interactive
from semc.base.units import electron_wavelength_angstrom
from semc.ctfestimation.calc.external import (
    CtffindParams,
    apctfdata_values_from_ctffind,
    ctffind_avrot_parse,
    ctffind_prompt_table,
    ctffind_results_parse,
    ctffind_version_parse,
)

EXE = "semc-ctffind"
TRUTH = {"defocus_1_angstrom": 16000.0, "defocus_2_angstrom": 14500.0, "azimuth_deg": 30.0}
PIXEL, KV, CS, AC = 1.0, 300.0, 2.7, 0.07


def synthetic_micrograph(n: int = 1024, seed: int = 5) -> np.ndarray:
    """White noise filtered by a known astigmatic CTF, plus white noise: |F|^2 ~ CTF^2 + const."""
    rng = np.random.default_rng(seed)
    ky = scipy.fft.fftfreq(n, d=PIXEL)[:, None]
    kx = scipy.fft.fftfreq(n, d=PIXEL)[None, :]
    k2 = kx**2 + ky**2
    theta = np.arctan2(ky, kx)
    d1, d2 = TRUTH["defocus_1_angstrom"], TRUTH["defocus_2_angstrom"]
    defocus = 0.5 * (d1 + d2 + (d1 - d2) * np.cos(2 * (theta - math.radians(TRUTH["azimuth_deg"]))))
    lam = electron_wavelength_angstrom(KV)
    chi = math.pi * lam * defocus * k2 - 0.5 * math.pi * CS * 1e7 * lam**3 * k2**2
    ctf = -(math.sqrt(1 - AC**2) * np.sin(chi) + AC * np.cos(chi))
    signal = scipy.fft.ifft2(scipy.fft.fft2(rng.standard_normal((n, n))) * ctf * np.exp(-20.0 * k2)).real
    return (signal + 0.2 * signal.std() * rng.standard_normal((n, n))).astype(np.float32)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    if shutil.which(EXE) is None:
        pytest.skip(f"{EXE} is not installed (pip install -e .); the contract cannot run")
    d = tmp_path_factory.mktemp("ctfver")
    out = run([EXE, "--version"], cwd=d, timeout_s=60, log_path=d / "version.log", program=EXE)
    detected = ctffind_version_parse(out.stdout + out.stderr)
    version_cache_clear()
    return engine_resolve("ctfestimation", detected.engine, env={f"SEMC_{detected.engine.upper()}_EXE": EXE})


def test_ctffind_engine_on_semc_ctffind_finds_the_known_ctf_and_maps_it_the_classic_way(engine, tmp_path):
    with mrcfile.new(tmp_path / "mic_1001.mrc") as mrc:
        mrc.set_data(synthetic_micrograph())
        mrc.voxel_size = PIXEL
    params = CtffindParams(input_path="mic_1001.mrc", diagnostic_path="mic_1001-pow.mrc", pixel_size_angstrom=PIXEL,
                           voltage_kv=KV, cs_mm=CS, amplitude_contrast=AC, box_size_px=512,
                           resolution_min_angstrom=30.0, resolution_max_angstrom=5.0,
                           defocus_min_angstrom=5000.0, defocus_max_angstrom=30000.0, defocus_step_angstrom=500.0,
                           expected_astigmatism_angstrom=2000.0)
    done = run_interactive([engine.executable], answers=ctffind_prompt_table(params, version=engine.detected),
                           cwd=tmp_path, timeout_s=300, log_path=tmp_path / "mic_1001.ctffind.log",
                           exposure_id=1001, step="ctfestimation", program=engine.name, version=engine.version,
                           prompt_timeout_s=30)
    assert "Summary of results" in done.stdout
    (row,) = ctffind_results_parse((tmp_path / "mic_1001-pow.txt").read_text(), version=engine.detected,
                                   path=str(tmp_path / "mic_1001-pow.txt"))
    (curves,) = ctffind_avrot_parse((tmp_path / "mic_1001-pow_avrot.txt").read_text())
    assert (tmp_path / "mic_1001-pow.mrc").exists() and curves.spatial_frequency_per_angstrom.size > 10

    mean = 0.5 * (row.defocus1_angstrom + row.defocus2_angstrom)
    assert mean == pytest.approx(0.5 * (TRUTH["defocus_1_angstrom"] + TRUTH["defocus_2_angstrom"]), rel=0.03)
    assert abs(row.defocus1_angstrom - row.defocus2_angstrom) == pytest.approx(1500.0, abs=500.0)
    axis_error = (row.azimuth_deg - TRUTH["azimuth_deg"] + 90) % 180 - 90
    assert abs(axis_error) < 10.0

    values = apctfdata_values_from_ctffind(row, amplitude_contrast=AC, cs_mm=CS, start_defocus_angstrom=15000.0)
    assert values.defocus1 == pytest.approx(min(row.defocus1_angstrom, row.defocus2_angstrom) * 1e-10)
    assert values.defocus2 == pytest.approx(max(row.defocus1_angstrom, row.defocus2_angstrom) * 1e-10)
    # Appion's angle is the axis of its defocus1 (the smaller): the true azimuth + 90 here (d1 > d2 truth)
    assert abs((values.angle_astigmatism - TRUTH["azimuth_deg"] - 90 + 90) % 180 - 90) < 10.0

    # the built-in engine (Python API) on the same micrograph with the same answers gives the same numbers
    from semc.ctfestimation.api import estimate_ctf
    from semc.ctfestimation.types import CtfSearchParameters

    builtin = estimate_ctf(tmp_path / "mic_1001.mrc", params=CtfSearchParameters(
        pixel_size_angstrom=PIXEL, voltage_kv=KV, spherical_aberration_mm=CS, amplitude_contrast=AC, box_size=512,
        min_resolution_angstrom=30.0, max_resolution_angstrom=5.0, min_defocus_angstrom=5000.0,
        max_defocus_angstrom=30000.0, defocus_step_angstrom=500.0, astigmatism_restraint_angstrom=2000.0))
    assert (row.defocus1_angstrom, row.defocus2_angstrom) == pytest.approx(
        (builtin.defocus_1_angstrom, builtin.defocus_2_angstrom), abs=0.01)
    assert row.azimuth_deg == pytest.approx(builtin.astigmatism_azimuth_degree, abs=0.01)
    assert row.cross_correlation == pytest.approx(builtin.cross_correlation, abs=1e-5)
