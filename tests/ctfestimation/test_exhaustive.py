"""The exhaustive search ("Slower, more exhaustive search?"): its kernel against a numpy twin, the
grid's coverage of the defocus range, and micrographs simulated by semc.simulation whose large
astigmatism lures the 1D-seeded search into a wrong minimum that the exhaustive search avoids."""

import math
import shutil
import subprocess

import numpy as np
import pytest
import scipy.spatial

from semc.base.io import write_mrc
from semc.ctfestimation.api import estimate_ctf
from semc.ctfestimation.calc.internal import exhaustive
from semc.ctfestimation.calc.internal._kernels import _grid_sums_kernel
from semc.ctfestimation.calc.internal.model import CtfOptics
from semc.ctfestimation.types import CtfSearchParameters
from semc.simulation.movie import simulate_micrograph
from semc.simulation.types import DetectorSpec, MovieSpec, OpticsSpec, SpecimenSpec
from tests.ctfestimation.naive import grid_sums_naive


def test_grid_kernel_matches_its_numpy_twin():
    rng = np.random.default_rng(3)
    n = 500
    g2 = rng.uniform(1 / 900, 1 / 16, n)
    theta = rng.uniform(-np.pi, np.pi, n)
    args = (g2, g2 * np.cos(2 * theta), g2 * np.sin(2 * theta), rng.normal(size=n), rng.normal(size=n))
    x, y = rng.normal(size=6) * 2000, rng.normal(size=6) * 2000
    first, stop = np.array([0, 3, 10, 5, 0, 7]), np.array([40, 30, 10, 41, 1, 20])  # one empty row
    fast = _grid_sums_kernel(*args, 0.0617, 5000.0, 250.0, 41, x, y, first, stop)
    np.testing.assert_allclose(fast, grid_sums_naive(*args, 0.0617, 5000.0, 250.0, 41, x, y, first, stop), rtol=1e-8, atol=1e-8)
    assert not fast[2].any() and not fast[0, 40:].any()


@pytest.mark.parametrize(("low", "high", "step"), [(5000.0, 40000.0, 300.0), (10000.0, 13000.0, 180.0), (3000.0, 3000.0, 100.0)])
def test_grid_covers_every_ctf_of_the_range_within_half_a_step_and_stays_near_it(low, high, step):
    span = high - low
    reach = min(span / 2, exhaustive.MAX_ASTIGMATISM_ANGSTROM / 2)
    x, y, first, stop, n_means, _ = exhaustive._layout(span=span, reach=reach, step=step, known_xy=None)
    means = low + (np.arange(n_means) - 1) * step
    k, j = np.nonzero((np.arange(n_means) >= first[:, None]) & (np.arange(n_means) < stop[:, None]))
    half = np.hypot(x[k], y[k])
    assert (means[j] - half >= low - 1.5 * step - 1e-6).all() and (means[j] + half <= high + 1.5 * step + 1e-6).all()
    rng = np.random.default_rng(1)
    astigmatism = rng.uniform(0, min(span, exhaustive.MAX_ASTIGMATISM_ANGSTROM), 2000)
    angle = rng.uniform(0, 2 * np.pi, 2000)
    targets = np.column_stack([rng.uniform(low + astigmatism / 2, high - astigmatism / 2),
                               astigmatism / 2 * np.cos(angle), astigmatism / 2 * np.sin(angle)])
    distance, _ = scipy.spatial.cKDTree(np.column_stack([means[j], x[k], y[k]])).query(targets, p=np.inf)
    assert distance.max() <= 0.5 * step + 1e-6  # every CTF of the range is within half a step of a scored one


def test_the_grid_shrinks_its_band_to_stay_within_budget():
    optics = CtfOptics(300, 2.7, 0.07)
    spectrum = np.random.default_rng(0).normal(size=(512, 512))
    wide = exhaustive.exhaustive_grid_search(
        spectrum, optics=optics, spectrum_pixel_size_angstrom=1.0, min_resolution_angstrom=30, max_resolution_angstrom=3.0,
        min_defocus_angstrom=5000, max_defocus_angstrom=50000, phases_radian=np.arange(0, 3.15, 0.5))
    assert wide.band_angstrom > 3.0 and wide.n_candidates * exhaustive._GRID_PIXELS <= exhaustive._BUDGET * 1.05
    narrow = exhaustive.exhaustive_grid_search(
        spectrum, optics=optics, spectrum_pixel_size_angstrom=1.0, min_resolution_angstrom=30, max_resolution_angstrom=5.0,
        min_defocus_angstrom=10000, max_defocus_angstrom=12000, phases_radian=np.zeros(1))
    assert narrow.band_angstrom == 5.0 and 1 <= len(narrow.peaks) <= 8
    assert [p.score for p in narrow.peaks] == sorted((p.score for p in narrow.peaks), reverse=True)
    assert narrow.step_angstrom == pytest.approx(25.0 / (5.0 * optics.wavelength_angstrom))


# (defocus 1, defocus 2, azimuth): astigmatism of 6000 and 8000 Å, beyond the reach of the 1D-seeded grid
LURES = [(22000.0, 16000.0, 30.0), (20000.0, 12000.0, -50.0)]


def _simulated(d1, d2, azimuth, seed):
    optics = OpticsSpec(voltage_kv=300, cs_mm=2.7, amplitude_contrast=0.07, defocus1_angstrom=d1, defocus2_angstrom=d2,
                        astigmatism_azimuth_degree=azimuth, bfactor_angstrom2=40)
    spec = MovieSpec(shape=(1024, 1024), n_frames=1, pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=20.0, optics=optics,
                     specimen=SpecimenSpec(n_particles=0, ice_texture=1.0, ice_thickness_angstrom=400),
                     detector=DetectorSpec.ideal(), radiation_damage=False)
    return np.asarray(simulate_micrograph(spec, seed=seed).image, dtype=np.float32)


@pytest.fixture(scope="module", params=range(len(LURES)), ids=["astigmatism-6000", "astigmatism-8000"])
def lure(request):
    d1, d2, azimuth = LURES[request.param]
    return (d1, d2, azimuth), _simulated(d1, d2, azimuth, seed=3 + request.param)


def _params(**changes):
    return CtfSearchParameters(pixel_size_angstrom=1.0, voltage_kv=300, max_resolution_angstrom=5, min_defocus_angstrom=5000,
                               max_defocus_angstrom=40000, defocus_step_angstrom=200, **changes)


def test_exhaustive_search_finds_the_true_ctf_where_the_1d_seeded_search_is_lured(lure):
    (d1, d2, azimuth), image = lure
    seeded = estimate_ctf(image, params=_params(), workers=1)
    found = estimate_ctf(image, params=_params(exhaustive_search=True), workers=1)
    # the 1D-seeded search ends in a wrong minimum (its astigmatism grid cannot reach the truth) ...
    assert abs(seeded.astigmatism_angstrom - (d1 - d2)) > 1000
    # ... the exhaustive search finds the truth (the tolerances) and a better score
    assert abs(found.mean_defocus_angstrom - (d1 + d2) / 2) <= 0.005 * (d1 + d2) / 2
    assert abs(found.astigmatism_angstrom - (d1 - d2)) <= 50
    assert abs((found.astigmatism_azimuth_degree - azimuth + 90) % 180 - 90) <= 3
    assert found.cross_correlation > seeded.cross_correlation + 0.1
    assert found.search_start is not None and abs(found.search_start[0] - found.search_start[1] - (d1 - d2)) < 1000


def test_exhaustive_search_with_known_astigmatism_scans_the_mean_defocus(lure):
    (d1, d2, azimuth), image = lure
    found = estimate_ctf(image, params=_params(exhaustive_search=True, known_astigmatism_angstrom=d1 - d2,
                                               known_astigmatism_azimuth_degree=azimuth), workers=1)
    assert found.astigmatism_angstrom == pytest.approx(d1 - d2, abs=1e-6)
    assert abs(found.mean_defocus_angstrom - (d1 + d2) / 2) <= 0.005 * (d1 + d2) / 2


def test_exhaustive_search_finds_a_phase_plate_shift_inside_the_searched_range():
    from tests.ctfestimation.synthetic import synthetic_micrograph

    image = synthetic_micrograph(shape=(1024, 1024), pixel_size_angstrom=1.0, voltage_kv=300, cs_mm=2.7, amplitude_contrast=0.07,
                                 defocus_1_angstrom=7200, defocus_2_angstrom=6800, azimuth_degree=45,
                                 phase_shift_radian=math.radians(100), seed=9)
    found = estimate_ctf(image, params=_params(exhaustive_search=True, find_phase_shift=True, phase_shift_step_radian=0.2), workers=1)
    assert 0.0 <= found.phase_shift_radian < math.pi
    assert abs(math.degrees(found.phase_shift_radian) - 100) <= 5
    assert abs(found.mean_defocus_angstrom - 7000) <= 35 and abs(found.astigmatism_angstrom - 400) <= 50


@pytest.mark.skipif(shutil.which("semc-ctffind") is None, reason="semc-ctffind is not installed")
def test_semc_ctffind_slower_search_answer_runs_the_exhaustive_search(tmp_path):
    d1, d2, azimuth = LURES[0]
    write_mrc(tmp_path / "astig.mrc", _simulated(d1, d2, azimuth, seed=3), pixel_size_angstrom=1.0)
    answers = ["astig.mrc", "astig.ctf", "1.0", "300", "2.7", "0.07", "512", "30", "5", "5000", "40000", "200",
               "no", "yes", "no", "no", "no"]  # astigmatism known? no / slower search? yes / restraint? no / phase? no / expert? no
    done = subprocess.run([shutil.which("semc-ctffind")], check=False, input="\n".join(answers) + "\n", capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout
    row = [float(v) for v in next(line for line in (tmp_path / "astig.txt").read_text().splitlines() if not line.startswith("#")).split()]
    assert abs(row[1] - d1) <= 60 and abs(row[2] - d2) <= 60
    assert abs((row[3] - azimuth + 90) % 180 - 90) <= 3
